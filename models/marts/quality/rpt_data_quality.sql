-- The data-quality report (SPEC §3). Per entity: rows in bronze, silver and quarantine,
-- quarantine by reason, fixes by flag, nulls by column and the quality score; per bronze file:
-- the rows and the score; overall: the pooled rows and the score. One tidy row per measure; the
-- export turns it into quality_report.json.

with

clients as (

    select * from {{ ref('base_retail__clients') }}

),

purchases as (

    select * from {{ ref('base_retail__purchases') }}

),

silver_clients as (

    select * from {{ ref('stg_retail__clients') }}

),

silver_purchases as (

    select * from {{ ref('stg_retail__purchases') }}

),

line_counts as (

    -- One scan of each entity's lines, grouped as finely as any measure below needs.
    select
        'clients' as entity,
        _source_file,
        reject_reason,
        count(*) as line_count
    from clients
    group by _source_file, reject_reason
    union all
    select
        'purchases' as entity,
        _source_file,
        reject_reason,
        count(*) as line_count
    from purchases
    group by _source_file, reject_reason

),

reason_codes as (

    {{ lakehouse.values_table(['entity', 'metric', 'sort_order'], [
        ('clients', 'malformed_line', 1),
        ('clients', 'invalid_client_id', 2),
        ('clients', 'invalid_subscription_date', 3),
        ('clients', 'duplicate_client', 4),
        ('purchases', 'malformed_line', 1),
        ('purchases', 'invalid_purchase_id', 2),
        ('purchases', 'invalid_client_id', 3),
        ('purchases', 'unknown_product', 4),
        ('purchases', 'invalid_price', 5),
        ('purchases', 'invalid_quantity', 6),
        ('purchases', 'invalid_purchase_date', 7),
        ('purchases', 'future_purchase_date', 8),
        ('purchases', 'orphan_purchase', 9),
        ('purchases', 'duplicate_purchase', 10),
    ]) }}

),

file_row_counts as (

    select
        entity,
        _source_file as source_file,
        cast(sum(line_count) as bigint) as bronze_rows,
        cast(coalesce(sum(line_count) filter (where reject_reason is null), 0) as bigint)
            as silver_rows,
        cast(coalesce(sum(line_count) filter (where reject_reason is not null), 0) as bigint)
            as quarantined_rows
    from line_counts
    group by entity, _source_file

),

row_counts as (

    select
        entity,
        'all' as source_file,
        cast(sum(bronze_rows) as bigint) as bronze_rows,
        cast(sum(silver_rows) as bigint) as silver_rows,
        cast(sum(quarantined_rows) as bigint) as quarantined_rows
    from file_row_counts
    group by entity
    union all
    select * from file_row_counts

),

row_measures as (

    select
        entity,
        source_file,
        'rows' as measure,
        'bronze' as metric,
        0 as sort_order,
        bronze_rows as row_count
    from row_counts
    union all
    select
        entity,
        source_file,
        'rows' as measure,
        'silver' as metric,
        1 as sort_order,
        silver_rows as row_count
    from row_counts
    union all
    select
        entity,
        source_file,
        'rows' as measure,
        'quarantined' as metric,
        2 as sort_order,
        quarantined_rows as row_count
    from row_counts

),

quarantine_measures as (

    select
        reason_codes.entity,
        'all' as source_file,
        'quarantine' as measure,
        reason_codes.metric,
        reason_codes.sort_order,
        coalesce(sum(line_counts.line_count), 0) as row_count
    from reason_codes
    left join line_counts
        on
            reason_codes.entity = line_counts.entity
            and reason_codes.metric = line_counts.reject_reason
    group by reason_codes.entity, reason_codes.metric, reason_codes.sort_order

),

fix_measures as (

    {%- for entity, flags in [
        ('clients', ['is_subscription_date_capped', 'has_invalid_email', 'has_shared_email', 'has_unknown_country']),
        ('purchases', ['is_total_recalculated']),
    ] %}
        {%- for flag in flags %}
            select
                '{{ entity }}' as entity,
                'all' as source_file,
                'fix' as measure,
                '{{ flag }}' as metric,
                {{ loop.index }} as sort_order,
                count(*) filter (where {{ flag }}) as row_count
            from silver_{{ entity }}
            {%- if not loop.last %}
                union all
            {%- endif %}
        {%- endfor %}
    {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}

),

{%- set null_columns = [
    ('clients', ['id_client', 'name', 'email', 'subscription_date', 'country']),
    ('purchases', ['id_purchase', 'id_client', 'product', 'price', 'quantity', 'purchase_date', 'total']),
] %}
-- noqa: disable=LT02
{%- for entity, columns in null_columns %}

{{ entity }}_nulls as (

    -- Nulls per bronze column after null-token normalisation, over well-formed lines: one pass
    -- over the entity's lines for every column, reading the flags the base model stored with
    -- each line (bit i: the i-th column, in this order).
    select
        {%- for column in columns %}
        count(*) filter (where {{ lakehouse.is_flagged_null('null_flags', loop.index0) }})
            as {{ column }}
        {%- if not loop.last %},{% endif %}
        {%- endfor %}
    from {{ entity }}
    where not is_malformed_line

),
{%- endfor %}
-- noqa: enable=LT02

null_measures as (

    {%- for entity, columns in null_columns %}
        {%- for column in columns %}
            select
                '{{ entity }}' as entity,
                'all' as source_file,
                'nulls' as measure,
                '{{ column }}' as metric,
                {{ loop.index }} as sort_order,
                {{ column }} as row_count
            from {{ entity }}_nulls
            {%- if not loop.last %}
                union all
            {%- endif %}
        {%- endfor %}
    {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}

),

entity_scores as (

    select
        entity,
        source_file,
        'score' as measure,
        'quality_score' as metric,
        0 as sort_order,
        cast(null as bigint) as row_count,
        {{ lakehouse.exact_ratio('silver_rows', 'bronze_rows', multiplier=100) }} as score
    from row_counts
    union all
    select
        'overall' as entity,
        'all' as source_file,
        'score' as measure,
        'quality_score' as metric,
        0 as sort_order,
        cast(null as bigint) as row_count,
        {{ lakehouse.exact_ratio('sum(silver_rows)', 'sum(bronze_rows)', multiplier=100) }}
            as score
    from row_counts
    where source_file = 'all'

),

overall_rows as (

    select
        'overall' as entity,
        'all' as source_file,
        measure,
        metric,
        sort_order,
        sum(row_count) as row_count
    from row_measures
    where source_file = 'all'
    group by measure, metric, sort_order

),

counted as (

    select * from row_measures
    union all
    select * from overall_rows
    union all
    select * from quarantine_measures
    union all
    select * from fix_measures
    union all
    select * from null_measures

),

final as (

    select
        entity,
        source_file,
        measure,
        metric,
        sort_order,
        cast(row_count as bigint) as row_count,
        cast(null as decimal(18, 2)) as score
    from counted
    union all
    select
        entity,
        source_file,
        measure,
        metric,
        sort_order,
        row_count,
        score
    from entity_scores

)

select * from final
