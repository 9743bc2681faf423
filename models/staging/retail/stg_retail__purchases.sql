-- Silver purchases: one row per purchase_id, the oldest valid copy, total checked (SPEC §3).
--
-- Incremental on purchase_id (merge): a run rebuilds the purchase ids whose base lines were
-- (re)evaluated since this model's newest row. An id left without a valid copy (as_of_date
-- moved back before its date) comes out as a key-only row, which the merge deletes.

{{ config(
    materialized='incremental',
    unique_key='purchase_id',
    incremental_strategy='merge',
    merge_clauses=lakehouse.merge_clauses_removing('_source_file'),
    on_schema_change='fail',
) }}

with

base as (

    select * from {{ ref('base_retail__purchases') }}

),

survivors as (

    select * from base
    where reject_reason is null

),

{% if is_incremental() %}

changed_ids as (

    select distinct purchase_id from base
    where _evaluated_at > {{ lakehouse.high_water_mark() }} and purchase_id is not null

),

{% endif %}

candidates as (

    select * from survivors
    {%- if is_incremental() %}
    where purchase_id in (select changed_ids.purchase_id from changed_ids)
    {%- endif %}

),

priced as (

    select
        *,
        cast(round(parsed_price * parsed_quantity, 2) as decimal(18, 2)) as computed_total
    from candidates

),

checked as (

    select
        purchase_id,
        client_id,
        canonical_product as product,
        parsed_price as price,
        parsed_quantity as quantity,
        parsed_purchase_date as purchase_date,
        case
            when parsed_total is null or abs(parsed_total - computed_total) > 0.01
                then computed_total
            else parsed_total
        end as total,
        parsed_total is null or abs(parsed_total - computed_total) > 0.01
            as is_total_recalculated,
        _source_file,
        _ingested_at,
        _row_number
    from priced

),

{% if is_incremental() %}

removed_ids as (

    -- Re-examined ids that no longer have a valid copy: key-only rows, deleted by the merge.
    select purchase_id from changed_ids
    where purchase_id not in (select checked.purchase_id from checked)

),

{% endif %}

final as (

    select
        purchase_id,
        client_id,
        product,
        price,
        quantity,
        purchase_date,
        total,
        is_total_recalculated,
        _source_file,
        _ingested_at,
        _row_number,
        {{ lakehouse.evaluated_at() }} as _evaluated_at
    from checked
    {%- if is_incremental() %}
    union all by name
    select
        purchase_id,
        {{ lakehouse.evaluated_at() }} as _evaluated_at
    from removed_ids
    {%- endif %}

)

select * from final
