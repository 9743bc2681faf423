-- Monthly sales from the month of the first sale to the month of the last sale, zero-filled,
-- with revenue per customer and growth vs the previous month (SPEC §4). Built like
-- rpt_sales_daily: sums in integer cents, averages and growth exact and rounded once.

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

    {{ lakehouse.date_spine('bounds', 'first_date', 'last_date', 'calendar_date') }}

),

calendar as (

    select
        calendar_date,
        {{ lakehouse.calendar_columns('calendar_date') }}
    from spine

),

months as (

    select
        month_start_date,
        year_month
    from calendar
    group by month_start_date, year_month

),

monthly as (

    select
        calendar.month_start_date,
        {{ lakehouse.to_cents('sum(sales.total)') }} as revenue_cents,
        count(*) as total_orders,
        count(distinct sales.client_id) as unique_customers,
        cast(sum(sales.quantity) as bigint) as total_quantity
    from sales
    inner join calendar
        on sales.purchase_date = calendar.calendar_date
    group by calendar.month_start_date

),

filled as (

    select
        months.year_month,
        months.month_start_date,
        {{ dbt.last_day('months.month_start_date', 'month') }} as month_end_date,
        coalesce(monthly.revenue_cents, 0) as revenue_cents,
        coalesce(monthly.total_orders, 0) as total_orders,
        coalesce(monthly.unique_customers, 0) as unique_customers,
        coalesce(monthly.total_quantity, 0) as total_quantity
    from months
    left join monthly
        on months.month_start_date = monthly.month_start_date

),

windowed as (

    select
        *,
        lag(revenue_cents) over (order by month_start_date) as previous_revenue_cents,
        lag(total_orders) over (order by month_start_date) as previous_orders,
        lag(unique_customers) over (order by month_start_date) as previous_customers
    from filled

),

final as (

    select
        windowed.year_month,
        windowed.month_start_date,
        windowed.month_end_date,
        cast(windowed.revenue_cents * 0.01 as decimal(18, 2)) as total_revenue,
        windowed.total_orders,
        windowed.unique_customers,
        windowed.total_quantity,
        {{ lakehouse.money_avg('windowed.revenue_cents', 'windowed.total_orders') }}
            as avg_order_value,
        {{ lakehouse.money_avg('windowed.revenue_cents', 'windowed.unique_customers') }}
            as avg_revenue_per_customer,
        {{ lakehouse.exact_ratio(
            'windowed.revenue_cents - windowed.previous_revenue_cents',
            'windowed.previous_revenue_cents',
            multiplier=100
        ) }}
            as revenue_growth_pct,
        {{ lakehouse.exact_ratio(
            'windowed.total_orders - windowed.previous_orders',
            'windowed.previous_orders',
            multiplier=100
        ) }}
            as orders_growth_pct,
        {{ lakehouse.exact_ratio(
            'windowed.unique_customers - windowed.previous_customers',
            'windowed.previous_customers',
            multiplier=100
        ) }}
            as customers_growth_pct,
        -- Only the first month can start before the first sale, only the last end after the last.
        (
            windowed.month_start_date < bounds.first_date
            or windowed.month_end_date > bounds.last_date
        ) as is_partial_period
    from windowed
    cross join bounds

)

select * from final
