-- SPEC §4: rpt_sales_daily has one row per calendar day from the first to the last sale, each
-- day exactly once, zero-sale days included. Returns a row describing the spine when it has a
-- gap, a repeated day, or bounds other than the first and last sale dates of fct_sales.

with

daily as (

    select * from {{ ref('rpt_sales_daily') }}

),

sales as (

    select * from {{ ref('fct_sales') }}

),

sale_bounds as (

    select
        min(purchase_date) as first_sale_date,
        max(purchase_date) as last_sale_date
    from sales

),

spine as (

    select
        min(sale_date) as first_day,
        max(sale_date) as last_day,
        count(*) as spine_rows,
        count(distinct sale_date) as distinct_days
    from daily

),

compared as (

    select
        spine.first_day,
        spine.last_day,
        sale_bounds.first_sale_date,
        sale_bounds.last_sale_date,
        spine.spine_rows,
        spine.distinct_days,
        coalesce(
            {{ dbt.datediff('sale_bounds.first_sale_date', 'sale_bounds.last_sale_date', 'day') }}
            + 1,
            0
        ) as expected_days
    from spine
    cross join sale_bounds

),

final as (

    select * from compared
    where
        spine_rows != expected_days
        or distinct_days != expected_days
        or first_day is distinct from first_sale_date
        or last_day is distinct from last_sale_date

)

select * from final
