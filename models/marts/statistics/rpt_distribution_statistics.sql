-- Distribution statistics of order value (total), unit price (price) and quantity over the
-- order lines of fct_sales, plus overall totals, as (metric, statistic, value) rows (SPEC §4).
-- value is DECIMAL(22,4): means exact and rounded once to 2 decimals (half away from zero);
-- min, max, mode, median and quantiles exact (linear interpolation between cent values never
-- needs more than 4 decimals); the sample standard deviation rounded to 4 decimals.

{#- The type of `value` (the contract's decimal(22,4)): an order line may be as large as
    DECIMAL(18,2) allows, and its statistics keep 4 decimals. -#}
{%- set value_type = 'decimal(22, 4)' %}

{#- metric, column, observation (DECIMAL) -#}
{%- set metrics = [
    ('order_value', 'total', 'total'),
    ('unit_price', 'price', 'price'),
    ('quantity', 'quantity', 'cast(quantity as decimal(18, 2))'),
] %}

with

sales as (

    select * from {{ ref('fct_sales') }}

),

value_counts as (

    -- One row per distinct value and its number of occurrences. Every statistic below is
    -- computed from this histogram: a quantile aggregate would hold every observation in memory
    -- (outside DuckDB's memory limit, 300 million values at 100 million order lines), and cents
    -- take few distinct values. Each metric is grouped on its own column, then turned into
    -- cents: one conversion per distinct value, not per observation. (A union of the three
    -- columns grouped by the metric's name also hashes that name, 30 million times at 10
    -- million order lines.)
    {%- for metric, column, observation in metrics %}
        select
            '{{ metric }}' as metric,
            {{ lakehouse.to_cents(observation) }} as observation_cents,
            count(*) as occurrences
        from sales
        group by {{ column }}
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}

),

per_metric as (

    select
        metric,
        sum(occurrences) as observations,
        sum(observation_cents * occurrences) as total_cents,
        sum(observation_cents * observation_cents * occurrences) as total_squares,
        min(observation_cents) as min_cents,
        max(observation_cents) as max_cents
    from value_counts
    group by metric

),

running_occurrences as (

    select
        *,
        sum(occurrences) over (
            partition by metric
            order by observation_cents
            rows between unbounded preceding and current row
        ) as occurrences_through_value
    from value_counts

),

value_positions as (

    -- The 0-based positions first_position..last_position the value takes in sorted order.
    select
        metric,
        observation_cents,
        occurrences_through_value - occurrences as first_position,
        occurrences_through_value - 1 as last_position
    from running_occurrences

),

fractions as (

    {{ lakehouse.values_table(['statistic', 'fraction'], [
        ('median', 0.5), ('p25', 0.25), ('p75', 0.75), ('p90', 0.9), ('p95', 0.95),
    ]) }}

),

quantile_positions as (

    -- Continuous quantile (numpy's "linear"): the value at position h = (n − 1) × fraction,
    -- interpolated between positions floor(h) and ceil(h). h is an exact decimal, so the
    -- interpolated cents have at most two decimals: exact, with no floating point.
    select
        per_metric.metric,
        fractions.statistic,
        (per_metric.observations - 1) * fractions.fraction as rank_position
    from per_metric
    cross join fractions

),

quantiles as (

    select
        quantile_positions.metric,
        quantile_positions.statistic,
        lower_value.observation_cents
        + (upper_value.observation_cents - lower_value.observation_cents)
        * (quantile_positions.rank_position - floor(quantile_positions.rank_position))
            as quantile_cents
    from quantile_positions
    inner join value_positions as lower_value
        on
            quantile_positions.metric = lower_value.metric
            and floor(quantile_positions.rank_position) >= lower_value.first_position
            and floor(quantile_positions.rank_position) <= lower_value.last_position
    inner join value_positions as upper_value
        on
            quantile_positions.metric = upper_value.metric
            and ceil(quantile_positions.rank_position) >= upper_value.first_position
            and ceil(quantile_positions.rank_position) <= upper_value.last_position

),

quantity_mode as (

    -- The most frequent quantity, the smallest one on ties.
    select
        observation_cents,
        row_number() over (order by occurrences desc, observation_cents asc) as frequency_rank
    from value_counts
    where metric = 'quantity'

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
        cast({{ lakehouse.money_avg('total_cents', 'observations') }} as {{ value_type }}) as value
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
            ) as {{ value_type }}
        ) as value
    from per_metric
    union all
    select
        metric,
        'min' as statistic,
        cast(min_cents * 0.01 as {{ value_type }}) as value
    from per_metric
    union all
    select
        metric,
        'max' as statistic,
        cast(max_cents * 0.01 as {{ value_type }}) as value
    from per_metric
    union all
    select
        metric,
        statistic,
        cast(quantile_cents * 0.01 as {{ value_type }}) as value
    from quantiles
    union all
    select
        'quantity' as metric,
        'mode' as statistic,
        cast(observation_cents * 0.01 as {{ value_type }}) as value
    from quantity_mode
    where frequency_rank = 1
    union all
    select
        'overall' as metric,
        'total_revenue' as statistic,
        cast(total_revenue as {{ value_type }}) as value
    from overall
    union all
    select
        'overall' as metric,
        'total_orders' as statistic,
        cast(total_orders as {{ value_type }}) as value
    from overall
    union all
    select
        'overall' as metric,
        'total_quantity' as statistic,
        cast(total_quantity as {{ value_type }}) as value
    from overall
    union all
    select
        'overall' as metric,
        'unique_customers' as statistic,
        cast(unique_customers as {{ value_type }}) as value
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
