"""Geography: revenue and share by client country, customers, average basket, per customer."""

import streamlit as st

from dashboard import charts, data, shell
from dashboard.formatting import (
    TABLE_COUNT,
    TABLE_CURRENCY,
    TABLE_PERCENT,
    format_count,
    format_currency,
)

manifest = shell.current_manifest()
filters = shell.current_filters()

st.title("Geography")
st.caption(
    f"Sales by client country (at purchase time) up to {manifest.as_of_date} · "
    f"run `{manifest.run_id}`"
    + (" · recomputed from `fct_sales` for the sidebar filters" if filters.is_set else "")
)

countries = data.country_analytics(manifest, filters)
top = countries.iloc[0] if not countries.empty else None
count, best, best_revenue, best_share = st.columns(4)
count.metric("Countries with sales", format_count(len(countries)), border=True)
best.metric("Top country", top["country"] if top is not None else "—", border=True)
best_revenue.metric(
    "Top country revenue",
    format_currency(top["total_revenue"] if top is not None else None),
    border=True,
)
best_share.metric(
    "Top country share",
    f"{top['market_share_pct']:,.2f}%" if top is not None else "—",
    help=f"{shell.share_label(filters)}.",
    border=True,
)

revenue_chart, share_chart = st.columns(2)
with revenue_chart:
    st.plotly_chart(
        charts.bars(
            countries,
            category="country",
            value="total_revenue",
            title="Revenue per country",
            category_label="Country",
            value_label="Revenue (€)",
            money=True,
        ),
        width="stretch",
        key="geography_revenue",
    )
with share_chart:
    st.plotly_chart(
        charts.bars(
            countries,
            category="country",
            value="market_share_pct",
            title=f"{shell.share_label(filters)} per country",
            category_label="Country",
            value_label=f"{shell.share_label(filters)} (%)",
            percent=True,
        ),
        width="stretch",
        key="geography_share",
    )

customers_chart, basket_chart, per_customer_chart = st.columns(3)
for column, value, title, label, money in (
    (customers_chart, "unique_customers", "Customers per country", "Customers (count)", False),
    (basket_chart, "avg_order_value", "Average basket per country", "Avg order value (€)", True),
    (
        per_customer_chart,
        "avg_revenue_per_customer",
        "Revenue per customer by country",
        "Revenue per customer (€)",
        True,
    ),
):
    with column:
        st.plotly_chart(
            charts.bars(
                countries,
                category="country",
                value=value,
                title=title,
                category_label="Country",
                value_label=label,
                money=money,
            ),
            width="stretch",
            key=f"geography_{value}",
        )

st.subheader("Country table")
shell.show_table(
    countries,
    key="geography_table",
    file_name="countries",
    column_config={
        "country": "Country",
        "total_revenue": st.column_config.NumberColumn("Revenue", format=TABLE_CURRENCY),
        "market_share_pct": st.column_config.NumberColumn("Share", format=TABLE_PERCENT),
        "unique_customers": st.column_config.NumberColumn("Customers", format=TABLE_COUNT),
        "total_orders": st.column_config.NumberColumn("Orders", format=TABLE_COUNT),
        "total_quantity": st.column_config.NumberColumn("Quantity", format=TABLE_COUNT),
        "avg_order_value": st.column_config.NumberColumn("Avg order value", format=TABLE_CURRENCY),
        "avg_revenue_per_customer": st.column_config.NumberColumn(
            "Revenue per customer", format=TABLE_CURRENCY
        ),
    },
)
