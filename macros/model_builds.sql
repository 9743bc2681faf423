{#-
    Which dbt command last wrote each model: table `model_builds` (model name → invocation id),
    read by the export. A model's Parquet file of the previous published run is copied, not
    written again, when no command has written the model since that run was exported
    (orchestration/export.py, `export_source`): in an incremental run of purchases, the client
    models and the dimensions read from seeds; in a run that brought no file, every model but
    rpt_gold_summary (orchestration/incremental.py leaves them all out of the build).

    on-run-start records, before any node runs, every model the command selected, under the
    command's invocation id (unique to it): a command that fails or is killed half-way has still
    recorded every model it may have written. `dbt build` and `dbt run` write the models and
    seeds they select, `dbt seed` its seeds; a command whose selection dbt does not give
    (`dbt retry` runs under its first command's name with an empty `selected_resources`) and
    `dbt clone` are recorded as writing every model; `test`, `compile` and `docs` write none. A
    view (stg_retail__purchases) is recorded with every command that writes a model or seed it
    reads: its rows are theirs. A view that reads a source (bronze, which changes without any
    dbt command) is never recorded, so its file is always written. A model changed by hand
    outside dbt (SQL on the warehouse) is not seen: rebuild it with dbt, or delete the table
    `model_builds`, and the next export writes every file.
-#}
{% macro record_selected_models() -%}
    {{ return(adapter.dispatch('record_selected_models', 'lakehouse')()) }}
{%- endmacro %}

{% macro default__record_selected_models() -%}
    {%- if not execute or flags.WHICH not in ('build', 'run', 'seed', 'retry', 'clone') -%}
        {{ return('') }}
    {%- endif -%}
    {%- set every = flags.WHICH in ('retry', 'clone') or not selected_resources -%}
    {%- set written = [] -%}
    {%- for node in graph.nodes.values() if node.resource_type in ('model', 'seed') -%}
        {%- if every or node.unique_id in selected_resources -%}
            {%- do written.append(node.unique_id) -%}
        {%- endif -%}
    {%- endfor -%}
    {#- A view shows the rows of what it reads, so it changes with them, selected or not. -#}
    {%- set sources = graph.sources.keys() | list -%}
    {%- set models, never = [], [] -%}
    {%- for node in graph.nodes.values() if node.resource_type == 'model' -%}
        {%- if lakehouse.view_reads_any(node, sources) -%}
            {%- do never.append("'" ~ node.name ~ "'") -%}
        {%- elif node.unique_id in written or lakehouse.view_reads_any(node, written) -%}
            {%- do models.append("('" ~ node.name ~ "')") -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set relation = lakehouse.bookkeeping_relation('model_builds') -%}
    {%- do run_query(
        'create table if not exists ' ~ relation
        ~ ' (model varchar primary key, invocation_id varchar not null)'
    ) -%}
    {%- if models -%}
        {%- do run_query(
            'insert or replace into ' ~ relation ~ " select model, '" ~ invocation_id
            ~ "' from (values " ~ models | join(', ') ~ ') as selected (model)'
        ) -%}
    {%- endif -%}
    {%- if never -%}
        {%- do run_query(
            'delete from ' ~ relation ~ ' where model in (' ~ never | join(', ') ~ ')'
        ) -%}
    {%- endif -%}
    {%- do adapter.commit() -%}
{%- endmacro %}

{#- Whether `node` is a view that reads one of the nodes `written` (models, seeds or sources),
    directly or through other views or ephemeral models. -#}
{% macro view_reads_any(node, written) -%}
    {%- if node.config.materialized not in ('view', 'ephemeral') -%}{{ return(false) }}{%- endif -%}
    {%- for parent in node.depends_on.nodes -%}
        {%- if parent in written or (parent in graph.nodes
            and lakehouse.view_reads_any(graph.nodes[parent], written)) -%}
            {{ return(true) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(false) }}
{%- endmacro %}

{#- Spark: the export reads no build record there and writes every file. -#}
{% macro spark__record_selected_models() -%}
    {{ return('') }}
{%- endmacro %}
