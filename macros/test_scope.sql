{#-
    Data tests of the rows a build wrote (doc block `incremental_processing`, "Tests of an
    incremental build").

    The incremental models stamp every row they write with `_build_id`, the dbt invocation that
    wrote it; the views over them pass it through. When the flow asks for it
    (LAKEHOUSE_TEST_SCOPE=built_rows, set by `lakehouse run` only when the previous build passed
    every test), a row-level test of such a model checks the rows this build wrote, not the whole
    history: an incremental run's tests then cost what its batch costs. Every other case tests
    every row: a plain `dbt build` or `dbt test`, a model this build did not select, a test that
    compares whole tables.
-#}

{#- The value of `_build_id` for the rows this invocation writes. -#}
{% macro build_id() -%}
    cast('{{ invocation_id }}' as {{ dbt.type_string() }})
{%- endmacro %}

{#- dbt wraps the model of every generic test in this macro (dbt's own also applies the `where`
    config, as this one does); a root project's macro of the same name replaces dbt's. -#}
{% macro get_where_subquery(relation) -%}
    {%- set conditions = [] -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
        {%- do conditions.append('(' ~ where ~ ')') -%}
    {%- endif -%}
    {%- set built_rows = lakehouse.built_rows_condition(relation) if execute else none -%}
    {%- if built_rows -%}
        {%- do conditions.append(built_rows) -%}
    {%- endif -%}
    {%- if conditions -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ conditions | join(' and ') ~ ') dbt_subquery') -%}
    {%- endif -%}
    {%- do return(relation) -%}
{%- endmacro %}

{#- The condition restricting the test being compiled to the rows this build wrote, or none. -#}
{% macro built_rows_condition(relation) -%}
    {%- if env_var('LAKEHOUSE_TEST_SCOPE', 'all_rows') != 'built_rows' or flags.WHICH != 'build' -%}
        {{ return(none) }}
    {%- endif -%}
    {#- Generic tests that look at each row alone (with its parents for `relationships`): the
        rows this build did not write passed them when they were written. -#}
    {%- set row_tests = [
        'not_null', 'accepted_values', 'relationships', 'accepted_range', 'expression_is_true',
        'matches_pattern',
    ] -%}
    {#- Tests of a key over the whole table: scoped to the keys of the rows this build wrote,
        with every stored row holding one of them (a new row repeating a stored key is caught). -#}
    {%- set key_tests = {
        'unique': 'column_name', 'unique_combination_of_columns': 'combination_of_columns',
    } -%}
    {%- set test = model.test_metadata or {} -%}
    {%- set tested = model.attached_node -%}
    {%- if not tested or not lakehouse.rows_written_by_this_build(tested) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set this_build = '_build_id = ' ~ lakehouse.build_id() -%}
    {%- if test.name in row_tests -%}
        {{ return(this_build) }}
    {%- elif test.name in key_tests -%}
        {%- set key = test.kwargs[key_tests[test.name]] -%}
        {%- set key = key | join(', ') if key is not string else key -%}
        {{ return('(' ~ key ~ ') in (select ' ~ key ~ ' from ' ~ relation ~ ' where ' ~ this_build ~ ')') }}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}

{#- Whether `_build_id` tells the rows of `unique_id` that this build wrote: the model has the
    column and this build selected it, and, for a view (which only passes the stamp through),
    every stamped model it reads too. -#}
{% macro rows_written_by_this_build(unique_id) -%}
    {%- set node = graph.nodes.get(unique_id) -%}
    {%- if node is none or '_build_id' not in node.columns or unique_id not in selected_resources -%}
        {{ return(false) }}
    {%- endif -%}
    {%- if node.config.materialized in ('incremental', 'table') -%}
        {{ return(true) }}
    {%- endif -%}
    {%- for parent in node.depends_on.nodes if parent in graph.nodes -%}
        {%- if '_build_id' in graph.nodes[parent].columns
            and not lakehouse.rows_written_by_this_build(parent) -%}
            {{ return(false) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(true) }}
{%- endmacro %}

{#- Whether every stored row has passed its tests: table `build_check`, one row, kept by the
    hooks of every `dbt build` and `dbt run`, whoever runs them (the flow, or dbt by hand).
    on-run-start marks the build as not passed yet (a build that crashes stays so); on-run-end
    marks it passed when nothing failed or was skipped, data tests were not left out, and the
    rows of earlier builds had passed too, or this build tested every row of every stamped model.
    `lakehouse run` lets the next build test its own rows only when the last one passed
    (orchestration/incremental.py, test_scope). -#}
{% macro start_build_check() -%}
    {{ return(adapter.dispatch('start_build_check', 'lakehouse')()) }}
{%- endmacro %}

{% macro default__start_build_check() -%}
    {%- if not execute or flags.WHICH not in ('build', 'run') -%}{{ return('') }}{%- endif -%}
    {%- set check = lakehouse.build_check_relation() -%}
    {%- do run_query(
        'create table if not exists ' ~ check ~ ' as select cast(null as varchar) as invocation_id, '
        ~ 'false as previous_passed, false as passed'
    ) -%}
    {%- do run_query(
        'update ' ~ check ~ " set invocation_id = '" ~ invocation_id ~ "', "
        ~ 'previous_passed = passed, passed = false'
    ) -%}
    {%- do adapter.commit() -%}
{%- endmacro %}

{% macro spark__start_build_check() -%}
    {{ return('') }}
{%- endmacro %}

{% macro finish_build_check(results) -%}
    {{ return(adapter.dispatch('finish_build_check', 'lakehouse')(results)) }}
{%- endmacro %}

{% macro default__finish_build_check(results) -%}
    {%- if not execute or flags.WHICH not in ('build', 'run') -%}{{ return('') }}{%- endif -%}
    {%- set failed = results | selectattr(
        'status', 'in', ['error', 'fail', 'runtime error', 'skipped']
    ) | list -%}
    {%- set types = flags.RESOURCE_TYPES or [] -%}
    {%- set tested = flags.WHICH == 'build' and 'test' not in (flags.EXCLUDE_RESOURCE_TYPES or [])
        and (not types or 'test' in types) -%}
    {%- set coverage = namespace(
        every_row=env_var('LAKEHOUSE_TEST_SCOPE', 'all_rows') != 'built_rows'
    ) -%}
    {%- for node in graph.nodes.values() if node.resource_type == 'model' -%}
        {%- if '_build_id' in node.columns and node.unique_id not in selected_resources -%}
            {%- set coverage.every_row = false -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set passed = tested and not failed -%}
    {%- do run_query(
        'update ' ~ lakehouse.build_check_relation() ~ ' set passed = '
        ~ (passed | string | lower) ~ ' and (previous_passed or ' ~ (coverage.every_row | string | lower)
        ~ ") where invocation_id = '" ~ invocation_id ~ "'"
    ) -%}
    {%- do adapter.commit() -%}
{%- endmacro %}

{% macro spark__finish_build_check(results) -%}
    {{ return('') }}
{%- endmacro %}

{% macro build_check_relation() -%}
    {{ return(api.Relation.create(
        database=target.database, schema=target.schema, identifier='build_check'
    )) }}
{%- endmacro %}
