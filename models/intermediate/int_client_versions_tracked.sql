-- Client history (SCD2) rebuilt from every bronze batch (SPEC §4): a version starts at the
-- ingestion date of the batch that first sent a new country; purchases take the country of the
-- version valid on their date, or the first version for earlier purchases.

with

base as (

    select * from {{ ref('base_retail__clients') }}

),

silver_clients as (

    select client_id from {{ ref('stg_retail__clients') }}

),

valid_copies as (

    -- Rows passing rules 1-3 (survivors and duplicates): every batch's word on the client.
    select
        client_id,
        coalesce(canonical_country, 'Unknown') as country,
        _ingested_at,
        _source_file,
        _row_number,
        row_number() over (
            partition by client_id, _ingested_at, _source_file
            order by _row_number
        ) as line_rank
    from base
    where not (is_malformed_line or is_invalid_client_id or is_invalid_subscription_date)

),

per_batch as (

    select
        client_id,
        country,
        _ingested_at,
        _source_file,
        lag(country) over (
            partition by client_id order by _ingested_at, _source_file
        ) as previous_country
    from valid_copies
    where line_rank = 1

),

changes as (

    select
        client_id,
        country,
        cast(_ingested_at as date) as valid_from,
        _ingested_at,
        _source_file
    from per_batch
    where previous_country is null or previous_country != country

),

final as (

    select
        changes.client_id,
        row_number() over (
            partition by changes.client_id order by changes._ingested_at, changes._source_file
        ) as version_number,
        changes.country,
        changes.valid_from,
        lead(changes.valid_from) over (
            partition by changes.client_id order by changes._ingested_at, changes._source_file
        ) as valid_to,
        changes._ingested_at,
        changes._source_file
    from changes
    inner join silver_clients
        on changes.client_id = silver_clients.client_id

)

select * from final
