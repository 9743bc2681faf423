-- Purchase lines refused by silver, with their raw values and every failing rule (SPEC §3).

with

base as (

    select * from {{ ref('base_retail__purchases') }}

),

final as (

    select
        id_purchase,
        id_client,
        product,
        price,
        quantity,
        purchase_date,
        total,
        reject_reason,
        reject_reasons,
        _raw_line,
        _malformed_error,
        _source_file,
        _ingested_at,
        _row_number
    from base
    where reject_reason is not null

)

select * from final
