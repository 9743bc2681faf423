-- Cohort retention by first-purchase month: one row per cohort and month since the first
-- purchase, the full triangle up to the month of the last sale, zero-filled (SPEC §4).

with

sales as (

    select * from {{ ref('fct_sales') }}

),

client_cohorts as (

    select
        client_id,
        cast(date_trunc('month', min(purchase_date)) as date) as cohort_month
    from sales
    group by client_id

),

cohorts as (

    select
        cohort_month,
        count(*) as cohort_size
    from client_cohorts
    group by cohort_month

),

bounds as (

    select
        cast(date_trunc('month', min(purchase_date)) as date) as first_month,
        max(purchase_date) as last_date
    from sales

),

days as (

    {{ lakehouse.date_spine('bounds', 'first_month', 'last_date', 'date_day') }}

),

months as (

    select date_day as activity_month
    from days
    where extract(day from date_day) = 1

),

monthly_activity as (

    select
        client_cohorts.cohort_month,
        cast(date_trunc('month', sales.purchase_date) as date) as activity_month,
        count(distinct sales.client_id) as active_clients,
        {{ lakehouse.to_cents('sum(sales.total)') }} as revenue_cents
    from sales
    inner join client_cohorts
        on sales.client_id = client_cohorts.client_id
    group by
        client_cohorts.cohort_month,
        cast(date_trunc('month', sales.purchase_date) as date)

),

triangle as (

    select
        cohorts.cohort_month,
        months.activity_month,
        cohorts.cohort_size
    from cohorts
    inner join months
        on cohorts.cohort_month <= months.activity_month

),

final as (

    select
        triangle.cohort_month,
        cast(
            {{ dbt.datediff('triangle.cohort_month', 'triangle.activity_month', 'month') }}
            as integer
        ) as months_since_first_purchase,
        triangle.activity_month,
        triangle.cohort_size,
        coalesce(monthly_activity.active_clients, 0) as active_clients,
        cast(coalesce(monthly_activity.revenue_cents, 0) * 0.01 as decimal(18, 2)) as revenue,
        {{ lakehouse.exact_ratio(
            'coalesce(monthly_activity.active_clients, 0)', 'triangle.cohort_size', multiplier=100
        ) }}
            as retention_pct
    from triangle
    left join monthly_activity
        on
            triangle.cohort_month = monthly_activity.cohort_month
            and triangle.activity_month = monthly_activity.activity_month

)

select * from final
