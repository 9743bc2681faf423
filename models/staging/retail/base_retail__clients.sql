-- Every bronze client line with its cleaned values and the outcome of each SPEC §3 rule.
-- stg_retail__clients keeps the survivors, stg_retail__clients_quarantine the rest.
--
-- Incremental (see the `incremental_processing` doc block): the lines of new twin files are
-- cleaned and checked line by line once; then every line of a client id that has a new line is
-- ranked again over all of bronze (the newest batch wins). No client rule depends on as_of_date.

{{ config(
    materialized='incremental',
    unique_key='_line_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
) }}

{%- set line_columns = [
    '_line_id', '_source_file', '_ingested_at', '_row_number', '_malformed_error', '_raw_line',
    'id_client', 'name', 'email', 'subscription_date', 'country', 'id_client_text', 'name_text',
    'email_text', 'subscription_date_text', 'country_text', 'country_key', 'client_id',
    'parsed_subscription_date', 'valid_email', 'canonical_country', 'is_malformed_line',
    'is_invalid_client_id', 'is_invalid_subscription_date',
] -%}

with

source as (

    {% if is_incremental() -%}
        select * from {{ lakehouse.bronze_twin_lines('clients', lakehouse.unprocessed_bronze_files('clients')) }}
    {%- else -%}
        select * from {{ source('retail', 'clients') }}
    {%- endif %}

),

countries as (

    select * from {{ ref('countries') }}

),

country_aliases as (

    select * from {{ ref('country_aliases') }}

),

cleaned as (

    select
        {{ lakehouse.line_id('_source_file', '_row_number') }} as _line_id,
        _source_file,
        _ingested_at,
        _row_number,
        _malformed_error,
        _raw_line,
        id_client,
        name,
        email,
        subscription_date,
        country,
        {{ lakehouse.clean_text('id_client') }} as id_client_text,
        {{ lakehouse.clean_text('name') }} as name_text,
        {{ lakehouse.clean_text('email') }} as email_text,
        {{ lakehouse.clean_text('subscription_date') }} as subscription_date_text,
        {{ lakehouse.clean_text('country') }} as country_text,
        lower(regexp_replace({{ lakehouse.clean_text('country') }}, '\s+', ' ', 'g'))
            as country_key
    from source

),

typed as (

    select
        cleaned.*,
        {{ lakehouse.parse_id('id_client_text') }} as client_id,
        {{ lakehouse.parse_date('subscription_date_text') }} as parsed_subscription_date,
        {{ lakehouse.valid_email('email_text') }} as valid_email,
        coalesce(countries.country, country_aliases.country) as canonical_country
    from cleaned
    left join countries
        on cleaned.country_key = lower(countries.country)
    left join country_aliases
        on cleaned.country_key = lower(country_aliases.alias)

),

line_rules as (

    -- Rules 1-3: decided by the line alone, once.
    select
        *,
        _malformed_error is not null as is_malformed_line,
        _malformed_error is null and client_id is null as is_invalid_client_id,
        _malformed_error is null and parsed_subscription_date is null
            as is_invalid_subscription_date
    from typed

),

{% if is_incremental() %}

stored_lines as (

    -- Every stored line of a client id that has a new line.
    select {{ line_columns | join(', ') }} from {{ this }}
    where client_id in (select line_rules.client_id from line_rules)

),

{% endif %}

lines_to_evaluate as (

    select {{ line_columns | join(', ') }} from line_rules
    {%- if is_incremental() %}
    union all
    select * from stored_lines
    {%- endif %}

),

passing as (

    select
        *,
        -- sqlfluff's duckdb dialect parses a leading `not (` as a function call.
        not (  -- noqa: LT01, LT06
            is_malformed_line or is_invalid_client_id or is_invalid_subscription_date
        ) as passes_line_rules
    from lines_to_evaluate

),

ranked as (

    -- Survivor per id: newest batch, then first line in the file, among rows passing rules 1-3
    -- (they sort first in the id's window). Complete: every line of a ranked id is evaluated in
    -- the same run. One window pass: the rank and whether the id has a surviving copy.
    select
        *,
        case when passes_line_rules then row_number() over copies end as copy_rank,
        bool_or(passes_line_rules) over (
            copies rows between unbounded preceding and unbounded following
        ) as has_valid_copy
    from passing
    window copies as (
        partition by client_id
        order by passes_line_rules desc, _ingested_at desc, _source_file desc, _row_number asc
    )

),

final as (

    select
        * exclude (passes_line_rules, has_valid_copy),
        copy_rank > 1 as is_duplicate_client,
        client_id is not null and has_valid_copy and coalesce(copy_rank, 0) != 1
            as has_survivor_copy,
        case
            when is_malformed_line then 'malformed_line'
            when is_invalid_client_id then 'invalid_client_id'
            when is_invalid_subscription_date then 'invalid_subscription_date'
            when copy_rank > 1 then 'duplicate_client'
        end as reject_reason
    from ranked

)

select
    *,
    {{ lakehouse.join_flags([
        ('is_malformed_line', 'malformed_line'),
        ('is_invalid_client_id', 'invalid_client_id'),
        ('is_invalid_subscription_date', 'invalid_subscription_date'),
        ('has_survivor_copy', 'duplicate_client'),
    ]) }} as reject_reasons,
    {{ lakehouse.evaluated_at() }} as _evaluated_at
from final
