-- Every bronze purchase line with its typed values and the outcome of each SPEC §3 rule.
-- The orphan rule looks up the silver clients: the one cross-entity reference staging allows.
--
-- Incremental (see the `incremental_processing` doc block): the lines of new twin files are
-- cleaned and checked line by line once; then every line whose outcome can have changed is
-- re-evaluated over all of bronze - the lines of every purchase id that has a new line (copy
-- ranking), stored orphans whose client is now in silver, and stored lines whose future-date
-- check flips with as_of_date.
--
-- The raw field values are not copied here (storing ten million raw strings costs more than all
-- the checks): they stay in the immutable bronze twin, and stg_retail__purchases_quarantine reads
-- them from there for the refused lines. Which fields were missing (blank or a null token) is
-- kept as flags for the quality report.

{{ config(
    materialized='incremental',
    unique_key='_line_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
) }}

{%- set fields = [
    'id_purchase', 'id_client', 'product', 'price', 'quantity', 'purchase_date', 'total',
] -%}
{%- set line_columns = [
    '_line_id', '_source_file', '_ingested_at', '_row_number', '_malformed_error', '_raw_line',
    'purchase_id', 'client_id', 'canonical_product', 'parsed_price', 'parsed_quantity',
    'parsed_purchase_date', 'parsed_total',
] -%}
{%- for field in fields -%}
    {%- do line_columns.append('is_' ~ field ~ '_missing') -%}
{%- endfor -%}
{%- do line_columns.extend([
    'is_malformed_line', 'is_invalid_purchase_id', 'is_invalid_client_id', 'is_unknown_product',
    'is_invalid_price', 'is_invalid_quantity', 'is_invalid_purchase_date',
]) -%}

with

source as (

    {% if is_incremental() -%}
        select * from {{ lakehouse.bronze_twin_lines('purchases', lakehouse.unprocessed_bronze_files('purchases')) }}
    {%- else -%}
        select * from {{ source('retail', 'purchases') }}
    {%- endif %}

),

products as (

    select * from {{ ref('products') }}

),

clients as (

    select client_id from {{ ref('stg_retail__clients') }}

),

cleaned as (

    select
        {{ lakehouse.line_id('_source_file', '_row_number') }} as _line_id,
        _source_file,
        _ingested_at,
        _row_number,
        _malformed_error,
        _raw_line,
        {{ lakehouse.clean_text('id_purchase') }} as id_purchase_text,
        {{ lakehouse.clean_text('id_client') }} as id_client_text,
        {{ lakehouse.clean_text('product') }} as product_text,
        {{ lakehouse.clean_text('price') }} as price_text,
        {{ lakehouse.clean_text('quantity') }} as quantity_text,
        {{ lakehouse.clean_text('purchase_date') }} as purchase_date_text,
        {{ lakehouse.clean_text('total') }} as total_text
    from source

),

typed as (

    select
        cleaned.*,
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

line_rules as (

    -- Rules 1-7: decided by the line alone, once.
    select
        *,
        _malformed_error is null and id_purchase_text is null as is_id_purchase_missing,
        _malformed_error is null and id_client_text is null as is_id_client_missing,
        _malformed_error is null and product_text is null as is_product_missing,
        _malformed_error is null and price_text is null as is_price_missing,
        _malformed_error is null and quantity_text is null as is_quantity_missing,
        _malformed_error is null and purchase_date_text is null as is_purchase_date_missing,
        _malformed_error is null and total_text is null as is_total_missing,
        _malformed_error is not null as is_malformed_line,
        _malformed_error is null and purchase_id is null as is_invalid_purchase_id,
        _malformed_error is null and client_id is null as is_invalid_client_id,
        _malformed_error is null and canonical_product is null as is_unknown_product,
        _malformed_error is null and (parsed_price is null or parsed_price < 0)
            as is_invalid_price,
        _malformed_error is null and (parsed_quantity is null or parsed_quantity < 1)
            as is_invalid_quantity,
        _malformed_error is null and parsed_purchase_date is null as is_invalid_purchase_date
    from typed

),

{% if is_incremental() %}

future_flips as (

    -- Stored lines whose future-date check (rule 8) no longer agrees with as_of_date.
    select
        _line_id,
        purchase_id
    from {{ this }}
    where
        is_future_purchase_date
        != coalesce(parsed_purchase_date > {{ lakehouse.as_of_date() }}, false)

),

stored_orphans as (

    select
        _line_id,
        purchase_id,
        client_id
    from {{ this }}
    where is_orphan_purchase

),

rescued_orphans as (

    -- Stored orphans (rule 9) whose client is now in silver. Silver clients only ever grow:
    -- bronze is append-only and rules 1-3 of clients are line rules.
    select
        stored_orphans._line_id,
        stored_orphans.purchase_id
    from stored_orphans
    inner join clients
        on stored_orphans.client_id = clients.client_id

),

changed_outcomes as (

    select * from future_flips
    union all
    select * from rescued_orphans

),

ranked_ids as (

    -- Purchase ids whose copies must be ranked again.
    select purchase_id from line_rules
    where purchase_id is not null
    union
    select purchase_id from changed_outcomes
    where purchase_id is not null

),

stored_lines as (

    -- Every stored line of those ids, and the changed lines without an id.
    select {{ line_columns | join(', ') }} from {{ this }}
    where purchase_id in (select ranked_ids.purchase_id from ranked_ids)
    union all
    select {{ line_columns | join(', ') }} from {{ this }}
    where
        _line_id in (
            select changed_outcomes._line_id from changed_outcomes
            where changed_outcomes.purchase_id is null
        )

),

{% endif %}

lines_to_evaluate as (

    select {{ line_columns | join(', ') }} from line_rules
    {%- if is_incremental() %}
    union all
    select * from stored_lines
    {%- endif %}

),

rules as (

    -- Rules 8-9: depend on as_of_date and on the silver clients.
    select
        *,
        coalesce(parsed_purchase_date > {{ lakehouse.as_of_date() }}, false)
            as is_future_purchase_date,
        _malformed_error is null and client_id is not null
        and client_id not in (select clients.client_id from clients) as is_orphan_purchase
    from lines_to_evaluate

),

passing as (

    select
        *,
        -- sqlfluff's duckdb dialect parses a leading `not (` as a function call.
        not (  -- noqa: LT01, LT06
            is_malformed_line or is_invalid_purchase_id or is_invalid_client_id
            or is_unknown_product or is_invalid_price or is_invalid_quantity
            or is_invalid_purchase_date or is_future_purchase_date or is_orphan_purchase
        ) as passes_row_rules
    from rules

),

ranked as (

    -- Survivor per id: oldest batch, then first line in the file, among rows passing rules 1-9
    -- (they sort first in the id's window). Complete: every line of a ranked id is evaluated in
    -- the same run. One window pass: the rank and whether the id has a surviving copy.
    select
        *,
        case when passes_row_rules then row_number() over copies end as copy_rank,
        bool_or(passes_row_rules) over (
            copies rows between unbounded preceding and unbounded following
        ) as has_valid_copy
    from passing
    window copies as (
        partition by purchase_id
        order by passes_row_rules desc, _ingested_at asc, _source_file asc, _row_number asc
    )

),

final as (

    select
        * exclude (has_valid_copy),
        purchase_id is not null and has_valid_copy and coalesce(copy_rank, 0) != 1
            as has_survivor_copy,
        case
            when is_malformed_line then 'malformed_line'
            when is_invalid_purchase_id then 'invalid_purchase_id'
            when is_invalid_client_id then 'invalid_client_id'
            when is_unknown_product then 'unknown_product'
            when is_invalid_price then 'invalid_price'
            when is_invalid_quantity then 'invalid_quantity'
            when is_invalid_purchase_date then 'invalid_purchase_date'
            when is_future_purchase_date then 'future_purchase_date'
            when is_orphan_purchase then 'orphan_purchase'
            when copy_rank > 1 then 'duplicate_purchase'
        end as reject_reason
    from ranked

)

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
    {{ lakehouse.evaluated_at() }} as _evaluated_at
from final
