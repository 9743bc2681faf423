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
        _row_number
    from base
    where not (is_malformed_line or is_invalid_client_id or is_invalid_subscription_date)

),

copy_counts as (

    select
        client_id,
        count(*) as valid_copies
    from valid_copies
    group by client_id

),

single_versions as (

    -- A client sent once has one version, from that batch on: no window needed. Most clients
    -- are sent once, so the windows below sort only the few sent again.
    select
        valid_copies.client_id,
        cast(1 as bigint) as version_number,
        valid_copies.country,
        cast(valid_copies._ingested_at as date) as valid_from,
        cast(null as date) as valid_to,
        valid_copies._ingested_at,
        valid_copies._source_file
    from valid_copies
    inner join copy_counts
        on valid_copies.client_id = copy_counts.client_id
    where copy_counts.valid_copies = 1

),

repeated_copies as (

    select
        valid_copies.*,
        row_number() over (
            partition by
                valid_copies.client_id, valid_copies._ingested_at, valid_copies._source_file
            order by valid_copies._row_number
        ) as line_rank
    from valid_copies
    inner join copy_counts
        on valid_copies.client_id = copy_counts.client_id
    where copy_counts.valid_copies > 1

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
    from repeated_copies
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

repeated_versions as (

    select
        client_id,
        row_number() over (
            partition by client_id order by _ingested_at, _source_file
        ) as version_number,
        country,
        valid_from,
        lead(valid_from) over (
            partition by client_id order by _ingested_at, _source_file
        ) as valid_to,
        _ingested_at,
        _source_file
    from changes

),

versions as (

    select * from single_versions
    union all
    select * from repeated_versions

),

final as (

    select versions.*
    from versions
    inner join silver_clients
        on versions.client_id = silver_clients.client_id

)

select * from final
