-- Every bronze client line with its cleaned values and the outcome of each SPEC §3 rule.
-- stg_retail__clients keeps the survivors, stg_retail__clients_quarantine the rest.
-- Raw values stay in bronze: the quarantine model reads them back for the refused lines only.
--
-- Incremental on `_line_id` (doc block `incremental_processing`): a run cleans and checks the
-- lines of new bronze files only, then ranks again every stored line of a client id that has a
-- new line. A client line's outcome depends on nothing else: rules 1-3 look at the line alone,
-- rule 4 at the lines of the same id.

{{ config(
    materialized=lakehouse.incremental_materialization(),
    unique_key='_line_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
) }}

{%- set line_columns = [
    '_line_id', '_source_file', '_ingested_at', '_row_number', '_malformed_error', '_raw_line',
    'name_text', 'null_flags', 'client_id', 'parsed_subscription_date', 'valid_email',
    'canonical_country', 'is_malformed_line', 'is_invalid_client_id',
    'is_invalid_subscription_date',
] %}

with

source as (

    {% if is_incremental() -%}
        {{ lakehouse.new_bronze_lines(source('retail', 'clients')) }}
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

trimmed as (

    -- Trimmed once here, null tokens next: each value is trimmed once, not once per use.
    select
        source.*,
        {{ lakehouse.trim_blanks('id_client') }} as id_client_trimmed,
        {{ lakehouse.trim_blanks('name') }} as name_trimmed,
        {{ lakehouse.trim_blanks('email') }} as email_trimmed,
        {{ lakehouse.trim_blanks('subscription_date') }} as subscription_date_trimmed,
        {{ lakehouse.trim_blanks('country') }} as country_trimmed
    from source

),

cleaned as (

    select
        {{ lakehouse.line_id('_source_file', '_row_number') }} as _line_id,
        _source_file,
        _ingested_at,
        _row_number,
        _malformed_error,
        _raw_line,
        {{ lakehouse.null_if_token('id_client_trimmed') }} as id_client_text,
        {{ lakehouse.null_if_token('name_trimmed') }} as name_text,
        {{ lakehouse.null_if_token('email_trimmed') }} as email_text,
        {{ lakehouse.null_if_token('subscription_date_trimmed') }} as subscription_date_text,
        {{ lakehouse.null_if_token('country_trimmed') }} as country_text,
        -- Inner blanks collapse to one space: the five characters trim_blanks removes (spelt
        -- out: Java's \s, unlike RE2's, also holds the vertical tab).
        lower({{ lakehouse.regexp_replace_all(
            lakehouse.null_if_token('country_trimmed'), '[\\t\\n\\f\\r ]+', ' '
        ) }}) as country_key
    from trimmed

),

typed as (

    select
        cleaned.*,
        {{ lakehouse.null_flags([
            'id_client_text', 'name_text', 'email_text', 'subscription_date_text', 'country_text',
        ]) }} as null_flags,
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

new_lines as (

    -- Rules 1-3: decided by the line alone.
    select
        *,
        _malformed_error is not null as is_malformed_line,
        _malformed_error is null and client_id is null as is_invalid_client_id,
        _malformed_error is null and parsed_subscription_date is null
            as is_invalid_subscription_date
    from typed

),

{% if is_incremental() %}

new_client_ids as (

    select distinct client_id
    from new_lines
    where client_id is not null

),

{% endif %}

rules as (

    select {{ line_columns | join(', ') }} from new_lines
    {%- if is_incremental() %}
    union all
    -- Every stored line of a client id that has a new line: its copies are ranked again.
    select stored.{{ line_columns | join(', stored.') }}
    from {{ this }} as stored
    inner join new_client_ids
        on stored.client_id = new_client_ids.client_id
    {%- endif %}

),

passing as (

    select
        *,
        -- sqlfluff's duckdb dialect parses a leading `not (` as a function call.
        not (  -- noqa: LT01, LT06
            is_malformed_line or is_invalid_client_id or is_invalid_subscription_date
        ) as has_passed_row_rules
    from rules

),

-- Rule 4: the survivor per id is the newest batch's copy, then the first line in the file.
{{ lakehouse.rank_passing_copies('client_id', batch_order='desc') }},

outcomes as (

    select
        ranked.*,
        ranked.copy_rank > 1 as is_duplicate_client,
        ranked.has_passing_copy and coalesce(ranked.copy_rank, 0) != 1 as has_survivor_copy,
        case
            when ranked.is_malformed_line then 'malformed_line'
            when ranked.is_invalid_client_id then 'invalid_client_id'
            when ranked.is_invalid_subscription_date then 'invalid_subscription_date'
            when ranked.copy_rank > 1 then 'duplicate_client'
        end as reject_reason
    from ranked

),

final as (

    select
        *,
        {{ lakehouse.join_flags([
            ('is_malformed_line', 'malformed_line'),
            ('is_invalid_client_id', 'invalid_client_id'),
            ('is_invalid_subscription_date', 'invalid_subscription_date'),
            ('has_survivor_copy', 'duplicate_client'),
        ]) }} as reject_reasons,
        {{ lakehouse.build_id() }} as _build_id
    from outcomes

)

select * from final
