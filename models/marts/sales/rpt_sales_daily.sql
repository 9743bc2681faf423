-- Daily sales from the first to the last sale, zero-filled, with growth and calendar-day
-- moving averages (SPEC §4). Averages are exact and rounded once.

with

sales as (

    select * from {{ ref('fct_sales') }}

),

bounds as (

    select
        min(purchase_date) as first_date,
        max(purchase_date) as last_date
    from sales

),

spine as (

    {{ lakehouse.date_spine('bounds', 'first_date', 'last_date', 'sale_date') }}

),

daily as (

    select
        purchase_date as sale_date,
        {{ lakehouse.to_cents('sum(total)') }} as revenue_cents,
        count(*) as total_orders,
        count(distinct client_id) as unique_customers,
        cast(sum(quantity) as bigint) as total_quantity
    from sales
    group by purchase_date

),

filled as (

    select
        spine.sale_date,
        coalesce(daily.revenue_cents, 0) as revenue_cents,
        coalesce(daily.total_orders, 0) as total_orders,
        coalesce(daily.unique_customers, 0) as unique_customers,
        coalesce(daily.total_quantity, 0) as total_quantity
    from spine
    left join daily
        on spine.sale_date = daily.sale_date

),

windowed as (

    select
        *,
        lag(revenue_cents) over (order by sale_date) as previous_revenue_cents,
        lag(total_orders) over (order by sale_date) as previous_orders,
        sum(revenue_cents) over last_7_days as revenue_cents_7d,
        sum(total_orders) over last_7_days as orders_7d,
        count(*) over last_7_days as days_7d,
        sum(revenue_cents) over last_28_days as revenue_cents_28d,
        sum(total_orders) over last_28_days as orders_28d,
        count(*) over last_28_days as days_28d
    from filled
    -- `filled` has one row per calendar day (the spine), so 7 rows are 7 calendar days.
    window
        last_7_days as (order by sale_date rows between 6 preceding and current row),
        last_28_days as (order by sale_date rows between 27 preceding and current row)

),

final as (

    select
        sale_date,
        cast(revenue_cents * 0.01 as decimal(18, 2)) as total_revenue,
        total_orders,
        unique_customers,
        total_quantity,
        {{ lakehouse.money_avg('revenue_cents', 'total_orders') }} as avg_order_value,
        {{ lakehouse.exact_ratio(
            'revenue_cents - previous_revenue_cents', 'previous_revenue_cents', multiplier=100
        ) }}
            as revenue_growth_pct,
        {{ lakehouse.exact_ratio(
            'total_orders - previous_orders', 'previous_orders', multiplier=100
        ) }}
            as orders_growth_pct,
        {{ lakehouse.money_avg('revenue_cents_7d', 'days_7d') }} as revenue_7d_avg,
        {{ lakehouse.exact_ratio('orders_7d', 'days_7d') }} as orders_7d_avg,
        {{ lakehouse.money_avg('revenue_cents_28d', 'days_28d') }} as revenue_28d_avg,
        {{ lakehouse.exact_ratio('orders_28d', 'days_28d') }} as orders_28d_avg,
        false as is_partial_period
    from windowed

)

select * from final
