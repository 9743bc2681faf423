"""Data quality: quality scores, quarantine by reason, example refused rows, the reconciliation
bronze = silver + quarantine, and the run's freshness."""

import streamlit as st

from dashboard import charts, data, shell
from dashboard.formatting import TABLE_PERCENT, format_percent, format_timestamp

manifest = shell.current_manifest()

st.title("Data quality")
st.caption(
    f"Quality report of run `{manifest.run_id}` (`quality_report.json`). "
    "The sidebar filters do not apply to this page."
)

run, as_of, published = st.columns(3)
run.metric("Run id", manifest.run_id, border=True)
as_of.metric("As-of date", manifest.as_of_date, border=True)
published.metric("Published at", format_timestamp(manifest.published_at), border=True)

report = data.quality_report(manifest)
scores = data.quality_scores(report)
for column, score in zip(st.columns(len(scores)), scores.itertuples(), strict=True):
    column.metric(
        f"Quality score · {score.entity}",
        format_percent(score.quality_score),
        help="Silver rows ÷ bronze rows.",
        border=True,
    )

st.subheader("Quarantine by reason")
quarantine = data.quarantine_by_reason(report)
columns = st.columns(max(quarantine["entity"].nunique(), 1))
for column, (entity, reasons) in zip(
    columns, quarantine.groupby("entity", sort=True), strict=False
):
    with column:
        st.plotly_chart(
            charts.bars(
                reasons,
                category="reject_reason",
                value="rows",
                title=f"Quarantined {entity} by reason",
                category_label="Reject reason",
                value_label="Rows (count)",
                horizontal=True,
            ),
            width="stretch",
            key=f"data_quality_quarantine_{entity}",
        )
shell.show_table(
    quarantine,
    key="data_quality_quarantine",
    file_name="quarantine_by_reason",
    column_config={"entity": "Entity", "reject_reason": "Reject reason", "rows": "Rows"},
)

st.subheader("Examples of refused rows")
st.caption("The first refused row of each reject reason (up to five); e-mail-like text is masked.")
for entity in data.QUARANTINE_MODELS:
    st.markdown(f"**{entity.capitalize()}**")
    shell.show_table(
        data.quarantine_examples(manifest, entity),
        key=f"data_quality_examples_{entity}",
        file_name=f"quarantine_examples_{entity}",
    )

st.subheader("Reconciliation: bronze = silver + quarantine")
checks = data.reconciliation(report)
if checks["reconciles"].all():
    st.success("Every entity and bronze file reconciles.", icon=":material/check_circle:")
else:
    st.error("Some rows are unaccounted for: see the table.", icon=":material/error:")
shell.show_table(
    checks,
    key="data_quality_reconciliation",
    file_name="reconciliation",
    column_config={
        "entity": "Entity",
        "source_file": "Bronze file",
        "bronze_rows": "Bronze rows",
        "silver_rows": "Silver rows",
        "quarantined_rows": "Quarantined rows",
        "reconciles": st.column_config.CheckboxColumn("Reconciles"),
    },
)
shell.show_table(
    scores,
    key="data_quality_scores",
    file_name="quality_scores",
    column_config={
        "entity": "Entity",
        "quality_score": st.column_config.NumberColumn("Quality score", format=TABLE_PERCENT),
    },
)
