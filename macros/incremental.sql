{#-
    Incremental processing of bronze (doc block `incremental_processing` in models/docs.md).

    The base_ models parse and check each bronze line once, when its file is new, and re-rank
    over the stored lines only the ids whose outcome can have changed. stg_ and quarantine
    models are recomputed from them; fct_sales is merged on purchase_id, rebuilding only the
    purchases whose inputs changed.
-#}

{#- The key of a bronze line as one integer: a 64-bit hash of the file's bronze key, shifted
    left by 40 bits (× 2^40 = 1099511627776), plus the line number, so line numbers up to 2^40
    never reach the next file's keys. The hash only has to tell apart the files of one warehouse. -#}
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

{#- dbt's own `should_full_refresh` (the model's `full_refresh` config, else `--full-refresh`),
    overridden here (a root project's macro wins over dbt's) to also rebuild in full the models
    named in LAKEHOUSE_FULL_REFRESH_MODELS (comma-separated). The flow names there the
    incremental models whose code, macros or seeds changed since their last build, and the
    incremental models downstream of them (orchestration/incremental.py: a change of logic is
    not new data). Read when the model runs, so it never enters the manifest. -#}
{% macro should_full_refresh() -%}
    {%- set configured = config.get('full_refresh') -%}
    {%- if configured is not none -%}
        {{ return(configured) }}
    {%- endif -%}
    {%- set named = env_var('LAKEHOUSE_FULL_REFRESH_MODELS', '').split(',') -%}
    {{ return(flags.FULL_REFRESH or model.name in named) }}
{%- endmacro %}

{#- Post-hook of an incremental model: delete the stored rows whose key (`keys`: a column or a
    list of columns) has no row in `source_relation`, or none meeting `condition` there.
    `source_keys` (default: `keys`) are the key's expressions in `source_relation`. fct_sales
    deletes the purchases that left silver; the purchases quarantine deletes the lines the base
    model no longer refuses (a late client rescued an orphan, another copy of a duplicate now
    wins). Only an incremental table keeps rows of earlier runs; on Spark the table is rebuilt in
    full (and has no DELETE), so the hook renders nothing and dbt skips it. -#}
{% macro prune_rows_not_in(relation, keys, source_relation, condition=none, source_keys=none) -%}
    {%- set keys = [keys] if keys is string else keys -%}
    {%- set source_keys = [source_keys] if source_keys is string else (source_keys or keys) -%}
    {{ return(adapter.dispatch('prune_rows_not_in', 'lakehouse')(
        relation, keys, source_relation, condition, source_keys
    )) }}
{%- endmacro %}

{#- `not in` on the key tuple, null keys left out of the list (a null in a `not in` list keeps
    every row): at ten million purchases this takes 0.6 s, `not exists` 2.1 s (DuckDB joins its
    correlated form back to the stored table). A stored row with a null key is never deleted:
    the keys of both callers are not null (tested). -#}
{% macro default__prune_rows_not_in(relation, keys, source_relation, condition, source_keys) -%}
    delete from {{ relation }}
    where ({{ keys | join(', ') }}) not in (
        select {{ source_keys | join(', ') }} from {{ source_relation }}
        where
            {% for key in source_keys -%}
                {{ key }} is not null{% if not loop.last %} and {% endif %}
            {%- endfor %}
            {%- if condition %} and ({{ condition }}){% endif %}
    )
{%- endmacro %}

{% macro spark__prune_rows_not_in(relation, keys, source_relation, condition, source_keys) -%}
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
            where _source_file not in (
                -- null left out: a null in a `not in` list would hide every new file
                select distinct stored._source_file from {{ this }} as stored
                where stored._source_file is not null
            )
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

{#- on-run-end: record, for each model tagged `bronze_driven` (every model but
    rpt_gold_summary) that this `dbt build`/`run` built, which bronze files and which as_of_date
    it now reflects, the bronze entities (sources) upstream of it, its bronze_driven parents and
    the code it was built with (table `incremental_state`, one row per model). The code is the
    fingerprint of the project that `lakehouse run` passes in LAKEHOUSE_CODE_FINGERPRINT; a
    build by hand records none, so the next run builds its models again (they may have been
    built from code since reverted, or with `--empty`). Nothing is recorded when a node failed
    or was skipped. orchestration/incremental.py reads it to leave out of the next build the
    models that no new file reaches. -#}
{% macro record_incremental_state(results) -%}
    {{ return(adapter.dispatch('record_incremental_state', 'lakehouse')(results)) }}
{%- endmacro %}

{#- Spark: no incremental runs (see incremental_materialization), so no state to record;
    orchestration/incremental.py always builds silver on Spark. -#}
{% macro spark__record_incremental_state(results) -%}
    {{ return('') }}
{%- endmacro %}

{#- The sources (`retail.clients`: bronze entities) a node reads, directly or through its
    parents. -#}
{% macro bronze_entities(unique_id) -%}
    {%- set entities = [] -%}
    {%- for parent in graph.nodes[unique_id].depends_on.nodes -%}
        {%- if parent in graph.sources -%}
            {%- do entities.append(
                graph.sources[parent].source_name ~ '.' ~ graph.sources[parent].name
            ) -%}
        {%- elif parent in graph.nodes -%}
            {%- do entities.extend(lakehouse.bronze_entities(parent)) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(entities | unique | sort | list) }}
{%- endmacro %}

{#- A list of text values as an SQL literal. -#}
{%- macro text_list_literal(values) -%}
    [{% for value in values %}'{{ dbt.escape_single_quotes(value) }}'{% if not loop.last %}, {% endif %}{% endfor %}]::varchar[]
{%- endmacro %}

{% macro default__record_incremental_state(results) -%}
    {%- if not execute or flags.WHICH not in ('build', 'run') -%}{{ return('') }}{%- endif -%}
    {%- set line_models = [] -%}
    {%- for node in graph.nodes.values() -%}
        {%- if node.resource_type == 'model' and node.name.startswith('base_')
            and 'bronze_driven' in node.tags -%}
            {%- do line_models.append(adapter.quote(node.schema) ~ '.' ~ adapter.quote(node.alias)) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set built = [] -%}
    {%- for result in results -%}
        {%- if result.status in ('error', 'fail', 'runtime error', 'skipped') -%}
            {{ return('') }}
        {%- endif -%}
        {%- if result.node.resource_type == 'model' and 'bronze_driven' in result.node.tags
            and result.status == 'success' -%}
            {%- do built.append(result.node) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if not built -%}{{ return('') }}{%- endif -%}
    {%- set state = lakehouse.bookkeeping_relation('incremental_state') -%}
    {%- set existing = adapter.get_relation(
        database=state.database, schema=state.schema, identifier=state.identifier
    ) -%}
    {%- if existing is not none and 'code' not in (
        adapter.get_columns_in_relation(existing) | map(attribute='name') | list
    ) -%}
        {%- do run_query('drop table ' ~ state) -%}  {#- an earlier layout -#}
    {%- endif -%}
    {%- set rows = [] -%}
    {%- for node in built -%}
        {%- set parents = [] -%}
        {%- for parent in node.depends_on.nodes if parent in graph.nodes -%}
            {%- if 'bronze_driven' in graph.nodes[parent].tags -%}
                {%- do parents.append(graph.nodes[parent].name) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- do rows.append(
            "('" ~ node.name ~ "', "
            ~ lakehouse.text_list_literal(lakehouse.bronze_entities(node.unique_id)) ~ ", "
            ~ lakehouse.text_list_literal(parents | sort) ~ ")"
        ) -%}
    {%- endfor -%}
    {%- do run_query(
        "create table if not exists " ~ state ~ " (model varchar, bronze_entities varchar[], "
        ~ "parents varchar[], source_files varchar[], as_of_date date, code varchar)"
    ) -%}
    {%- set statement -%}
        delete from {{ state }} where model in (
            {%- for node in built %}'{{ node.name }}'{% if not loop.last %}, {% endif %}{% endfor -%}
        )
    {%- endset -%}
    {%- do run_query(statement) -%}
    {%- set statement -%}
        insert into {{ state }}
        with processed as (
            select list(_source_file order by _source_file) as source_files
            from (
                {%- for relation in line_models %}
                select distinct _source_file from {{ relation }}
                {%- if not loop.last %} union {% endif %}
                {%- endfor %}
            )
        )
        select
            built.*,
            processed.source_files,
            {{ lakehouse.as_of_date() }},
            '{{ dbt.escape_single_quotes(env_var('LAKEHOUSE_CODE_FINGERPRINT', '')) }}'
        from (values {{ rows | join(', ') }}) as built (model, bronze_entities, parents)
        cross join processed
    {%- endset -%}
    {%- do run_query(statement) -%}
    {%- do adapter.commit() -%}
{%- endmacro %}

{#- fct_sales in an incremental build: the number of the last build whose silver and client
    lines the stored table reflects (the highest `_build_id` it holds: every line stamped up to
    that number was read by the build that wrote it), or none when every purchase must be
    compared again: the table is empty or unstamped, the last build did not pass (it may have
    stopped between silver and the fact), or the table reflects another as_of_date (table
    incremental_state, written after a complete build). Lines and client lines stamped after it
    are the only inputs of a stored row that can have changed since (the numbers only grow);
    as_of_date is the other (the capped subscription date). -#}
{% macro reflected_build(relation) -%}
    {%- if not execute -%}{{ return(none) }}{%- endif -%}
    {%- if not lakehouse.last_build_passed()
        or '_build_id' not in adapter.get_columns_in_relation(relation) | map(attribute='name') -%}
        {{ return(none) }}  {#- (a table of an earlier layout fails on_schema_change instead) -#}
    {%- endif -%}
    {%- set query -%}
        select
            (
                select count(*) from information_schema.columns
                where table_schema = 'main' and table_name = 'incremental_state'
                    and column_name = 'model'
            ) as has_state,
            (select max(_build_id) from {{ relation }}) as reflected
    {%- endset -%}
    {%- set row = run_query(query).rows[0] -%}
    {%- if row[0] == 0 or row[1] is none -%}{{ return(none) }}{%- endif -%}
    {%- set query -%}
        select count(*) from main.incremental_state
        where model = '{{ model.name }}' and as_of_date = {{ lakehouse.as_of_date() }}
    {%- endset -%}
    {%- if run_query(query).columns[0].values()[0] == 0 -%}{{ return(none) }}{%- endif -%}
    {{ return(row[1]) }}
{%- endmacro %}
