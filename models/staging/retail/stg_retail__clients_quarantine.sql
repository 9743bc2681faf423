-- Client lines refused by silver, with their raw values and every failing rule (SPEC §3).

with

base as (

    select * from {{ ref('base_retail__clients') }}

),

final as (

    select
        id_client,
        name,
        email,
        subscription_date,
        country,
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
