"""Overview: headline totals and the daily revenue trend of the run being displayed."""

import streamlit as st

from dashboard import charts, data, shell
from dashboard.formatting import format_count, format_currency, format_currency_short

manifest = shell.current_manifest()
filters = shell.current_filters()

st.title("Overview")
st.caption(f"All sales up to {manifest.as_of_date} · run `{manifest.run_id}`")

totals = data.sales_totals(manifest, filters)
revenue, orders, clients, basket = st.columns(4)
revenue.metric(
    "Total revenue",
    format_currency_short(totals.revenue),
    help=f"Sum of order totals: {format_currency(totals.revenue)}.",
    border=True,
)
orders.metric(
    "Orders",
    format_count(totals.orders),
    help="Purchase lines (one per order).",
    border=True,
)
clients.metric(
    "Clients",
    format_count(totals.clients),
    help="Clients with at least one order.",
    border=True,
)
basket.metric(
    "Average order value",
    format_currency(totals.avg_order_value),
    help="Total revenue ÷ orders.",
    border=True,
)

daily = data.daily_sales(manifest, filters)
st.plotly_chart(
    charts.revenue_trend(
        daily,
        x="sale_date",
        revenue="total_revenue",
        averages={"revenue_7d_avg": "7-day moving average"},
        title="Daily revenue",
        period_label="Sale date",
    ),
    width="stretch",
    alt="Line chart of daily revenue with its 7-day moving average.",
)
