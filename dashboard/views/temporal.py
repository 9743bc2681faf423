"""Temporal: revenue, growth, orders and customers per day, ISO week or month, with anomalies."""

import streamlit as st

from dashboard import charts, data, shell
from dashboard.formatting import (
    TABLE_COUNT,
    TABLE_CURRENCY,
    TABLE_PERCENT,
    format_change,
    format_count,
    format_currency_short,
    format_period,
)

manifest = shell.current_manifest()
filters = shell.current_filters()

st.title("Temporal")
st.caption(f"Sales per period up to {manifest.as_of_date} · run `{manifest.run_id}`")

GRAINS = {"Daily": "daily", "Weekly": "weekly", "Monthly": "monthly"}
PERIOD_LABELS = {"daily": "Sale date", "weekly": "Week (starting Monday)", "monthly": "Month"}
PERIOD_UNITS = {"daily": "day", "weekly": "week", "monthly": "month"}
HOVER_FORMATS = {"daily": "%a %d %b %Y", "weekly": "week of %d %b %Y", "monthly": "%b %Y"}

choice = st.segmented_control(
    "Period", list(GRAINS), default="Daily", key="temporal_grain", required=True
)
grain = GRAINS[choice or "Daily"]
period_label = PERIOD_LABELS[grain]
sales = data.period_sales(manifest, grain, filters)
unit = PERIOD_UNITS[grain]

# The latest period against the one before, the best period and the typical one.
if not sales.empty:
    latest, best = sales.iloc[-1], sales.loc[sales["total_revenue"].idxmax()]
    last, top, typical, count = st.columns(4)
    last.metric(
        f"Latest {unit}",
        format_currency_short(latest["total_revenue"]),
        delta=format_change(latest["revenue_growth_pct"]),
        help=f"{format_period(latest['period'], grain)}; change vs the {unit} before"
        + (", which the sales do not cover whole." if latest["is_partial_period"] else "."),
        border=True,
    )
    top.metric(
        f"Best {unit}",
        format_currency_short(best["total_revenue"]),
        delta=format_period(best["period"], grain),
        delta_color="off",
        delta_arrow="off",
        border=True,
    )
    typical.metric(
        f"Median revenue per {unit}",
        format_currency_short(sales["total_revenue"].median()),
        help=f"Over every {unit} from the first to the last sale, those without sales included.",
        border=True,
    )
    count.metric(f"{choice} periods", format_count(len(sales)), border=True)

# Revenue trend, with moving averages and anomaly markers on the daily view.
averages = (
    {"revenue_7d_avg": "7-day moving average", "revenue_28d_avg": "28-day moving average"}
    if grain == "daily"
    else None
)
anomalies = data.sales_anomalies(manifest) if grain == "daily" and not filters.is_set else None
st.plotly_chart(
    charts.revenue_trend(
        sales,
        x="period",
        revenue="total_revenue",
        averages=averages,
        title=f"{choice} revenue",
        period_label=period_label,
        hover_date_format=HOVER_FORMATS[grain],
        anomalies=anomalies,
    ),
    width="stretch",
    key="temporal_revenue",
)
if grain == "daily":
    if filters.is_set:
        st.caption(
            "Anomaly markers come from `rpt_sales_anomalies`, computed on all sales: they are "
            "hidden while a sidebar filter is set."
        )
    elif anomalies is not None:
        st.caption(
            f"{len(anomalies)} anomalous day(s): revenue more than 3 standard deviations from "
            "the trailing 28-day mean."
        )

growth, volume = st.columns(2)
with growth:
    st.plotly_chart(
        charts.growth_bars(
            sales,
            x="period",
            growth="revenue_growth_pct",
            title=f"{choice} revenue growth",
            period_label=period_label,
        ),
        width="stretch",
        key="temporal_growth",
    )
with volume:
    st.plotly_chart(
        charts.orders_vs_customers(
            sales, x="period", title=f"{choice} orders vs customers", period_label=period_label
        ),
        width="stretch",
        key="temporal_orders",
    )

st.subheader(f"{choice} sales")
shell.show_table(
    sales,
    key="temporal_sales",
    file_name=f"sales_{grain}",
    column_config={
        "period": st.column_config.DateColumn(period_label),
        "total_revenue": st.column_config.NumberColumn("Revenue", format=TABLE_CURRENCY),
        "total_orders": st.column_config.NumberColumn("Orders", format=TABLE_COUNT),
        "unique_customers": st.column_config.NumberColumn("Customers", format=TABLE_COUNT),
        "avg_order_value": st.column_config.NumberColumn("Avg order value", format=TABLE_CURRENCY),
        "revenue_growth_pct": st.column_config.NumberColumn("Revenue growth", format=TABLE_PERCENT),
        "orders_growth_pct": st.column_config.NumberColumn("Orders growth", format=TABLE_PERCENT),
        "revenue_7d_avg": st.column_config.NumberColumn("Revenue 7-day avg", format=TABLE_CURRENCY),
        "revenue_28d_avg": st.column_config.NumberColumn(
            "Revenue 28-day avg", format=TABLE_CURRENCY
        ),
        "is_partial_period": st.column_config.CheckboxColumn("Partial period"),
    },
)
if anomalies is not None and not anomalies.empty:
    st.subheader("Anomalous days")
    shell.show_table(
        anomalies,
        key="temporal_anomalies",
        file_name="sales_anomalies",
        column_config={
            "sale_date": st.column_config.DateColumn("Sale date"),
            "total_revenue": st.column_config.NumberColumn("Revenue", format=TABLE_CURRENCY),
            "trailing_mean": st.column_config.NumberColumn(
                "Trailing 28-day mean", format=TABLE_CURRENCY
            ),
            "trailing_std": st.column_config.NumberColumn(
                "Trailing 28-day std", format=TABLE_CURRENCY
            ),
            "z_score": st.column_config.NumberColumn("z-score", format="%.2f"),
            "direction": "Direction",
        },
    )
