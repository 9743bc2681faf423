-- Purchase lines refused by silver, with their raw values and every failing rule (SPEC §3).
-- The base model keeps each line's cleaned values and outcomes, not its raw text: the raw
-- values are read back from bronze (immutable) by file and line, for the refused lines only.
--
-- Incremental on `_line_id`, the base model's key of a bronze line (doc block
-- `incremental_processing`; not exported): a run writes the refused lines that are not stored
-- with the same reasons, and the post-hook deletes the stored lines that are no longer refused.
-- Both compute the key from the file and line rather than read the base model's `_line_id`:
-- reading that random 128-bit column for ten million lines took 0.4 s per query, computing it
-- for the refused ones 0.03 s more than joining on (file, line).
-- Only their bronze lines are read: DuckDB filters the bronze scan on the files of the lines it
-- joins, so a batch's new refusals read one file.

{{ config(
    materialized=lakehouse.incremental_materialization(),
    unique_key='_line_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    post_hook=[
        "{{ lakehouse.prune_rows_not_in(
            this, '_line_id', ref('base_retail__purchases'),
            condition='reject_reason is not null',
            source_keys=lakehouse.line_id('_source_file', '_row_number')
        ) }}",
    ],
) }}

with

base as (

    select * from {{ ref('base_retail__purchases') }}

),

bronze as (

    select * from {{ source('retail', 'purchases') }}

),

refused as (

    select
        {{ lakehouse.line_id('_source_file', '_row_number') }} as _line_id,
        _source_file,
        _row_number,
        _ingested_at,
        _raw_line,
        _malformed_error,
        reject_reason,
        reject_reasons
    from base
    where reject_reason is not null

),

refused_to_write as (

    {%- if is_incremental() %}

        -- Incremental: the refused lines not stored with these reasons (new, or refused anew).
        select refused.*
        from refused
        left join {{ this }} as stored
            on
                refused._line_id = stored._line_id
                and refused.reject_reasons = stored.reject_reasons
        where stored._line_id is null

    {%- else %}

        select * from refused

    {%- endif %}

),

final as (

    select
        bronze.id_purchase,
        bronze.id_client,
        bronze.product,
        bronze.price,
        bronze.quantity,
        bronze.purchase_date,
        bronze.total,
        refused_to_write.reject_reason,
        refused_to_write.reject_reasons,
        refused_to_write._raw_line,
        refused_to_write._malformed_error,
        refused_to_write._source_file,
        refused_to_write._ingested_at,
        refused_to_write._row_number,
        refused_to_write._line_id,
        {{ lakehouse.build_id() }} as _build_id
    from refused_to_write
    inner join bronze
        on
            refused_to_write._source_file = bronze._source_file
            and refused_to_write._row_number = bronze._row_number

)

select * from final
