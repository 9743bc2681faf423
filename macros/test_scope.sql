{#-
    The builds of a warehouse, numbered, and what they tested (doc block
    `incremental_processing`).

    Every `dbt build` and `dbt run` on DuckDB takes the next number in table `build_check`
    (on-run-start) and records there, when it ends, whether every stored row has passed its
    tests. The incremental models stamp each row they write with that number, `_build_id`; the
    views over them pass it through. Two readers:
    - the data tests: when the flow asks for it (LAKEHOUSE_TEST_SCOPE=built_rows, set by
      `lakehouse run` only after a build that passed every test, the code and as_of_date
      unchanged), a row-level
      test of a stamped model checks the rows this build wrote, not the whole history: an
      incremental run's tests cost what its batch costs. Every other case tests every row: a
      plain `dbt build` or `dbt test`, a model this build did not select, a test that compares
      whole tables;
    - fct_sales: an incremental build compares again only the purchases whose silver line or
      client lines were written after its own last rows (numbers only grow).
-#}

{#- The number of this build: the value of `_build_id` for the rows it writes. 0 outside a
    `dbt build` or `dbt run` on a warehouse that has no build yet (a compile, a unit test alone),
    and on Spark, whose models are rebuilt in full (no table is kept). -#}
{% macro build_id() -%}
    {{ return(adapter.dispatch('build_id', 'lakehouse')()) }}
{%- endmacro %}

{% macro default__build_id() -%}
    {%- set number = 0 -%}
    {%- if execute and 'build_id' in lakehouse.build_check_columns() -%}
        {%- set number = run_query(
            'select build_id from ' ~ lakehouse.build_check_relation()
        ).columns[0].values()[0] -%}
    {%- endif -%}
    cast({{ number }} as bigint)
{%- endmacro %}

{% macro spark__build_id() -%}
    cast(0 as bigint)
{%- endmacro %}

{#- The columns of table `build_check` (none before a first build). Read from the catalog, not
    dbt's relation cache, which does not know of tables the hooks create. -#}
{% macro build_check_columns() -%}
    {%- set check = lakehouse.build_check_relation() -%}
    {%- set query -%}
        select column_name from information_schema.columns
        where table_schema = '{{ check.schema }}' and table_name = '{{ check.identifier }}'
    {%- endset -%}
    {{ return(run_query(query).columns[0].values() | list) }}
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

{#- The condition restricting the test being compiled to the rows this build wrote, or none.
    Only in a `dbt build` the flow scoped (LAKEHOUSE_TEST_SCOPE=built_rows) after a build that
    passed every test (`build_check`: a scope left in a shell after a failure tests every row),
    for a test of one stamped model whose other inputs (a `relationships` parent, a seed) this
    build did not rebuild: a row it did not write then meets the test as it did when written. -#}
{% macro built_rows_condition(relation) -%}
    {%- if env_var('LAKEHOUSE_TEST_SCOPE', 'all_rows') != 'built_rows' or flags.WHICH != 'build' -%}
        {{ return(none) }}
    {%- endif -%}
    {#- Generic tests that look at each row alone (with its parent for `relationships`). -#}
    {%- set row_tests = [
        'not_null', 'accepted_values', 'relationships', 'accepted_range', 'expression_is_true',
        'matches_pattern',
    ] -%}
    {%- set test = model.test_metadata or {} -%}
    {%- set tested = model.attached_node -%}
    {%- if test.name not in row_tests + ['unique'] or not tested
        or not lakehouse.rows_written_by_this_build(tested) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- for other in model.depends_on.nodes if other != tested and other in selected_resources -%}
        {{ return(none) }}
    {%- endfor -%}
    {#- One query per test (on-run-start has made the table): this build's number, and whether
        the build before it passed every test. -#}
    {%- set record = run_query(
        'select build_id, previous_passed from ' ~ lakehouse.build_check_relation()
    ).rows[0] -%}
    {%- if not record[1] -%}{{ return(none) }}{%- endif -%}
    {#- A row without a stamp counts as this build's: a write path that forgot it is tested. -#}
    {%- set this_build = '(_build_id = ' ~ record[0] ~ ' or _build_id is null)' -%}
    {%- if test.name == 'unique' -%}
        {#- The keys of this build's rows, with every stored row holding one of them: a new row
            repeating a stored key is caught. -#}
        {%- set key = test.kwargs.column_name -%}
        {{ return(key ~ ' in (select ' ~ key ~ ' from ' ~ relation ~ ' where ' ~ this_build ~ ')') }}
    {%- endif -%}
    {{ return(this_build) }}
{%- endmacro %}

{#- Whether the build before this one passed every test (this build's row of `build_check`). -#}
{% macro last_build_passed() -%}
    {%- if 'previous_passed' not in lakehouse.build_check_columns() -%}{{ return(false) }}{%- endif -%}
    {%- set passed = run_query(
        'select bool_and(previous_passed) from ' ~ lakehouse.build_check_relation()
    ).columns[0].values()[0] -%}
    {{ return(passed is true) }}
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

{#- Table `build_check`, one row: the number of the last build, its invocation, and whether
    every stored row has passed its tests. on-run-start numbers the build and marks it as not
    passed yet (a build that crashes stays so); on-run-end marks it passed when nothing failed
    or was skipped, no data test of a model it wrote was left out, and the rows of earlier
    builds had passed too, or this build tested every row of every stamped model. A `dbt test`
    that finds a failing data test marks it not passed. `lakehouse run` lets the next build
    test its own rows only when the last one passed (orchestration/incremental.py). -#}
{% macro start_build_check() -%}
    {{ return(adapter.dispatch('start_build_check', 'lakehouse')()) }}
{%- endmacro %}

{% macro default__start_build_check() -%}
    {%- if not execute or flags.WHICH not in ('build', 'run') -%}{{ return('') }}{%- endif -%}
    {%- set check = lakehouse.build_check_relation() -%}
    {%- set columns = lakehouse.build_check_columns() -%}
    {%- if columns and 'build_id' not in columns -%}
        {%- do run_query('drop table ' ~ check) -%}  {#- unnumbered: an earlier layout -#}
    {%- endif -%}
    {%- do run_query(
        'create table if not exists ' ~ check ~ ' as select cast(0 as bigint) as build_id, '
        ~ 'cast(null as varchar) as invocation_id, false as previous_passed, false as passed'
    ) -%}
    {%- do run_query(
        'update ' ~ check ~ " set build_id = build_id + 1, invocation_id = '" ~ invocation_id
        ~ "', previous_passed = passed, passed = false"
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
    {%- if not execute or flags.WHICH not in ('build', 'run', 'test') -%}
        {{ return('') }}
    {%- endif -%}
    {%- set failed = results | selectattr(
        'status', 'in', ['error', 'fail', 'runtime error', 'skipped']
    ) | list -%}
    {%- if flags.WHICH == 'test' -%}
        {#- A `dbt test` builds nothing, but a data test it finds failing means a stored row
            did not pass: the next build tests every row again. -#}
        {%- if failed | selectattr('node.resource_type', 'equalto', 'test') | list
            and lakehouse.build_check_columns() -%}
            {%- do run_query(
                'update ' ~ lakehouse.build_check_relation() ~ ' set passed = false'
            ) -%}
            {%- do adapter.commit() -%}
        {%- endif -%}
        {{ return('') }}
    {%- endif -%}
    {#- Every data test of a stamped model this build wrote ran (and passed: nothing failed),
        however the selection was made (`--exclude-resource-type test`, `--indirect-selection
        empty`, a test left out by name or tag; `dbt run` tests nothing). A stamped view
        shows the rows of the models it reads: it counts as written when one of them was,
        selected or not. -#}
    {%- set ran = results | map(attribute='node') | map(attribute='unique_id') | list -%}
    {%- set written = [] -%}
    {%- for result in results if result.node.resource_type == 'model'
        and result.status == 'success' and '_build_id' in result.node.columns -%}
        {%- do written.append(result.node.unique_id) -%}
    {%- endfor -%}
    {%- for node in graph.nodes.values() if node.resource_type == 'model'
        and '_build_id' in node.columns and node.unique_id not in written
        and lakehouse.shows_rows_of(node, written) -%}
        {%- do written.append(node.unique_id) -%}
    {%- endfor -%}
    {%- set check = namespace(tested=flags.WHICH == 'build', every_model=true) -%}
    {%- for node in graph.nodes.values() if node.resource_type == 'test'
        and node.attached_node in written and node.unique_id not in ran -%}
        {%- set check.tested = false -%}
    {%- endfor -%}
    {#- After a build that did not pass, no test was scoped (built_rows_condition): this one
        vouches for every stored row if it built and tested every stamped model. -#}
    {%- for node in graph.nodes.values() if node.resource_type == 'model' -%}
        {%- if '_build_id' in node.columns and node.unique_id not in selected_resources -%}
            {%- set check.every_model = false -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set passed = check.tested and not failed -%}
    {%- do run_query(
        'update ' ~ lakehouse.build_check_relation() ~ ' set passed = '
        ~ (passed | string | lower) ~ ' and (previous_passed or '
        ~ (check.every_model | string | lower) ~ ") where invocation_id = '" ~ invocation_id ~ "'"
    ) -%}
    {%- do adapter.commit() -%}
{%- endmacro %}

{#- Whether a stamped view shows rows of one of the models `written`, directly or through
    other stamped views. -#}
{% macro shows_rows_of(node, written) -%}
    {%- if node.config.materialized in ('incremental', 'table') -%}{{ return(false) }}{%- endif -%}
    {%- for parent in node.depends_on.nodes if parent in graph.nodes
        and '_build_id' in graph.nodes[parent].columns -%}
        {%- if parent in written or lakehouse.shows_rows_of(graph.nodes[parent], written) -%}
            {{ return(true) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(false) }}
{%- endmacro %}

{% macro spark__finish_build_check(results) -%}
    {{ return('') }}
{%- endmacro %}

{% macro build_check_relation() -%}
    {{ return(lakehouse.bookkeeping_relation('build_check')) }}
{%- endmacro %}
