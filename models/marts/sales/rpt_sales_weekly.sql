-- Weekly sales by ISO week (Monday start) from the week of the first sale to the week of the
-- last sale, zero-filled, with growth vs the previous week (SPEC §4). Built like
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

weeks as (

    -- Every day of an ISO week carries the same ISO year and week number.
    select
        week_start_date,
        iso_year_week
    from calendar
    group by week_start_date, iso_year_week

),

weekly as (

    select
        calendar.week_start_date,
        {{ lakehouse.to_cents('sum(sales.total)') }} as revenue_cents,
        count(*) as total_orders,
        count(distinct sales.client_id) as unique_customers,
        cast(sum(sales.quantity) as bigint) as total_quantity
    from sales
    inner join calendar
        on sales.purchase_date = calendar.calendar_date
    group by calendar.week_start_date

),

filled as (

    select
        weeks.week_start_date,
        weeks.iso_year_week,
        cast({{ dbt.dateadd('day', 6, 'weeks.week_start_date') }} as date) as week_end_date,
        coalesce(weekly.revenue_cents, 0) as revenue_cents,
        coalesce(weekly.total_orders, 0) as total_orders,
        coalesce(weekly.unique_customers, 0) as unique_customers,
        coalesce(weekly.total_quantity, 0) as total_quantity
    from weeks
    left join weekly
        on weeks.week_start_date = weekly.week_start_date

),

windowed as (

    select
        *,
        lag(revenue_cents) over (order by week_start_date) as previous_revenue_cents,
        lag(total_orders) over (order by week_start_date) as previous_orders,
        lag(unique_customers) over (order by week_start_date) as previous_customers
    from filled

),

final as (

    select
        windowed.week_start_date,
        windowed.iso_year_week,
        windowed.week_end_date,
        cast(windowed.revenue_cents * 0.01 as decimal(18, 2)) as total_revenue,
        windowed.total_orders,
        windowed.unique_customers,
        windowed.total_quantity,
        {{ lakehouse.money_avg('windowed.revenue_cents', 'windowed.total_orders') }}
            as avg_order_value,
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
        -- Only the first week can start before the first sale, only the last end after the last.
        (
            windowed.week_start_date < bounds.first_date
            or windowed.week_end_date > bounds.last_date
        ) as is_partial_period
    from windowed
    cross join bounds

)

select * from final
