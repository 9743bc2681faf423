-- SPEC §4: rpt_sales_monthly has one row per calendar month from the month of the first sale to
-- the month of the last sale, each month exactly once, months without sales included. Returns a
-- row describing the spine when a month is not the calendar month after the previous one, a
-- month is repeated, or the bounds are not the first and last sale months of fct_sales.

with

monthly as (

    select * from {{ ref('rpt_sales_monthly') }}

),

sales as (

    select * from {{ ref('fct_sales') }}

),

sale_bounds as (

    select
        min(month_start_date) as first_sale_month,
        max(month_start_date) as last_sale_month
    from sales

),

steps as (

    select
        month_start_date,
        {{ dbt.datediff(
            'lag(month_start_date) over (order by month_start_date)', 'month_start_date', 'month'
        ) }} as months_since_previous_month
    from monthly

),

spine as (

    select
        min(month_start_date) as first_month,
        max(month_start_date) as last_month,
        count(*) as spine_rows,
        count(distinct month_start_date) as distinct_months,
        count(
            case when months_since_previous_month != 1 then 1 end
        ) as irregular_steps
    from steps

),

compared as (

    select
        spine.first_month,
        spine.last_month,
        sale_bounds.first_sale_month,
        sale_bounds.last_sale_month,
        spine.spine_rows,
        spine.distinct_months,
        spine.irregular_steps,
        coalesce(
            {{ dbt.datediff(
                'sale_bounds.first_sale_month', 'sale_bounds.last_sale_month', 'month'
            ) }}
            + 1,
            0
        ) as expected_months
    from spine
    cross join sale_bounds

),

final as (

    select * from compared
    where
        spine_rows != expected_months
        or distinct_months != expected_months
        or irregular_steps != 0
        or first_month is distinct from first_sale_month
        or last_month is distinct from last_sale_month

)

select * from final
