{#-
    Incremental processing of bronze (see the "Incremental processing" doc block in models/docs.md).

    Every bronze line is validated once, when its file is new: the base_ models are incremental
    over the line-split twins they have not seen. Rules that depend on other rows (duplicates,
    orphans, shared e-mails, client versions) and on as_of_date are re-evaluated on every run for
    the ids they can have changed for, over all of bronze. Each (re)computed row carries
    `_evaluated_at`, the start of the dbt run that wrote it; a downstream incremental model takes
    the upstream rows written after its own newest row.
-#}

{#- A single-column key for a bronze line: the file (a 64-bit hash of its bronze key) and the line
    number, as one integer. Computed once per line, when its file is new, and stored: the hash only
    has to tell the files of one warehouse apart. -#}
{% macro line_id(source_file, row_number) -%}
    {{ return(adapter.dispatch('line_id', 'lakehouse')(source_file, row_number)) }}
{%- endmacro %}

{% macro default__line_id(source_file, row_number) -%}
    cast(hash({{ source_file }}) as hugeint) * 1099511627776 + {{ row_number }}
{%- endmacro %}

{#- The start of this dbt run, as a timestamp literal: `_evaluated_at` of every row it writes. -#}
{% macro evaluated_at() -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as timestamp)
{%- endmacro %}

{#- The newest `_evaluated_at` of the model being built: upstream rows written after it are the
    ones it has not taken yet. -#}
{% macro high_water_mark() -%}
    (select coalesce(max(_evaluated_at), cast('-infinity' as timestamp)) from {{ this }})
{%- endmacro %}

{#- Bronze twin files of an entity that the model being built has not read yet (`_source_file`
    keys it does not hold), as URIs, sorted. Only meaningful in an incremental run. -#}
{% macro unprocessed_bronze_files(entity) -%}
    {%- if not execute -%}{{ return([]) }}{%- endif -%}
    {%- set query -%}
        with

        twins as (

            select file
            from glob(getvariable('lakehouse_bronze_root') || '/_parsed/{{ entity }}/*/*.parquet')

        ),

        processed as (

            select distinct _source_file from {{ this }}

        )

        select twins.file
        from twins
        where
            regexp_extract(twins.file, '/_parsed/(.*)[.]parquet$', 1) || '.csv'
            not in (select processed._source_file from processed)
        order by twins.file
    {%- endset -%}
    {{ return(run_query(query).columns[0].values() | list) }}
{%- endmacro %}

{#- The twin lines of the given files (URIs), with the source's columns; no rows for no file.
    Reading the files by name lets DuckDB skip every other twin. -#}
{% macro bronze_twin_lines(entity, files) -%}
    {%- set columns = ['_source_file', '_ingested_at', '_row_number', '_malformed_error', '_raw_line']
        + (['id_client', 'name', 'email', 'subscription_date', 'country'] if entity == 'clients'
           else ['id_purchase', 'id_client', 'product', 'price', 'quantity', 'purchase_date', 'total']) -%}
    {%- if files | length > 0 %}
    (
        select {{ columns | join(', ') }}
        from read_parquet([
            {%- for file in files %}
            '{{ file }}'{% if not loop.last %},{% endif %}
            {%- endfor %}
        ], hive_partitioning = false)
    )
    {%- else %}
    (
        select
            {%- for column in columns %}
            cast(null as {{ 'timestamp' if column == '_ingested_at' else ('bigint' if column == '_row_number' else 'varchar') }}) as {{ column }}{% if not loop.last %},{% endif %}
            {%- endfor %}
        where false
    )
    {%- endif %}
{%- endmacro %}

{#- Merge clauses for an incremental model whose keys can disappear: the model emits every key
    it re-examined, a key that no longer has a row as a key-only row (`marker` null), and the
    merge deletes those, updates the others and inserts the new ones. -#}
{% macro merge_clauses_removing(marker) -%}
    {{ return({
        'when_matched': [
            {'action': 'delete', 'condition': 'DBT_INTERNAL_SOURCE.' ~ marker ~ ' is null'},
            {'action': 'update', 'mode': 'by_name'},
        ],
        'when_not_matched': [
            {'action': 'insert', 'mode': 'by_name', 'condition': 'DBT_INTERNAL_SOURCE.' ~ marker ~ ' is not null'},
        ],
    }) }}
{%- endmacro %}

{#- on-run-end: after a build in which every `bronze_driven` model (silver and the sales fact)
    was built and nothing failed, record which bronze files and which as_of_date silver now
    reflects (table `incremental_state`, one row per file). orchestration/incremental.py reads it
    to tell whether the next run has any silver work to do. -#}
{% macro record_incremental_state(results) -%}
    {%- if not execute or flags.WHICH not in ('build', 'run') -%}{{ return('') }}{%- endif -%}
    {%- set required = {} -%}
    {%- for node in graph.nodes.values() -%}
        {%- if node.resource_type == 'model' and 'bronze_driven' in node.tags -%}
            {%- do required.update({node.unique_id: node}) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set built = [] -%}
    {%- for result in results -%}
        {%- if result.status in ('error', 'fail', 'runtime error', 'skipped') -%}
            {{ return('') }}
        {%- endif -%}
        {%- if result.node.unique_id in required and result.status == 'success' -%}
            {%- do built.append(result.node.unique_id) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if built | length != required | length -%}{{ return('') }}{%- endif -%}
    {%- set lines = [] -%}
    {%- for node in required.values() if node.name.startswith('base_') -%}
        {%- do lines.append(
            'select distinct _source_file from ' ~ adapter.quote(node.schema) ~ '.' ~ adapter.quote(node.alias)
        ) -%}
    {%- endfor -%}
    {%- set statement -%}
        create or replace table {{ target.schema }}.incremental_state as
        with processed as (
            {{ lines | join('\n            union all\n            ') }}
        )
        select
            _source_file as source_file,
            {{ lakehouse.as_of_date() }} as as_of_date,
            {{ lakehouse.evaluated_at() }} as built_at
        from processed
    {%- endset -%}
    {%- do run_query(statement) -%}
    {%- do adapter.commit() -%}
{%- endmacro %}

{#- URIs of the bronze twins of the files (bronze keys) that have lines of `relation` evaluated
    after the model being built's newest row and matching `condition`. Only meaningful in an
    incremental run. -#}
{% macro twins_of_changed_lines(relation, condition='true') -%}
    {%- if not execute -%}{{ return([]) }}{%- endif -%}
    {%- set query -%}
        select distinct
            getvariable('lakehouse_bronze_root') || '/_parsed/'
            || regexp_replace(_source_file, '[.]csv$', '.parquet') as file
        from {{ relation }}
        where _evaluated_at > {{ lakehouse.high_water_mark() }} and ({{ condition }})
        order by file
    {%- endset -%}
    {{ return(run_query(query).columns[0].values() | list) }}
{%- endmacro %}
