-- Purchase lines refused by silver, with their raw values and every failing rule (SPEC §3).
-- base_retail__purchases keeps typed values only: the raw values come from the bronze twin.
--
-- Incremental on `_line_id` (merge): a run looks at the lines (re)evaluated since this model's
-- newest row; a line that is no longer refused (a late client rescued an orphan, as_of_date
-- moved) comes out with no reason, and the merge deletes it.

{{ config(
    materialized='incremental',
    unique_key='_line_id',
    incremental_strategy='merge',
    merge_clauses=lakehouse.merge_clauses_removing('reject_reason'),
    on_schema_change='fail',
) }}

with

base as (

    select * from {{ ref('base_retail__purchases') }}
    {%- if is_incremental() %}
    where _evaluated_at > {{ lakehouse.high_water_mark() }}
    {%- else %}
    where reject_reason is not null
    {%- endif %}

),

bronze as (

    {% if is_incremental() -%}
        select * from {{ lakehouse.bronze_twin_lines('purchases', lakehouse.twins_of_changed_lines(
            ref('base_retail__purchases'), 'reject_reason is not null'
        )) }}
    {%- else -%}
        select * from {{ source('retail', 'purchases') }}
    {%- endif %}

),

refused as (

    select
        base._line_id,
        bronze.id_purchase,
        bronze.id_client,
        bronze.product,
        bronze.price,
        bronze.quantity,
        bronze.purchase_date,
        bronze.total,
        base.reject_reason,
        base.reject_reasons,
        base._raw_line,
        base._malformed_error,
        base._source_file,
        base._ingested_at,
        base._row_number,
        {{ lakehouse.evaluated_at() }} as _evaluated_at
    from base
    left join bronze
        on
            base._source_file = bronze._source_file
            and base._row_number = bronze._row_number

),

final as (

    select * from refused

)

select * from final
