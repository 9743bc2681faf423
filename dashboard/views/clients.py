"""Clients: RFM segments and R×F grid, recency/frequency/monetary distributions, top clients,
clients at risk, and cohort retention."""

import streamlit as st

from dashboard import charts, data, shell
from dashboard.formatting import TABLE_COUNT, TABLE_CURRENCY, TABLE_PERCENT, format_count

manifest = shell.current_manifest()
filters = shell.current_filters()

st.title("Clients")
st.caption(
    f"Client KPIs as of {manifest.as_of_date} · run `{manifest.run_id}`. "
    "RFM scores, distributions, the at-risk list and cohorts come from pre-aggregated reports "
    "over all sales; the top-10 list follows the sidebar filters."
)

CLIENT_COLUMNS = {
    "client_id": st.column_config.NumberColumn("Client id", format="%d"),
    "name": "Name",
    "email_masked": "E-mail (masked)",
    # The client's country now (dim_clients); a country filter picks sales by the country at
    # purchase time, so a client who moved can be listed under another one.
    "country": st.column_config.TextColumn(
        "Current country", help="The client's country today; a sale keeps the country it had."
    ),
    "rfm_segment": "RFM segment",
    "total_purchases": st.column_config.NumberColumn("Orders", format=TABLE_COUNT),
    "total_spent": st.column_config.NumberColumn("Total spent", format=TABLE_CURRENCY),
    "last_purchase_date": st.column_config.DateColumn("Last purchase"),
    "days_since_last_purchase": st.column_config.NumberColumn(
        "Days since last purchase", format=TABLE_COUNT
    ),
}

counts = data.client_counts(manifest)
for column, (label, value, help_text) in zip(
    st.columns(5),
    [
        ("Clients", counts.clients, "Silver clients, with or without purchases."),
        ("Purchasing clients", counts.purchasing, "Clients with at least one order."),
        ("Active clients", counts.active, "Last purchase at most 90 days before the as-of date."),
        ("High-value clients", counts.high_value, "Spent more than the median purchasing client."),
        ("At-risk clients", counts.at_risk, "High value and not active."),
    ],
    strict=True,
):
    column.metric(label, format_count(value), help=help_text, border=True)
shell.note_unfiltered(filters)

# RFM segments and the R×F grid.
segments = data.rfm_segments(manifest)
segment_chart, grid_chart = st.columns(2)
with segment_chart:
    st.plotly_chart(charts.rfm_segments(segments), width="stretch", key="clients_segments")
with grid_chart:
    grid = data.rfm_grid(manifest).pivot(index="r_score", columns="f_score", values="clients")
    st.plotly_chart(
        charts.heatmap(
            grid,
            title="Purchasing clients by recency (R) and frequency (F) score",
            x_label="F score (5 = most frequent)",
            y_label="R score (5 = most recent)",
            value_label="Clients",
        ),
        width="stretch",
        key="clients_rfm_grid",
    )
shell.note_unfiltered(filters)
shell.show_table(
    segments,
    key="clients_segments_table",
    file_name="rfm_segments",
    column_config={
        "rfm_segment": "RFM segment",
        "clients": st.column_config.NumberColumn("Clients", format=TABLE_COUNT),
        "revenue": st.column_config.NumberColumn("Revenue", format=TABLE_CURRENCY),
        "share_of_clients_pct": st.column_config.NumberColumn(
            "Share of clients", format=TABLE_PERCENT
        ),
    },
)

# Recency, frequency and monetary distributions (binned in DuckDB).
st.subheader("Recency, frequency and monetary value")
histograms = data.client_histograms(manifest)
for column, measure in zip(st.columns(3), data.CLIENT_MEASURES, strict=True):
    _, label = data.CLIENT_MEASURES[measure]
    with column:
        st.plotly_chart(
            charts.histogram(
                histograms[measure],
                count="clients",
                title=f"{measure.capitalize()}: {label.split(' (')[0].lower()}",
                value_label=label,
                count_label="Clients",
                money=measure == "monetary",
                whole_numbers=measure in data.WHOLE_NUMBER_MEASURES,
            ),
            width="stretch",
            key=f"clients_histogram_{measure}",
        )
shell.note_unfiltered(filters)

# Top clients (filtered from fct_sales when a filter is set) and clients at risk.
st.subheader("Top 10 clients by total spent")
if filters.is_set:
    st.caption("Orders and total spent over the sales matching the sidebar filters.")
shell.show_table(
    data.top_clients(manifest, filters),
    key="clients_top",
    file_name="top_clients",
    column_config=CLIENT_COLUMNS,
)

st.subheader("At-risk clients")
st.caption(
    "High-value clients whose last purchase is more than 90 days old, biggest spenders first"
    + (
        f": the first {format_count(data.AT_RISK_SHOWN)} of {format_count(counts.at_risk)}; "
        "the download holds them all."
        if counts.at_risk > data.AT_RISK_SHOWN
        else "."
    )
)
shell.show_table(
    data.at_risk_clients(manifest),
    key="clients_at_risk",
    file_name="at_risk_clients",
    column_config=CLIENT_COLUMNS,
    height=320,
    csv=lambda: data.at_risk_clients_csv(manifest),
)

# Cohort retention.
st.subheader("Cohort retention")
cohorts = data.cohort_retention(manifest)
retention = cohorts.pivot(
    index="cohort_month", columns="months_since_first_purchase", values="retention_pct"
)
st.plotly_chart(
    charts.heatmap(
        retention,
        title="Retention by first-purchase cohort (% of the cohort buying again)",
        x_label="Months since first purchase",
        y_label="Cohort (first-purchase month)",
        value_label="Retention (%)",
        value_format=".1f",
        value_suffix="%",
        # Month 0 is 100% by definition: the colours spread over the months after it.
        color_max=retention.drop(columns=0, errors="ignore").max().max(),
    ),
    width="stretch",
    key="clients_cohorts",
)
shell.note_unfiltered(filters)
shell.show_table(
    cohorts,
    key="clients_cohorts_table",
    file_name="cohort_retention",
    column_config={
        "cohort_month": "Cohort",
        "months_since_first_purchase": "Months since first purchase",
        "cohort_size": st.column_config.NumberColumn("Cohort size", format=TABLE_COUNT),
        "active_clients": st.column_config.NumberColumn("Active clients", format=TABLE_COUNT),
        "revenue": st.column_config.NumberColumn("Revenue", format=TABLE_CURRENCY),
        "retention_pct": st.column_config.NumberColumn("Retention", format=TABLE_PERCENT),
    },
    height=320,
)
