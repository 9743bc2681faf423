-- Sales per client country (at purchase time), with shares of total revenue (SPEC §4).

with

sales as (

    select * from {{ ref('fct_sales') }}

),

per_country as (

    select
        country,
        {{ lakehouse.to_cents('sum(total)') }} as revenue_cents,
        count(distinct client_id) as unique_customers,
        count(*) as total_orders,
        cast(sum(quantity) as bigint) as total_quantity
    from sales
    group by country

),

overall as (

    select sum(revenue_cents) as revenue_cents from per_country

),

final as (

    select
        per_country.country,
        cast(per_country.revenue_cents * 0.01 as decimal(18, 2)) as total_revenue,
        per_country.unique_customers,
        per_country.total_orders,
        per_country.total_quantity,
        {{ lakehouse.money_avg('per_country.revenue_cents', 'per_country.total_orders') }}
            as avg_order_value,
        {{ lakehouse.money_avg('per_country.revenue_cents', 'per_country.unique_customers') }}
            as avg_revenue_per_customer,
        {{ lakehouse.exact_ratio(
            'per_country.revenue_cents', 'overall.revenue_cents', multiplier=100
        ) }}
            as market_share_pct
    from per_country
    cross join overall

)

select * from final
