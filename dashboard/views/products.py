"""Products: revenue, market share, quantity, unit price range, customers and top countries."""

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

st.title("Products")
st.caption(
    f"Products with sales up to {manifest.as_of_date} · run `{manifest.run_id}`"
    + (" · recomputed from `fct_sales` for the sidebar filters" if filters.is_set else "")
)

products = data.product_analytics(manifest, filters)
top = products.iloc[0] if not products.empty else None
count, best, best_revenue, best_share = st.columns(4)
count.metric("Products sold", format_count(len(products)), border=True)
best.metric(
    "Top product", top["product"] if top is not None else "—", help="Ties: by name.", border=True
)
best_revenue.metric(
    "Top product revenue",
    format_currency(top["total_revenue"] if top is not None else None),
    border=True,
)
best_share.metric(
    "Top product share",
    f"{top['market_share_pct']:,.2f}%" if top is not None else "—",
    help=f"{shell.share_label(filters)}.",
    border=True,
)

revenue_chart, quantity_chart = st.columns(2)
with revenue_chart:
    st.plotly_chart(
        charts.bars(
            products,
            category="product",
            value="total_revenue",
            title="Revenue per product",
            category_label="Product",
            value_label="Revenue (€)",
            money=True,
        ),
        width="stretch",
        key="products_revenue",
    )
with quantity_chart:
    st.plotly_chart(
        charts.bars(
            products,
            category="product",
            value="total_quantity_sold",
            title="Quantity sold per product",
            category_label="Product",
            value_label="Quantity (units)",
        ),
        width="stretch",
        key="products_quantity",
    )

share_chart, customers_chart = st.columns(2)
with share_chart:
    st.plotly_chart(
        charts.bars(
            products,
            category="product",
            value="market_share_pct",
            title=f"{shell.share_label(filters)} per product",
            category_label="Product",
            value_label=f"{shell.share_label(filters)} (%)",
            percent=True,
        ),
        width="stretch",
        key="products_share",
    )
with customers_chart:
    st.plotly_chart(
        charts.bars(
            products,
            category="product",
            value="unique_customers",
            title="Customers per product",
            category_label="Product",
            value_label="Customers (count)",
        ),
        width="stretch",
        key="products_customers",
    )

st.plotly_chart(
    charts.price_ranges(products, title="Unit price range per product (min – average – max)"),
    width="stretch",
    key="products_prices",
)

st.subheader("Product table")
shell.show_table(
    products,
    key="products_table",
    file_name="products",
    column_config={
        "product": "Product",
        "total_revenue": st.column_config.NumberColumn("Revenue", format=TABLE_CURRENCY),
        "market_share_pct": st.column_config.NumberColumn("Share", format=TABLE_PERCENT),
        "total_quantity_sold": st.column_config.NumberColumn("Quantity", format=TABLE_COUNT),
        "total_orders": st.column_config.NumberColumn("Orders", format=TABLE_COUNT),
        "unique_customers": st.column_config.NumberColumn("Customers", format=TABLE_COUNT),
        "min_price": st.column_config.NumberColumn("Min unit price", format=TABLE_CURRENCY),
        "avg_price": st.column_config.NumberColumn("Avg unit price", format=TABLE_CURRENCY),
        "max_price": st.column_config.NumberColumn("Max unit price", format=TABLE_CURRENCY),
        "top_countries": "Top countries (by revenue)",
    },
)
