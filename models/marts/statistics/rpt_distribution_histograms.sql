-- Equal-width histograms of the distributions the dashboard draws, so that it never bins
-- millions of rows on a page view: the order lines of fct_sales by order value, unit price and
-- quantity (30 bins each), and the purchasing clients of rpt_client_kpis by recency, frequency
-- and monetary value (20 bins each). Bins run from the minimum to the maximum of each metric;
-- the last one includes the maximum. Whole-number metrics (days, purchases, units) get a
-- whole-number width of at least 1, so no bin straddles two values. Empty bins are left out.
-- The dashboard bins filtered order lines with the same bounds and widths (dashboard/data.py,
-- `Measure`), so a filtered histogram reads against the same scale.

{#- metric, relation (CTE), expression, bins, whole number -#}
{%- set metrics = [
    ('order_value', 'sales', 'total', 30, false),
    ('unit_price', 'sales', 'price', 30, false),
    ('quantity', 'sales', 'quantity', 30, true),
    ('recency', 'purchasing_clients', 'days_since_last_purchase', 20, true),
    ('frequency', 'purchasing_clients', 'total_purchases', 20, true),
    ('monetary', 'purchasing_clients', 'total_spent', 20, false),
] %}

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

bounds as (

    -- One pass per metric over its own column. (A single union of every observation grouped by
    -- the metric's name hashes that name on 30 million rows: the report took 2.7 times as long
    -- at 10M sales.)
    {%- for metric, relation, expression, bins, is_whole_number in metrics %}
        select
            '{{ metric }}' as metric,
            {{ bins }} as bins,
            {{ is_whole_number }} as is_whole_number,
            min(cast({{ expression }} as double)) as low,
            max(cast({{ expression }} as double)) as high
        from {{ relation }}
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}

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

binned as (

    {%- for metric, relation, expression, bins, is_whole_number in metrics %}
        select
            widths.metric,
            least(
                floor(
                    (cast({{ relation }}.{{ expression }} as double) - widths.low)
                    / widths.bin_width
                ),
                widths.bins - 1
            ) as bin_number,
            count(*) as observations
        from {{ relation }}
        inner join widths on widths.metric = '{{ metric }}'
        group by widths.metric, bin_number
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}

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
