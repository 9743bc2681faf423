-- Distribution statistics of order value (total), unit price (price) and quantity over the
-- order lines of fct_sales, plus overall totals, as (metric, statistic, value) rows (SPEC §4).
-- value is DECIMAL(18,4): means exact and rounded once to 2 decimals (half away from zero);
-- min, max, mode, median and quantiles exact (linear interpolation between cent values never
-- needs more than 4 decimals); the sample standard deviation rounded to 4 decimals.

with

sales as (

    select * from {{ ref('fct_sales') }}

),

observations as (

    select
        'order_value' as metric,
        total as observation
    from sales
    union all
    select
        'unit_price' as metric,
        price as observation
    from sales
    union all
    select
        'quantity' as metric,
        cast(quantity as decimal(18, 2)) as observation
    from sales

),

observations_cents as (

    select
        metric,
        observation,
        {{ lakehouse.to_cents('observation') }} as observation_cents
    from observations

),

per_metric as (

    select
        metric,
        count(*) as observations,
        sum(observation_cents) as total_cents,
        sum(observation_cents * observation_cents) as total_squares,
        min(observation) as min_value,
        max(observation) as max_value,
        {{ lakehouse.percentile_cont('observation_cents', 0.5) }} as median_cents,
        {{ lakehouse.percentile_cont('observation_cents', 0.25) }} as p25_cents,
        {{ lakehouse.percentile_cont('observation_cents', 0.75) }} as p75_cents,
        {{ lakehouse.percentile_cont('observation_cents', 0.9) }} as p90_cents,
        {{ lakehouse.percentile_cont('observation_cents', 0.95) }} as p95_cents
    from observations_cents
    group by metric

),

quantity_counts as (

    select
        quantity,
        count(*) as order_lines
    from sales
    group by quantity

),

quantity_mode as (

    -- The most frequent quantity, the smallest one on ties.
    select
        quantity,
        row_number() over (order by order_lines desc, quantity asc) as frequency_rank
    from quantity_counts

),

overall as (

    select
        coalesce(sum(total), 0) as total_revenue,
        count(*) as total_orders,
        coalesce(sum(quantity), 0) as total_quantity,
        count(distinct client_id) as unique_customers
    from sales

),

statistics as (

    select
        metric,
        'mean' as statistic,
        cast({{ lakehouse.money_avg('total_cents', 'observations') }} as decimal(18, 4)) as value
    from per_metric
    union all
    select
        metric,
        'median' as statistic,
        cast(median_cents / 100 as decimal(18, 4)) as value
    from per_metric
    union all
    select
        metric,
        'std' as statistic,
        cast(
            round(
                {{ lakehouse.sample_std_from_sums('observations', 'total_cents', 'total_squares') }}
                / 100,
                4
            ) as decimal(18, 4)
        ) as value
    from per_metric
    union all
    select
        metric,
        'min' as statistic,
        cast(min_value as decimal(18, 4)) as value
    from per_metric
    union all
    select
        metric,
        'max' as statistic,
        cast(max_value as decimal(18, 4)) as value
    from per_metric
    union all
    select
        metric,
        'p25' as statistic,
        cast(p25_cents / 100 as decimal(18, 4)) as value
    from per_metric
    union all
    select
        metric,
        'p75' as statistic,
        cast(p75_cents / 100 as decimal(18, 4)) as value
    from per_metric
    union all
    select
        metric,
        'p90' as statistic,
        cast(p90_cents / 100 as decimal(18, 4)) as value
    from per_metric
    union all
    select
        metric,
        'p95' as statistic,
        cast(p95_cents / 100 as decimal(18, 4)) as value
    from per_metric
    union all
    select
        'quantity' as metric,
        'mode' as statistic,
        cast(quantity as decimal(18, 4)) as value
    from quantity_mode
    where frequency_rank = 1
    union all
    select
        'overall' as metric,
        'total_revenue' as statistic,
        cast(total_revenue as decimal(18, 4)) as value
    from overall
    union all
    select
        'overall' as metric,
        'total_orders' as statistic,
        cast(total_orders as decimal(18, 4)) as value
    from overall
    union all
    select
        'overall' as metric,
        'total_quantity' as statistic,
        cast(total_quantity as decimal(18, 4)) as value
    from overall
    union all
    select
        'overall' as metric,
        'unique_customers' as statistic,
        cast(unique_customers as decimal(18, 4)) as value
    from overall

),

final as (

    select
        metric,
        statistic,
        value
    from statistics

)

select * from final
