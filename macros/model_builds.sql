{#-
    Which dbt command last wrote each model: table `model_builds` (model name → invocation id),
    read by the export. A table's Parquet file of the previous published run is copied, not
    written again, when no command has written the table since that run was exported
    (orchestration/export.py, `export_source`): in an incremental run, the client models when
    only purchases arrived; the fact too when no file did.

    on-run-start records, before any node runs, every model the command selected, under the
    command's invocation id (unique to it): a command that fails or is killed half-way has still
    recorded every model it may have written. `dbt build` and `dbt run` write the models they
    select; `retry` and `clone` are recorded as writing every model (they are rare, and what
    they select is not the command line's selection). No other command writes a model (`seed`
    writes seeds, which are not exported; `test`, `compile`, `docs` write none). A model changed
    by hand outside dbt (SQL on the warehouse) is not seen: rebuild it with dbt, or delete the
    table `model_builds`, and the next export writes every file.
-#}
{% macro record_selected_models() -%}
    {{ return(adapter.dispatch('record_selected_models', 'lakehouse')()) }}
{%- endmacro %}

{% macro default__record_selected_models() -%}
    {%- if not execute or flags.WHICH not in ('build', 'run', 'retry', 'clone') -%}
        {{ return('') }}
    {%- endif -%}
    {%- set models = [] -%}
    {%- for node in graph.nodes.values() if node.resource_type == 'model' -%}
        {%- if flags.WHICH in ('retry', 'clone') or node.unique_id in selected_resources -%}
            {%- do models.append("('" ~ node.name ~ "')") -%}
        {%- endif -%}
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

{#- Spark: the export reads no build record there and writes every file. -#}
{% macro spark__record_selected_models() -%}
    {{ return('') }}
{%- endmacro %}

{% macro model_builds_relation() -%}
    {{ return(api.Relation.create(
        database=target.database, schema=target.schema, identifier='model_builds'
    )) }}
{%- endmacro %}
