-- One row per silver purchase, with the client's country at purchase time (SPEC §4).
--
-- Incremental on purchase_id (doc block `incremental_processing`): a row is a function of the
-- purchase's silver line and of its client (capped subscription date, country, history of
-- country versions), which `_row_state` fingerprints. A run rebuilds the purchases whose
-- fingerprint is new or differs from the stored one (delete+insert), and the post-hook deletes
-- the purchases that left silver (a purchase dated after a new, earlier as_of_date). Only the
-- purchases whose silver line or client lines were written after the table's last build
-- (`_build_id`, macro reflected_build) are compared; all of them when as_of_date changed.

{{ config(
    materialized=lakehouse.incremental_materialization(),
    unique_key='purchase_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    tags=['bronze_driven'],
    post_hook=[
        "{{ lakehouse.prune_rows_not_in(this, 'purchase_id', ref('stg_retail__purchases')) }}",
    ],
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

client_lines as (  -- noqa: ST03

    -- Every client line with the build that wrote it (read by an incremental build only).
    select * from {{ ref('base_retail__clients') }}

),

client_histories as (

    -- The client's versions as one fingerprint (an order-free aggregate of each version's hash:
    -- version numbers are unique per client), and whether there is more than one.
    select
        client_id,
        {{ lakehouse.fingerprint_agg(['version_number', 'country', 'valid_from']) }}
            as country_history,
        count(*) > 1 as has_several_versions
    from versions
    group by client_id

),

{%- set reflected = lakehouse.reflected_build(this) if is_incremental() else none %}
{%- if reflected is not none %}

changed_clients as (

    -- Clients with a line written after this table's last build: their purchases may change.
    select distinct client_id
    from client_lines
    where _build_id > {{ reflected }}

),
{%- endif %}

row_states as (

    -- Each silver purchase's fingerprint: with the whole purchase in a full build, alone in an
    -- incremental one (the stored fingerprints are compared on two columns, then the few changed
    -- purchases are read again: comparing whole rows took 1.8 times as long at ten million),
    -- and there only for the purchases whose line or client lines are newer than the table.
    select
        {% if is_incremental() -%} purchases.purchase_id, {%- else -%} purchases.*, {%- endif %}
        {{ lakehouse.fingerprint([
            'purchases._source_file',
            'purchases._row_number',
            'clients.subscription_date',
            'clients.country',
            'client_histories.country_history',
        ]) }} as _row_state
    from purchases
    inner join clients
        on purchases.client_id = clients.client_id
    left join client_histories
        on purchases.client_id = client_histories.client_id
    {%- if reflected is not none %}
    left join changed_clients
        on purchases.client_id = changed_clients.client_id
    where
        purchases._build_id > {{ reflected }}
        or changed_clients.client_id is not null
    {%- endif %}

),

-- An incremental and a full build take different CTEs here, both at the top level (sqlfluff
-- renders only the full build, and would indent its branch as a Jinja block).
-- noqa: disable=LT02
{%- if is_incremental() %}

changed_row_states as (

    select row_states.*
    from row_states
    left join {{ this }} as stored
        on
            row_states.purchase_id = stored.purchase_id
            and row_states._row_state = stored._row_state
    where stored.purchase_id is null

),

purchases_to_build as (

    -- Incremental: the purchases whose fingerprint is new or changed.
    select
        purchases.*,
        changed_row_states._row_state
    from purchases
    inner join changed_row_states
        on purchases.purchase_id = changed_row_states.purchase_id

),

{%- else %}

purchases_to_build as (

    -- Full build: every purchase.
    select * from row_states

),

{%- endif %}
-- noqa: enable=LT02

purchase_versions as (

    -- The version valid on the purchase date, else the first version. Only clients with
    -- several versions need it: a single version's country is the silver client's country (every
    -- batch sent that country, so the surviving copy has it too).
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
    inner join client_histories
        on
            purchases_to_build.client_id = client_histories.client_id
            and client_histories.has_several_versions
    inner join versions
        on purchases_to_build.client_id = versions.client_id

),

final as (

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
        cast({{ dbt.datediff(
            'clients.subscription_date', 'purchases_to_build.purchase_date', 'day'
        ) }} as bigint) as customer_tenure_days,
        purchases_to_build._row_state,
        {{ lakehouse.build_id() }} as _build_id
    from purchases_to_build
    inner join clients
        on purchases_to_build.client_id = clients.client_id
    inner join dates
        on purchases_to_build.purchase_date = dates.date_day
    left join purchase_versions
        on
            purchases_to_build.purchase_id = purchase_versions.purchase_id
            and purchase_versions.version_rank = 1

)

select * from final
