-- Every bronze purchase line with its cleaned values and the outcome of each SPEC §3 rule.
-- The orphan rule looks up the silver clients: the one cross-entity reference staging allows.
-- Raw values stay in bronze: the quarantine model reads them back for the refused lines only.
--
-- Incremental on `_line_id` (doc block `incremental_processing`): a run cleans and checks the
-- lines of new bronze files only (rules 1-7 look at the line alone), then evaluates rules 8-10
-- again where their outcome can have changed: a stored line whose future-date check (rule 8,
-- as_of_date) or orphan check (rule 9, silver clients) no longer gives its stored value, and
-- every stored line of a purchase id that has a new or such a changed line (rule 10 ranks the
-- copies of an id). Every other stored line keeps an outcome that a full rebuild would repeat.

{{ config(
    materialized=lakehouse.incremental_materialization(),
    unique_key='_line_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
) }}

{%- set line_columns = [
    '_line_id', '_source_file', '_ingested_at', '_row_number', '_malformed_error', '_raw_line',
    'null_flags', 'purchase_id', 'client_id', 'canonical_product',
    'parsed_price', 'parsed_quantity', 'parsed_purchase_date', 'parsed_total',
    'checked_total', 'is_total_recalculated',
    'is_malformed_line', 'is_invalid_purchase_id', 'is_invalid_client_id', 'is_unknown_product',
    'is_invalid_price', 'is_invalid_quantity', 'is_invalid_purchase_date',
] %}

{%- set is_future_purchase_date -%}
    coalesce(parsed_purchase_date > {{ lakehouse.as_of_date() }}, false)
{%- endset %}

{#- On lines joined to the silver clients (`has_silver_client`). -#}
{%- set is_orphan_purchase -%}
    _malformed_error is null and client_id is not null and not has_silver_client
{%- endset %}

with

source as (

    {% if is_incremental() -%}
        {{ lakehouse.new_bronze_lines(source('retail', 'purchases')) }}
    {%- else -%}
        select * from {{ source('retail', 'purchases') }}
    {%- endif %}

),

products as (

    select * from {{ ref('products') }}

),

clients as (

    -- One row per client (silver de-duplicates them; its unique test runs before this model in a
    -- build): the joins below repeat no line.
    select client_id from {{ ref('stg_retail__clients') }}

),

trimmed as (

    -- Trimmed once here, null tokens next: each value is trimmed once, not once per use.
    select
        source.*,
        {{ lakehouse.trim_blanks('id_purchase') }} as id_purchase_trimmed,
        {{ lakehouse.trim_blanks('id_client') }} as id_client_trimmed,
        {{ lakehouse.trim_blanks('product') }} as product_trimmed,
        {{ lakehouse.trim_blanks('price') }} as price_trimmed,
        {{ lakehouse.trim_blanks('quantity') }} as quantity_trimmed,
        {{ lakehouse.trim_blanks('purchase_date') }} as purchase_date_trimmed,
        {{ lakehouse.trim_blanks('total') }} as total_trimmed
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
        {{ lakehouse.null_if_token('id_purchase_trimmed') }} as id_purchase_text,
        {{ lakehouse.null_if_token('id_client_trimmed') }} as id_client_text,
        {{ lakehouse.null_if_token('product_trimmed') }} as product_text,
        {{ lakehouse.null_if_token('price_trimmed') }} as price_text,
        {{ lakehouse.null_if_token('quantity_trimmed') }} as quantity_text,
        {{ lakehouse.null_if_token('purchase_date_trimmed') }} as purchase_date_text,
        {{ lakehouse.null_if_token('total_trimmed') }} as total_text
    from trimmed

),

typed as (

    select
        cleaned.*,
        {{ lakehouse.null_flags([
            'id_purchase_text', 'id_client_text', 'product_text', 'price_text', 'quantity_text',
            'purchase_date_text', 'total_text',
        ]) }} as null_flags,
        {{ lakehouse.parse_id('id_purchase_text') }} as purchase_id,
        {{ lakehouse.parse_id('id_client_text') }} as client_id,
        products.product as canonical_product,
        {{ lakehouse.parse_money('price_text') }} as parsed_price,
        {{ lakehouse.parse_quantity('quantity_text') }} as parsed_quantity,
        {{ lakehouse.parse_date('purchase_date_text') }} as parsed_purchase_date,
        {{ lakehouse.parse_money('total_text') }} as parsed_total
    from cleaned
    left join products
        on lower(cleaned.product_text) = lower(products.product)

),

priced as (

    -- Null when price × quantity does not fit DECIMAL(18,2) (rule 6 then refuses the quantity)
    -- or when either is missing: a refused line cannot fail the build.
    select
        *,
        {{ lakehouse.try_decimal('round(parsed_price * parsed_quantity, 2)') }} as computed_total
    from typed

),

totals_checked as (

    -- SPEC §3: the total is recomputed when missing or more than 0.01 away from price × quantity
    -- (null when there is no product to compare with).
    select
        *,
        case
            when computed_total is not null
                then parsed_total is null or abs(parsed_total - computed_total) > 0.01
        end as is_total_recalculated
    from priced

),

new_lines as (

    -- Rules 1-7: decided by the line alone; so is the total silver keeps, computed once here
    -- rather than by every reader of the silver view.
    select
        *,
        case
            when is_total_recalculated then computed_total
            when not is_total_recalculated then parsed_total
        end as checked_total,
        _malformed_error is not null as is_malformed_line,
        _malformed_error is null and purchase_id is null as is_invalid_purchase_id,
        _malformed_error is null and client_id is null as is_invalid_client_id,
        _malformed_error is null and canonical_product is null as is_unknown_product,
        -- Negative as written: a minus sign before any digit but 0, so -0.004 (0.00 in cents)
        -- is refused and -0.00 is a zero price.
        _malformed_error is null and (
            parsed_price is null
            or (price_text like '-%' and not {{ lakehouse.matches('price_text', '-[0.]*') }})
        ) as is_invalid_price,
        -- A valid price times this quantity must fit DECIMAL(18,2), or the line would have no
        -- total: one absurd quantity is refused with its line rather than failing the build.
        _malformed_error is null and (
            parsed_quantity is null
            or parsed_quantity < 1
            or (parsed_price is not null and computed_total is null)
        ) as is_invalid_quantity,
        _malformed_error is null and parsed_purchase_date is null as is_invalid_purchase_date
    from totals_checked

),

{% if is_incremental() %}

stored_lines as (

    select
        stored.*,
        clients.client_id is not null as has_silver_client
    from {{ this }} as stored
    left join clients
        on stored.client_id = clients.client_id

),

changed_lines as (

    -- Stored lines whose rule 8 or 9 no longer gives the stored outcome.
    select
        _line_id,
        purchase_id
    from stored_lines
    where
        is_future_purchase_date != ({{ is_future_purchase_date }})
        or is_orphan_purchase != ({{ is_orphan_purchase }})

),

reranked_ids as (

    select purchase_id from new_lines
    where purchase_id is not null
    union
    select purchase_id from changed_lines
    where purchase_id is not null

),

{% endif %}

lines as (

    select {{ line_columns | join(', ') }} from new_lines
    {%- if is_incremental() %}
    union all
    select stored.{{ line_columns | join(', stored.') }}
    from {{ this }} as stored
    inner join reranked_ids
        on stored.purchase_id = reranked_ids.purchase_id
    union all
    select stored.{{ line_columns | join(', stored.') }}
    from {{ this }} as stored
    inner join changed_lines
        on stored._line_id = changed_lines._line_id
    where stored.purchase_id is null
    {%- endif %}

),

lines_with_clients as (

    select
        lines.*,
        clients.client_id is not null as has_silver_client
    from lines
    left join clients
        on lines.client_id = clients.client_id

),

rules as (

    -- Rules 8-9: depend on as_of_date and on the silver clients.
    select
        {{ line_columns | join(', ') }},
        {{ is_future_purchase_date }} as is_future_purchase_date,
        {{ is_orphan_purchase }} as is_orphan_purchase
    from lines_with_clients

),

passing as (

    select
        *,
        -- sqlfluff's duckdb dialect parses a leading `not (` as a function call.
        not (  -- noqa: LT01, LT06
            is_malformed_line or is_invalid_purchase_id or is_invalid_client_id
            or is_unknown_product or is_invalid_price or is_invalid_quantity
            or is_invalid_purchase_date or is_future_purchase_date or is_orphan_purchase
        ) as has_passed_row_rules
    from rules

),

-- Rule 10: the survivor per id is the oldest batch's copy, then the first line in the file.
{{ lakehouse.rank_passing_copies('purchase_id', batch_order='asc') }},

outcomes as (

    select
        ranked.*,
        ranked.has_passing_copy and coalesce(ranked.copy_rank, 0) != 1 as has_survivor_copy,
        case
            when ranked.is_malformed_line then 'malformed_line'
            when ranked.is_invalid_purchase_id then 'invalid_purchase_id'
            when ranked.is_invalid_client_id then 'invalid_client_id'
            when ranked.is_unknown_product then 'unknown_product'
            when ranked.is_invalid_price then 'invalid_price'
            when ranked.is_invalid_quantity then 'invalid_quantity'
            when ranked.is_invalid_purchase_date then 'invalid_purchase_date'
            when ranked.is_future_purchase_date then 'future_purchase_date'
            when ranked.is_orphan_purchase then 'orphan_purchase'
            when ranked.copy_rank > 1 then 'duplicate_purchase'
        end as reject_reason
    from ranked

),

final as (

    select
        *,
        {{ lakehouse.join_flags([
            ('is_malformed_line', 'malformed_line'),
            ('is_invalid_purchase_id', 'invalid_purchase_id'),
            ('is_invalid_client_id', 'invalid_client_id'),
            ('is_unknown_product', 'unknown_product'),
            ('is_invalid_price', 'invalid_price'),
            ('is_invalid_quantity', 'invalid_quantity'),
            ('is_invalid_purchase_date', 'invalid_purchase_date'),
            ('is_future_purchase_date', 'future_purchase_date'),
            ('is_orphan_purchase', 'orphan_purchase'),
            ('has_survivor_copy', 'duplicate_purchase'),
        ]) }} as reject_reasons,
        {{ lakehouse.build_id() }} as _build_id
    from outcomes

)

select * from final
