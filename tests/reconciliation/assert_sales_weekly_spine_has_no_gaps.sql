-- SPEC §4: rpt_sales_weekly has one row per ISO week (Monday start) from the week of the first
-- sale to the week of the last sale, each week exactly once, weeks without sales included.
-- Returns a row describing the spine when a week does not start exactly 7 days after the
-- previous one, a week is repeated, or the bounds are not the first and last sale weeks of
-- fct_sales.

with

weekly as (

    select * from {{ ref('rpt_sales_weekly') }}

),

sales as (

    select * from {{ ref('fct_sales') }}

),

sale_bounds as (

    select
        min(week_start_date) as first_sale_week,
        max(week_start_date) as last_sale_week
    from sales

),

steps as (

    select
        week_start_date,
        {{ dbt.datediff(
            'lag(week_start_date) over (order by week_start_date)', 'week_start_date', 'day'
        ) }} as days_since_previous_week
    from weekly

),

spine as (

    select
        min(week_start_date) as first_week,
        max(week_start_date) as last_week,
        count(*) as spine_rows,
        count(distinct week_start_date) as distinct_weeks,
        count(
            case when days_since_previous_week != 7 then 1 end
        ) as irregular_steps
    from steps

),

compared as (

    select
        spine.first_week,
        spine.last_week,
        sale_bounds.first_sale_week,
        sale_bounds.last_sale_week,
        spine.spine_rows,
        spine.distinct_weeks,
        spine.irregular_steps,
        coalesce(
            {{ dbt.datediff('sale_bounds.first_sale_week', 'sale_bounds.last_sale_week', 'day') }}
            / 7 + 1,
            0
        ) as expected_weeks
    from spine
    cross join sale_bounds

),

final as (

    select * from compared
    where
        spine_rows != expected_weeks
        or distinct_weeks != expected_weeks
        or irregular_steps != 0
        or first_week is distinct from first_sale_week
        or last_week is distinct from last_sale_week

)

select * from final
