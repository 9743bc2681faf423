-- Equal-width histograms of the distributions the dashboard draws, so that it never bins
-- millions of rows on a page view: the order lines of fct_sales by order value, unit price and
-- quantity (30 bins each), and the purchasing clients of rpt_client_kpis by recency, frequency
-- and monetary value (20 bins each). Bins run from the minimum to the maximum of each metric;
-- the last one includes the maximum. Whole-number metrics (days, purchases, units) get a
-- whole-number width of at least 1, so no bin straddles two values. Empty bins are left out.
-- The dashboard bins filtered order lines with the same bounds and widths (dashboard/data.py,
-- `Measure`), so a filtered histogram reads against the same scale.

with

sales as (

    select * from {{ ref('fct_sales') }}

),

client_kpis as (

    select * from {{ ref('rpt_client_kpis') }}

),

purchasing_clients as (

    select * from client_kpis
    where total_purchases > 0

),

observations as (

    select
        'order_value' as metric,
        cast(total as double) as observation,
        30 as bins,
        false as is_whole_number
    from sales
    union all
    select
        'unit_price' as metric,
        cast(price as double) as observation,
        30 as bins,
        false as is_whole_number
    from sales
    union all
    select
        'quantity' as metric,
        cast(quantity as double) as observation,
        30 as bins,
        true as is_whole_number
    from sales
    union all
    select
        'recency' as metric,
        cast(days_since_last_purchase as double) as observation,
        20 as bins,
        true as is_whole_number
    from purchasing_clients
    union all
    select
        'frequency' as metric,
        cast(total_purchases as double) as observation,
        20 as bins,
        true as is_whole_number
    from purchasing_clients
    union all
    select
        'monetary' as metric,
        cast(total_spent as double) as observation,
        20 as bins,
        false as is_whole_number
    from purchasing_clients

),

bounds as (

    select
        metric,
        bins,
        is_whole_number,
        min(observation) as low,
        max(observation) as high
    from observations
    group by metric, bins, is_whole_number

),

widths as (

    select
        metric,
        bins,
        low,
        case
            when is_whole_number then greatest(1.0, ceil((high - low + 1) / bins))
            when high > low then (high - low) / bins
            else 1.0
        end as bin_width
    from bounds

),

assigned as (

    select
        observations.metric,
        least(
            floor((observations.observation - widths.low) / widths.bin_width), widths.bins - 1
        ) as bin_number
    from observations
    inner join widths on observations.metric = widths.metric

),

binned as (

    select
        metric,
        bin_number,
        count(*) as observations
    from assigned
    group by metric, bin_number

),

final as (

    select
        binned.metric,
        cast(binned.bin_number as integer) as bin_number,
        widths.low + binned.bin_number * widths.bin_width as bin_start,
        widths.low + (binned.bin_number + 1) * widths.bin_width as bin_end,
        binned.observations
    from binned
    inner join widths on binned.metric = widths.metric

)

select * from final
