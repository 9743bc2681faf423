-- One row per silver client: purchase KPIs, recency, value flags, RFM scores and segment
-- (SPEC §4). Money averages and the purchase frequency are exact and rounded once.

{#- SPEC §4: active = a purchase within the last 90 days (recency ≤ 90). -#}
{%- set active_window_days = 90 %}

with

clients as (

    select * from {{ ref('dim_clients') }}

),

sales as (

    select * from {{ ref('fct_sales') }}

),

per_client as (

    select
        client_id,
        count(*) as total_purchases,
        {{ lakehouse.to_cents('sum(total)') }} as spent_cents,
        min(total) as min_order_value,
        max(total) as max_order_value,
        cast(sum(quantity) as bigint) as total_quantity,
        min(purchase_date) as first_purchase_date,
        max(purchase_date) as last_purchase_date
    from sales
    group by client_id

),

purchasing as (

    select
        *,
        cast(
            {{ dbt.datediff('first_purchase_date', lakehouse.as_of_date(), 'day') }}
            as bigint
        ) as customer_lifetime_days,
        cast(
            {{ dbt.datediff('last_purchase_date', lakehouse.as_of_date(), 'day') }}
            as bigint
        ) as days_since_last_purchase
    from per_client

),

-- k = purchasing clients whose value is at most as good as this client's, so ties share the
-- highest rank. Recency (fewer days is better) and frequency take a few hundred and a few dozen
-- values: clients are counted per value and the counts summed in order, a fraction of the cost
-- of a window over every client. Money takes about one value per two clients: a window.

recency_ranks as (

    select
        days_since_last_purchase,
        cast(sum(count(*)) over (
            order by days_since_last_purchase desc
            rows between unbounded preceding and current row
        ) as bigint) as recency_rank
    from purchasing
    group by days_since_last_purchase

),

frequency_ranks as (

    select
        total_purchases,
        cast(sum(count(*)) over (
            order by total_purchases asc
            rows between unbounded preceding and current row
        ) as bigint) as frequency_rank
    from purchasing
    group by total_purchases

),

ranked as (

    -- The range frame counts every peer.
    select
        purchasing.*,
        recency_ranks.recency_rank,
        frequency_ranks.frequency_rank,
        count(*) over (
            order by purchasing.spent_cents asc
            range between unbounded preceding and current row
        ) as monetary_rank,
        count(*) over () as purchasing_clients
    from purchasing
    inner join recency_ranks
        on purchasing.days_since_last_purchase = recency_ranks.days_since_last_purchase
    inner join frequency_ranks
        on purchasing.total_purchases = frequency_ranks.total_purchases

),

spent_median as (

    -- Continuous median on integer cents: a DOUBLE holding n or n + 0.5 cents exactly (the
    -- same median on DECIMAL(18,2) would be truncated to the cent).
    select
        {{ lakehouse.percentile_cont('spent_cents', 0.5) }} as median_spent_cents
    from purchasing

),

scored as (

    -- score = ceil(5 × k / N) in integer arithmetic.
    select
        ranked.*,
        spent_median.median_spent_cents,
        cast(
            {{ lakehouse.int_div(
                '5 * ranked.recency_rank + ranked.purchasing_clients - 1', 'ranked.purchasing_clients'
            ) }} as integer
        ) as r_score,
        cast(
            {{ lakehouse.int_div(
                '5 * ranked.frequency_rank + ranked.purchasing_clients - 1', 'ranked.purchasing_clients'
            ) }} as integer
        ) as f_score,
        cast(
            {{ lakehouse.int_div(
                '5 * ranked.monetary_rank + ranked.purchasing_clients - 1', 'ranked.purchasing_clients'
            ) }} as integer
        ) as m_score
    from ranked
    cross join spent_median

),

segmented as (

    select
        *,
        case
            when r_score in (1, 2) and f_score in (1, 2) then 'Hibernating'
            when r_score in (1, 2) and f_score in (3, 4) then 'At Risk'
            when r_score in (1, 2) and f_score = 5
                then '{{ dbt.escape_single_quotes("Can't Lose Them") }}'
            when r_score = 3 and f_score in (1, 2) then 'About to Sleep'
            when r_score = 3 and f_score = 3 then 'Need Attention'
            when r_score in (3, 4) and f_score in (4, 5) then 'Loyal Customers'
            when r_score = 4 and f_score = 1 then 'Promising'
            when r_score = 5 and f_score = 1 then 'New Customers'
            when r_score in (4, 5) and f_score in (2, 3) then 'Potential Loyalists'
            when r_score = 5 and f_score in (4, 5) then 'Champions'
        end as rfm_segment
    from scored

),

flagged as (

    select
        *,
        days_since_last_purchase <= {{ active_window_days }} as is_active,
        spent_cents > median_spent_cents as is_high_value
    from segmented

),

final as (

    select
        clients.client_id,
        clients.name,
        clients.email_masked,
        clients.country,
        coalesce(flagged.total_purchases, 0) as total_purchases,
        cast(coalesce(flagged.spent_cents, 0) * 0.01 as decimal(18, 2)) as total_spent,
        {{ lakehouse.money_avg('flagged.spent_cents', 'flagged.total_purchases') }}
            as avg_order_value,
        flagged.min_order_value,
        flagged.max_order_value,
        coalesce(flagged.total_quantity, 0) as total_quantity,
        flagged.first_purchase_date,
        flagged.last_purchase_date,
        flagged.customer_lifetime_days,
        -- purchases / max(lifetime_days / 30, 1) = 30 × purchases / max(lifetime_days, 30)
        {{ lakehouse.exact_ratio(
            '30 * flagged.total_purchases', 'greatest(flagged.customer_lifetime_days, 30)'
        ) }}
            as purchase_frequency_per_month,
        flagged.days_since_last_purchase,
        coalesce(flagged.is_active, false) as is_active,
        coalesce(flagged.is_high_value, false) as is_high_value,
        coalesce(flagged.is_high_value and not flagged.is_active, false) as is_at_risk,
        flagged.r_score,
        flagged.f_score,
        flagged.m_score,
        coalesce(flagged.rfm_segment, 'No Purchases') as rfm_segment
    from clients
    left join flagged
        on clients.client_id = flagged.client_id

)

select * from final
