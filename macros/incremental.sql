{#-
    Incremental processing of bronze (doc block `incremental_processing` in models/docs.md).

    The base_ models parse and check each bronze line once, when its file is new, and re-rank
    over the stored lines only the ids whose outcome can have changed. stg_ and quarantine
    models are recomputed from them; fct_sales is merged on purchase_id, rebuilding only the
    purchases whose inputs changed.
-#}

{#- The key of a bronze line as one integer: a 64-bit hash of the file's bronze key, and the line
    number. The hash only has to tell apart the files of one warehouse. -#}
{% macro line_id(source_file, row_number) -%}
    {{ return(adapter.dispatch('line_id', 'lakehouse')(source_file, row_number)) }}
{%- endmacro %}

{% macro default__line_id(source_file, row_number) -%}
    cast(hash({{ source_file }}) as hugeint) * 1099511627776 + {{ row_number }}
{%- endmacro %}

{#- Spark: xxhash64 (signed BIGINT) in the wide exact integer. Values differ from DuckDB's; the
    key is internal to base_ models and never exported. -#}
{% macro spark__line_id(source_file, row_number) -%}
    cast(xxhash64({{ source_file }}) as {{ lakehouse.type_wide_integer() }}) * 1099511627776
    + {{ row_number }}
{%- endmacro %}

{#- A 64-bit fingerprint of several values (change detection in fct_sales). -#}
{% macro fingerprint(columns) -%}
    {{ return(adapter.dispatch('fingerprint', 'lakehouse')(columns)) }}
{%- endmacro %}

{% macro default__fingerprint(columns) -%}
    hash({{ columns | join(', ') }})
{%- endmacro %}

{#- Spark: xxhash64 (BIGINT; Spark has no unsigned type). `_row_state` is never exported. -#}
{% macro spark__fingerprint(columns) -%}
    xxhash64({{ columns | join(', ') }})
{%- endmacro %}

{#- The same fingerprint over a group's rows, whatever their order (an XOR of row hashes). -#}
{% macro fingerprint_agg(columns) -%}
    {{ return(adapter.dispatch('fingerprint_agg', 'lakehouse')(columns)) }}
{%- endmacro %}

{% macro default__fingerprint_agg(columns) -%}
    bit_xor(hash({{ columns | join(', ') }}))
{%- endmacro %}

{% macro spark__fingerprint_agg(columns) -%}
    bit_xor(xxhash64({{ columns | join(', ') }}))
{%- endmacro %}

{#- The materialization of the incremental models (base_ models and fct_sales). Spark without
    Delta has no DELETE and no MERGE, so `delete+insert` cannot run there: on Spark those models
    are plain tables rebuilt in full each run (is_incremental() is then false, and the models
    take their full-build branch, which is the reference a full refresh on DuckDB gives). -#}
{% macro incremental_materialization() -%}
    {{ return(adapter.dispatch('incremental_materialization', 'lakehouse')()) }}
{%- endmacro %}

{% macro default__incremental_materialization() -%}
    {{ return('incremental') }}
{%- endmacro %}

{% macro spark__incremental_materialization() -%}
    {{ return('table') }}
{%- endmacro %}

{#- fct_sales post-hook: delete the stored purchases that left silver. Only an incremental table
    keeps rows of earlier runs; on Spark the table is rebuilt in full (and has no DELETE), so the
    hook renders nothing and dbt skips it. -#}
{% macro prune_rows_not_in(relation, key, source_relation) -%}
    {{ return(adapter.dispatch('prune_rows_not_in', 'lakehouse')(relation, key, source_relation)) }}
{%- endmacro %}

{% macro default__prune_rows_not_in(relation, key, source_relation) -%}
    delete from {{ relation }} where {{ key }} not in (select {{ key }} from {{ source_relation }})
{%- endmacro %}

{% macro spark__prune_rows_not_in(relation, key, source_relation) -%}
{%- endmacro %}

{#- The bronze lines of `source_relation` whose file the model being built does not hold yet.
    The new files are listed first (a query at compile time), so that the scan filters on
    literal file names and DuckDB skips the row groups of every other file. Only called in an
    incremental run. -#}
{% macro new_bronze_lines(source_relation) -%}
    {%- set files = [] -%}
    {%- if execute -%}
        {%- set query -%}
            select distinct _source_file from {{ source_relation }}
            where _source_file not in (select distinct stored._source_file from {{ this }} as stored)
            order by _source_file
        {%- endset -%}
        {%- set files = run_query(query).columns[0].values() | list -%}
    {%- endif -%}
    select * from {{ source_relation }}
    where
    {%- if files | length > 0 %}
        _source_file in (
        {%- for file in files %}
            '{{ dbt.escape_single_quotes(file) }}'{% if not loop.last %},{% endif %}
        {%- endfor %}
        )
    {%- else %}
        false
    {%- endif %}
{%- endmacro %}

{#- on-run-end: after a `dbt build`/`run` in which every model tagged `bronze_driven` (silver,
    the client history and fct_sales) was built and nothing failed, record which bronze files
    and which as_of_date they reflect (table `incremental_state`, one row per file).
    orchestration/incremental.py reads it to tell whether the next run has silver work to do. -#}
{% macro record_incremental_state(results) -%}
    {{ return(adapter.dispatch('record_incremental_state', 'lakehouse')(results)) }}
{%- endmacro %}

{#- Spark: no incremental runs (see incremental_materialization), so no state to record;
    orchestration/incremental.py always builds silver on Spark. -#}
{% macro spark__record_incremental_state(results) -%}
    {{ return('') }}
{%- endmacro %}

{% macro default__record_incremental_state(results) -%}
    {%- if not execute or flags.WHICH not in ('build', 'run') -%}{{ return('') }}{%- endif -%}
    {%- set required = [] -%}
    {%- set line_models = [] -%}
    {%- for node in graph.nodes.values() -%}
        {%- if node.resource_type == 'model' and 'bronze_driven' in node.tags -%}
            {%- do required.append(node.unique_id) -%}
            {%- if node.name.startswith('base_') -%}
                {%- do line_models.append(adapter.quote(node.schema) ~ '.' ~ adapter.quote(node.alias)) -%}
            {%- endif -%}
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
    {%- if built | unique | list | length != required | length -%}{{ return('') }}{%- endif -%}
    {%- set statement -%}
        create or replace table {{ target.schema }}.incremental_state as
        with processed as (
            {%- for relation in line_models %}
            select distinct _source_file from {{ relation }}
            {%- if not loop.last %} union {% endif %}
            {%- endfor %}
        )
        select
            _source_file as source_file,
            {{ lakehouse.as_of_date() }} as as_of_date
        from processed
    {%- endset -%}
    {%- do run_query(statement) -%}
    {%- do adapter.commit() -%}
{%- endmacro %}
