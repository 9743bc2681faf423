"""Statistics: box plots from the published percentiles, histograms of the order lines,
the percentile table and the overall totals."""

import streamlit as st

from dashboard import charts, data, shell
from dashboard.formatting import format_count, format_currency, format_currency_short

manifest = shell.current_manifest()
filters = shell.current_filters()

st.title("Statistics")
st.caption(
    f"Order lines of `fct_sales` up to {manifest.as_of_date} · run `{manifest.run_id}`"
    + (
        " · statistics recomputed in DuckDB for the sidebar filters"
        if filters.is_set
        else " · statistics from `rpt_distribution_statistics`"
    )
)

statistics = data.distribution_statistics(manifest, filters)
overall = statistics.loc["overall"]
revenue, orders, quantity, customers = st.columns(4)
revenue.metric(
    "Total revenue",
    format_currency_short(overall["total_revenue"]),
    help=f"Sum of order totals: {format_currency(overall['total_revenue'])}.",
    border=True,
)
orders.metric("Order lines", format_count(overall["total_orders"]), border=True)
quantity.metric("Units sold", format_count(overall["total_quantity"]), border=True)
customers.metric("Customers", format_count(overall["unique_customers"]), border=True)

histograms = data.sales_histograms(manifest, filters)
for metric, (_, label) in data.SALES_METRICS.items():
    money = metric != "quantity"
    name = label.split(" (")[0]
    box, bars = st.columns([1, 2])
    with box:
        st.plotly_chart(
            charts.box_from_statistics(
                statistics.loc[metric],
                name=name,
                title=f"{name}: box plot",
                value_label=label,
                money=money,
            ),
            width="stretch",
            key=f"statistics_box_{metric}",
        )
    with bars:
        st.plotly_chart(
            charts.histogram(
                histograms[metric],
                count="orders",
                title=f"{name}: distribution of order lines",
                value_label=label,
                count_label="Order lines",
                money=money,
                whole_numbers=metric in data.WHOLE_NUMBER_MEASURES,
            ),
            width="stretch",
            key=f"statistics_histogram_{metric}",
        )

st.caption(
    "Boxes run from p25 to p75 with the median inside, whiskers from min to max, the dashed "
    "line is the mean. Order value and unit price in euros, quantity in units; quantiles are "
    "continuous."
)

st.subheader("Percentiles")
percentiles = (
    statistics.drop(index="overall")
    .reindex(columns=[s for s in data.STATISTICS if s in statistics.columns])
    .reset_index()
)
shell.show_table(
    percentiles,
    key="statistics_percentiles",
    file_name="distribution_statistics",
    column_config={
        "metric": "Metric",
        **{
            s: st.column_config.NumberColumn(s, format="%.4f" if s == "std" else "%.2f")
            for s in data.STATISTICS
        },
    },
)
