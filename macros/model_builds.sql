{#-
    Which dbt command last wrote each model: table `model_builds` (model name → invocation id),
    read by the export. A table's Parquet file of the previous published run is copied, not
    written again, when no command has written the table since that run was exported
    (orchestration/export.py, `export_source`): in an incremental run, the client models when
    only purchases arrived; the fact too when no file did.

    on-run-start records, before any node runs, every model the command selected, under the
    command's invocation id (unique to it): a command that fails or is killed half-way has still
    recorded every model it may have written. `dbt build` and `dbt run` write the models and
    seeds they select, `dbt seed` its seeds; `retry` and `clone` are recorded as writing every
    model (they are rare, and what they select is not the command line's selection); `test`,
    `compile` and `docs` write none. A view (stg_retail__purchases) is recorded with every
    command that writes a model or seed it reads: its rows are theirs. A model changed by hand
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
    {%- set written = [] -%}
    {%- for node in graph.nodes.values() if node.resource_type in ('model', 'seed') -%}
        {%- if flags.WHICH in ('retry', 'clone') or node.unique_id in selected_resources -%}
            {%- do written.append(node.unique_id) -%}
        {%- endif -%}
    {%- endfor -%}
    {#- A view shows the rows of what it reads, so it changes with them, selected or not. -#}
    {%- for node in graph.nodes.values() if node.resource_type == 'model'
        and node.unique_id not in written and lakehouse.view_reads_any(node, written) -%}
        {%- do written.append(node.unique_id) -%}
    {%- endfor -%}
    {%- set models = [] -%}
    {%- for unique_id in written if graph.nodes[unique_id].resource_type == 'model' -%}
        {%- do models.append("('" ~ graph.nodes[unique_id].name ~ "')") -%}
    {%- endfor -%}
    {%- set relation = lakehouse.model_builds_relation() -%}
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
    {%- do adapter.commit() -%}
{%- endmacro %}

{#- Whether `node` is a view that reads one of the nodes `written`, directly or through other
    views. -#}
{% macro view_reads_any(node, written) -%}
    {%- if node.config.materialized != 'view' -%}{{ return(false) }}{%- endif -%}
    {%- for parent in node.depends_on.nodes if parent in graph.nodes -%}
        {%- if parent in written or lakehouse.view_reads_any(graph.nodes[parent], written) -%}
            {{ return(true) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(false) }}
{%- endmacro %}

{#- Spark: the export reads no build record there and writes every file. -#}
{% macro spark__record_selected_models() -%}
    {{ return('') }}
{%- endmacro %}

{% macro model_builds_relation() -%}
    {{ return(api.Relation.create(
        database=target.database, schema=target.schema, identifier='model_builds'
    )) }}
{%- endmacro %}
