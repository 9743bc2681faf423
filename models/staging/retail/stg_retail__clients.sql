-- Silver clients: one row per client_id, the surviving copy with its fixes flagged (SPEC §3).

with

base as (

    select * from {{ ref('base_retail__clients') }}

),

survivors as (

    select * from base
    where reject_reason is null

),

final as (

    select
        client_id,
        name_text as name,
        valid_email as email,
        least(parsed_subscription_date, {{ lakehouse.as_of_date() }}) as subscription_date,
        coalesce(canonical_country, 'Unknown') as country,
        parsed_subscription_date > {{ lakehouse.as_of_date() }} as is_subscription_date_capped,
        valid_email is null as has_invalid_email,
        valid_email is not null
        and count(valid_email) over (partition by valid_email) > 1 as has_shared_email,
        canonical_country is null as has_unknown_country,
        _source_file,
        _ingested_at,
        _row_number
    from survivors

)

select * from final
