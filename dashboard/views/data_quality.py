"""Data quality: the run's freshness, quality scores, quarantine by reason with examples of
refused rows, the reconciliation bronze = silver + quarantine, and the recent runs."""

from datetime import UTC, datetime

import streamlit as st

from dashboard import charts, data, shell
from dashboard.formatting import (
    TABLE_COUNT,
    TABLE_PERCENT,
    format_age,
    format_count,
    format_percent,
    format_timestamp,
)

manifest = shell.current_manifest()

st.title("Data quality")
st.caption(
    f"Quality report of run `{manifest.run_id}` (`quality_report.json`). "
    "The sidebar filters do not apply to this page."
)

# Freshness: when the run shown was published, and the business date it is as of.
published, as_of, runs_kept = st.columns(3)
published.metric(
    "Published",
    format_age(manifest.published_at, datetime.now(UTC)),
    delta=format_timestamp(manifest.published_at),
    delta_color="off",
    delta_arrow="off",
    help=f"When run `{manifest.run_id}` replaced `latest.json`.",
    border=True,
)
as_of.metric("As-of date", manifest.as_of_date, help="The run's business date.", border=True)
history = data.run_history(manifest)
runs_kept.metric(
    "Runs kept",
    format_count(len(history)),
    help="Published runs still in the lake; older ones are pruned.",
    border=True,
)

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
        if reasons["rows"].sum() == 0:
            st.success(f"No row of {entity} was quarantined.", icon=":material/check_circle:")
            continue
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
st.caption("The first refused row of each reject reason; e-mail-like text is masked.")
for entity in data.QUARANTINE_MODELS:
    st.markdown(f"**{entity.capitalize()}**")
    shell.show_table(
        data.quarantine_examples(manifest, entity),
        key=f"data_quality_examples_{entity}",
        file_name=f"quarantine_examples_{entity}",
    )

st.subheader("Reconciliation: bronze = silver + quarantine")
checks = data.reconciliation(report)
st.plotly_chart(
    charts.reconciliation(
        checks[checks["source_file"] == "all"], title="Bronze rows: kept in silver or quarantined"
    ),
    width="stretch",
    key="data_quality_reconciliation_chart",
)
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

st.subheader("Recent runs")
st.caption(
    "The published runs the lake still keeps (`EXPORT_KEEP_RUNS`), newest first; the dashboard "
    "shows the one `latest.json` points at."
)
shell.show_table(
    history,
    key="data_quality_runs",
    file_name="recent_runs",
    column_config={
        "run_id": "Run id",
        "published_at": st.column_config.DatetimeColumn(
            "Published at (UTC)", format="YYYY-MM-DD HH:mm:ss"
        ),
        "as_of_date": "As-of date",
        "orders": st.column_config.NumberColumn("Orders (fct_sales rows)", format=TABLE_COUNT),
        "clients": st.column_config.NumberColumn("Clients", format=TABLE_COUNT),
        "quarantined_rows": st.column_config.NumberColumn("Quarantined rows", format=TABLE_COUNT),
        "quality_score": st.column_config.NumberColumn("Quality score", format=TABLE_PERCENT),
        "displayed": st.column_config.CheckboxColumn("Shown here"),
    },
)
