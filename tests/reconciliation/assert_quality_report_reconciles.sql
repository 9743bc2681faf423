-- The quality report adds up: bronze = silver + quarantined for every entity and file, and the
-- quarantine by reason sums to the quarantined rows.

with

report as (

    select * from {{ ref('rpt_data_quality') }}

),

rows_by_scope as (

    select
        entity,
        source_file,
        sum(case when metric = 'bronze' then row_count end) as bronze_rows,
        sum(case when metric = 'silver' then row_count end) as silver_rows,
        sum(case when metric = 'quarantined' then row_count end) as quarantined_rows
    from report
    where measure = 'rows'
    group by entity, source_file

),

reasons as (

    select
        entity,
        sum(row_count) as quarantined_by_reason
    from report
    where measure = 'quarantine'
    group by entity

),

unbalanced_rows as (

    select
        entity,
        source_file,
        'bronze != silver + quarantined' as problem
    from rows_by_scope
    where bronze_rows != silver_rows + quarantined_rows

),

unbalanced_reasons as (

    select
        rows_by_scope.entity,
        rows_by_scope.source_file,
        'reasons do not sum to quarantined rows' as problem
    from rows_by_scope
    inner join reasons
        on rows_by_scope.entity = reasons.entity
    where
        rows_by_scope.source_file = 'all'
        and rows_by_scope.quarantined_rows != reasons.quarantined_by_reason

)

select * from unbalanced_rows
union all
select * from unbalanced_reasons
