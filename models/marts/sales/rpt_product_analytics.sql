-- Sales per product (only products with sales), with unit-price statistics over order lines,
-- market share of revenue and the top 3 countries by revenue (SPEC §4).

with

sales as (

    select * from {{ ref('fct_sales') }}

),

per_product as (

    select
        product,
        cast(sum(quantity) as bigint) as total_quantity_sold,
        {{ lakehouse.to_cents('sum(total)') }} as revenue_cents,
        count(*) as total_orders,
        count(distinct client_id) as unique_customers,
        -- Unit price per order line, not weighted by quantity.
        {{ lakehouse.to_cents('sum(price)') }} as price_cents,
        min(price) as min_price,
        max(price) as max_price
    from sales
    group by product

),

per_product_country as (

    select
        product,
        country,
        {{ lakehouse.to_cents('sum(total)') }} as revenue_cents
    from sales
    group by product, country

),

ranked_countries as (

    select
        product,
        country,
        row_number() over (
            partition by product
            order by revenue_cents desc, country asc
        ) as country_rank
    from per_product_country

),

top_countries as (

    select
        product,
        {{ lakehouse.ordered_listagg('country', ', ', 'country_rank') }} as top_countries
    from ranked_countries
    where country_rank <= 3
    group by product

),

overall as (

    select sum(revenue_cents) as revenue_cents from per_product

),

final as (

    select
        per_product.product,
        per_product.total_quantity_sold,
        cast(per_product.revenue_cents * 0.01 as decimal(18, 2)) as total_revenue,
        per_product.total_orders,
        per_product.unique_customers,
        {{ lakehouse.money_avg('per_product.price_cents', 'per_product.total_orders') }}
            as avg_price,
        per_product.min_price,
        per_product.max_price,
        {{ lakehouse.exact_ratio('per_product.total_quantity_sold', 'per_product.total_orders') }}
            as avg_quantity_per_order,
        {{ lakehouse.exact_ratio(
            'per_product.revenue_cents', 'overall.revenue_cents', multiplier=100
        ) }}
            as market_share_pct,
        top_countries.top_countries
    from per_product
    cross join overall
    left join top_countries
        on per_product.product = top_countries.product

)

select * from final
