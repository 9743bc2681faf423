"""Overview: headline totals with their change, the daily trend, the leaders (product, country,
client), how clients split by activity and RFM segment, and the last 30 calendar days."""

import streamlit as st

from dashboard import charts, data, shell
from dashboard.formatting import (
    TABLE_COUNT,
    TABLE_CURRENCY,
    format_currency,
    format_date_range,
    format_share,
)

manifest = shell.current_manifest()
filters = shell.current_filters()
choices = data.filter_choices(manifest)

st.title("Overview")
first_day = filters.start_date or choices.first_date
last_day = filters.end_date or choices.last_date
st.caption(
    (f"Sales {format_date_range(first_day, last_day)} · " if first_day else "No sales · ")
    + f"as of {manifest.as_of_date} · run `{manifest.run_id}`"
)


figures = data.overview(manifest, filters)

# Headline totals of the selected range (every sale when no start date is chosen). Their change
# against the period just before needs a chosen start: all-time totals have no period before
# them (the last 30 days below carry their own changes).
ranged = figures.headline if filters.start_date else None
shell.sales_cards(figures.totals, figures.headline_totals if ranged else None, ranged)
if ranged:
    st.caption(
        f"Changes: {ranged.describe()}; none when that period has no sales or starts before "
        "the first sale."
    )

st.plotly_chart(
    charts.revenue_trend(
        figures.daily,
        x="sale_date",
        revenue="total_revenue",
        averages={"revenue_7d_avg": "7-day moving average"},
        title="Daily revenue",
        period_label="Sale date",
    ),
    width="stretch",
    key="overview_daily",
)

# The leaders of the selected sales.
st.subheader("Leaders")
for column, leader in zip(st.columns(3), figures.leaders, strict=False):
    column.metric(
        leader.role,
        leader.name,
        delta=" · ".join(
            part
            for part in (
                leader.reference,
                format_currency(leader.revenue),
                f"{format_share(leader.share_pct)} of revenue",
            )
            if part
        ),
        delta_color="off",
        delta_arrow="off",
        help=leader.rule,
        border=True,
    )

# How the client base splits (from rpt_client_kpis: all sales up to the as-of date).
st.subheader("Clients")
activity, segments = st.columns([2, 3])
with activity:
    st.plotly_chart(
        charts.donut(
            data.client_activity(manifest),
            label="status",
            value="clients",
            title="Active vs inactive clients",
            unit="clients",
        ),
        width="stretch",
        key="overview_activity",
    )
    st.caption("Active: a purchase in the 90 days up to the as-of date.")
with segments:
    st.plotly_chart(
        charts.rfm_segments(data.rfm_segments(manifest)), width="stretch", key="overview_segments"
    )
shell.note_unfiltered(filters)

# The last 30 calendar days of the selected range, day by day, against the 30 days before.
st.subheader(f"Last {data.RECENT_DAYS} calendar days")
if figures.recent is None:
    st.info("No sales to show.")
else:
    st.caption(f"{figures.recent.describe()}.")
    shell.sales_cards(
        figures.recent_totals.current,
        figures.recent_totals,
        figures.recent,
        label_suffix=f" ({data.RECENT_DAYS} days)",
    )
    st.plotly_chart(
        charts.recent_days(
            figures.recent_daily,
            title=f"Daily revenue, last {data.RECENT_DAYS} days",
            previous_label=f"{data.RECENT_DAYS} days earlier",
        ),
        width="stretch",
        key="overview_recent",
    )
    shell.show_table(
        figures.recent_daily,
        key="overview_recent_table",
        file_name="last_30_days",
        column_config={
            "sale_date": st.column_config.DateColumn("Sale date"),
            "previous_date": st.column_config.DateColumn(f"{data.RECENT_DAYS} days earlier"),
            "total_revenue": st.column_config.NumberColumn("Revenue", format=TABLE_CURRENCY),
            "total_orders": st.column_config.NumberColumn("Orders", format=TABLE_COUNT),
            "previous_revenue": st.column_config.NumberColumn(
                "Revenue then", format=TABLE_CURRENCY
            ),
            "previous_orders": st.column_config.NumberColumn("Orders then", format=TABLE_COUNT),
        },
        height=250,
    )
