-- Purchase lines refused by silver, with their raw values and every failing rule (SPEC §3).
-- The base model keeps each line's cleaned values and outcomes, not its raw text: the raw
-- values are read back from bronze (immutable) by file and line, for the refused lines only.

with

base as (

    select * from {{ ref('base_retail__purchases') }}

),

bronze as (

    select * from {{ source('retail', 'purchases') }}

),

refused as (

    select
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

final as (

    select
        bronze.id_purchase,
        bronze.id_client,
        bronze.product,
        bronze.price,
        bronze.quantity,
        bronze.purchase_date,
        bronze.total,
        refused.reject_reason,
        refused.reject_reasons,
        refused._raw_line,
        refused._malformed_error,
        refused._source_file,
        refused._ingested_at,
        refused._row_number
    from refused
    inner join bronze
        on
            refused._source_file = bronze._source_file
            and refused._row_number = bronze._row_number

)

select * from final
