-- Silver clients: one row per client_id, the surviving copy with its fixes flagged (SPEC §3).
--
-- Incremental on client_id: a run rebuilds the clients whose base lines were (re)evaluated since
-- this model's newest row, the clients whose as_of_date capping no longer holds, and every
-- client sharing an e-mail (old or new) with one of those (`has_shared_email` is counted over
-- all silver clients).

{{ config(
    materialized='incremental',
    unique_key='client_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
) }}

with

base as (

    select * from {{ ref('base_retail__clients') }}

),

survivors as (

    select * from base
    where reject_reason is null

),

{% if is_incremental() %}

existing as (

    select * from {{ this }}

),

changed_ids as (

    select client_id from base
    where _evaluated_at > {{ lakehouse.high_water_mark() }} and client_id is not null
    union
    select client_id from existing
    where
        (
            is_subscription_date_capped
            and subscription_date != {{ lakehouse.as_of_date() }}
        )
        or (
            not is_subscription_date_capped
            and subscription_date > {{ lakehouse.as_of_date() }}
        )

),

changed_emails as (

    select existing.email from existing
    where existing.client_id in (select changed_ids.client_id from changed_ids)
    union
    select survivors.valid_email as email from survivors
    where survivors.client_id in (select changed_ids.client_id from changed_ids)

),

clients_to_build as (

    select client_id from changed_ids
    union
    select existing.client_id from existing
    where existing.email in (select changed_emails.email from changed_emails)

),

{% endif %}

candidates as (

    select * from survivors
    {%- if is_incremental() %}
    where client_id in (select clients_to_build.client_id from clients_to_build)
    {%- endif %}

),

email_holders as (

    -- Silver clients per e-mail (all of them: a client's sharing depends on the others).
    select
        valid_email,
        count(*) as holders
    from survivors
    where
        {% if is_incremental() -%}
            valid_email in (select changed_emails.email from changed_emails)
        {%- else -%}
            valid_email is not null
        {%- endif %}
    group by valid_email

),

final as (

    select
        candidates.client_id,
        candidates.name_text as name,
        candidates.valid_email as email,
        least(candidates.parsed_subscription_date, {{ lakehouse.as_of_date() }})
            as subscription_date,
        coalesce(candidates.canonical_country, 'Unknown') as country,
        candidates.parsed_subscription_date > {{ lakehouse.as_of_date() }}
            as is_subscription_date_capped,
        candidates.valid_email is null as has_invalid_email,
        coalesce(email_holders.holders, 0) > 1 as has_shared_email,
        candidates.canonical_country is null as has_unknown_country,
        candidates._source_file,
        candidates._ingested_at,
        candidates._row_number,
        {{ lakehouse.evaluated_at() }} as _evaluated_at
    from candidates
    left join email_holders
        on candidates.valid_email = email_holders.valid_email

)

select * from final
