{#- Layer schemas are named exactly as configured (silver, gold, reference), not <target>_<name>. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}

{#- The materialization of an exported model that only filters and derives from one stored
    table (stg_retail__purchases): a view on DuckDB, where the export reads views like tables;
    a table on Spark, whose export reads each model's Parquet folder (a view has none). -#}
{% macro exported_view_materialization() -%}
    {{ return(adapter.dispatch('exported_view_materialization', 'lakehouse')()) }}
{%- endmacro %}

{% macro default__exported_view_materialization() -%}
    {{ return('view') }}
{%- endmacro %}

{% macro spark__exported_view_materialization() -%}
    {{ return('table') }}
{%- endmacro %}

{#- A table of the warehouse's own bookkeeping, in the target's schema and never exported:
    `build_check` (macros/test_scope.sql), `model_builds` (macros/model_builds.sql),
    `incremental_state` (macros/incremental.sql). -#}
{% macro bookkeeping_relation(identifier) -%}
    {{ return(api.Relation.create(
        database=target.database, schema=target.schema, identifier=identifier
    )) }}
{%- endmacro %}
