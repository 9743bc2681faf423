-- One row per silver purchase, with the client's country at purchase time (SPEC §4).
--
-- Incremental on purchase_id (merge): a run rebuilds the purchases whose silver row or base lines
-- changed since this model's newest row, and every purchase of a client whose silver row or
-- bronze history changed (country versions, capped subscription date -> tenure, a rescued
-- orphan's client). A purchase that left silver comes out as a key-only row, which the merge
-- deletes. The result is the same as a full rebuild (tests/test_incremental.py).
-- The base_ models tell which purchases and clients changed (incremental runs only):
-- depends_on: {{ ref('base_retail__purchases') }}, {{ ref('base_retail__clients') }}

{{ config(
    materialized='incremental',
    unique_key='purchase_id',
    incremental_strategy='merge',
    merge_clauses=lakehouse.merge_clauses_removing('client_id'),
    on_schema_change='fail',
) }}

with

purchases as (

    select * from {{ ref('stg_retail__purchases') }}

),

clients as (

    select * from {{ ref('stg_retail__clients') }}

),

versions as (

    select * from {{ ref('int_client_versions_tracked') }}

),

dates as (

    select * from {{ ref('dim_dates') }}

),

{% if is_incremental() %}

changed_clients as (

    select client_id from clients
    where _evaluated_at > {{ lakehouse.high_water_mark() }}
    union
    select client_id from {{ ref('base_retail__clients') }}
    where _evaluated_at > {{ lakehouse.high_water_mark() }} and client_id is not null

),

changed_ids as (

    select purchase_id from {{ ref('base_retail__purchases') }}
    where _evaluated_at > {{ lakehouse.high_water_mark() }} and purchase_id is not null
    union
    select purchase_id from purchases
    where _evaluated_at > {{ lakehouse.high_water_mark() }}
    union
    select purchase_id from purchases
    where client_id in (select changed_clients.client_id from changed_clients)

),

{% endif %}

purchases_to_build as (

    select * from purchases
    {%- if is_incremental() %}
    where purchase_id in (select changed_ids.purchase_id from changed_ids)
    {%- endif %}

),

purchase_versions as (

    -- The version valid on the purchase date, else the first version.
    select
        purchases_to_build.purchase_id,
        versions.country,
        row_number() over (
            partition by purchases_to_build.purchase_id
            order by
                case when versions.valid_from <= purchases_to_build.purchase_date then 0 else 1 end,
                case
                    when versions.valid_from <= purchases_to_build.purchase_date
                        then versions.version_number
                end desc,
                versions.version_number asc
        ) as version_rank
    from purchases_to_build
    inner join versions
        on purchases_to_build.client_id = versions.client_id

),

sales as (

    select
        purchases_to_build.purchase_id,
        purchases_to_build.client_id,
        purchases_to_build.product,
        coalesce(purchase_versions.country, clients.country) as country,
        purchases_to_build.price,
        purchases_to_build.quantity,
        purchases_to_build.total,
        purchases_to_build.is_total_recalculated,
        purchases_to_build.purchase_date,
        dates.year,
        dates.quarter,
        dates.month,
        dates.year_month,
        dates.iso_year,
        dates.iso_week,
        dates.iso_year_week,
        dates.iso_day_of_week,
        dates.day_name,
        dates.week_start_date,
        dates.month_start_date,
        {{ dbt.datediff('clients.subscription_date', 'purchases_to_build.purchase_date', 'day') }}
            as customer_tenure_days
    from purchases_to_build
    inner join clients
        on purchases_to_build.client_id = clients.client_id
    inner join dates
        on purchases_to_build.purchase_date = dates.date_day
    left join purchase_versions
        on
            purchases_to_build.purchase_id = purchase_versions.purchase_id
            and purchase_versions.version_rank = 1

),

{% if is_incremental() %}

removed_ids as (

    -- Re-examined purchases that left silver: key-only rows, deleted by the merge.
    select purchase_id from changed_ids
    where purchase_id not in (select sales.purchase_id from sales)

),

{% endif %}

final as (

    select
        purchase_id,
        client_id,
        product,
        country,
        price,
        quantity,
        total,
        is_total_recalculated,
        purchase_date,
        year,
        quarter,
        month,
        year_month,
        iso_year,
        iso_week,
        iso_year_week,
        iso_day_of_week,
        day_name,
        week_start_date,
        month_start_date,
        customer_tenure_days,
        {{ lakehouse.evaluated_at() }} as _evaluated_at
    from sales
    {%- if is_incremental() %}
    union all by name
    select
        purchase_id,
        {{ lakehouse.evaluated_at() }} as _evaluated_at
    from removed_ids
    {%- endif %}

)

select * from final
