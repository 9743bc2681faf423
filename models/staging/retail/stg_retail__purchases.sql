-- Silver purchases: one row per purchase_id, the oldest valid copy, total checked (SPEC §3).
--
-- A view on DuckDB (a table on Spark: macro exported_view_materialization). Every rule and the
-- checked total are decided in base_retail__purchases; this is its passing lines. Storing
-- ten million rows again cost 4-5 s of every build and every incremental run; each reader
-- (fct_sales, the tests, the export) filters the base table itself.

{{ config(materialized=lakehouse.exported_view_materialization()) }}

with

base as (

    select * from {{ ref('base_retail__purchases') }}

),

survivors as (

    select * from base
    where reject_reason is null

),

final as (

    select
        purchase_id,
        client_id,
        canonical_product as product,
        parsed_price as price,
        parsed_quantity as quantity,
        parsed_purchase_date as purchase_date,
        checked_total as total,
        is_total_recalculated,
        _source_file,
        _ingested_at,
        _row_number,
        _build_id
    from survivors

)

select * from final
