{#-
    Register the bronze sources with the engine before a run (on-run-start).

    DuckDB reads the line-split Parquet twins directly (the sources' `external_location`), so
    there is nothing to do. Spark has no such external read: each source becomes an unmanaged
    Parquet table `bronze.<entity>` over `<bronze root>/_parsed/<entity>/` (every ingest_date
    folder, recursively), refreshed so that files landed since the last run are listed. The bronze
    root is SPARK_BRONZE_ROOT (a cluster's s3a://… or abfss://… URI), else <LAKE_DIR>/bronze.
-#}
{% macro register_bronze_sources() -%}
    {{ return(adapter.dispatch('register_bronze_sources', 'lakehouse')()) }}
{%- endmacro %}

{% macro default__register_bronze_sources() -%}
    select 1 as bronze_sources_registered
{%- endmacro %}

{% macro spark__register_bronze_sources() -%}
    {%- if execute -%}
        {%- set root = env_var('SPARK_BRONZE_ROOT', '') -%}
        {%- if not root -%}
            {%- set lake_dir = env_var('LAKE_DIR', '') -%}
            {%- if not lake_dir -%}
                {{ exceptions.raise_compiler_error(
                    "The spark target reads bronze from SPARK_BRONZE_ROOT or <LAKE_DIR>/bronze: set one of them"
                ) }}
            {%- endif -%}
            {%- set root = lake_dir.rstrip('/') ~ '/bronze' -%}
        {%- endif -%}
        {%- for source_node in graph.sources.values()
            if source_node.package_name == 'lakehouse' and source_node.source_name == 'retail' -%}
            {%- set relation = source(source_node.source_name, source_node.name) -%}
            {% do run_query('create schema if not exists ' ~ relation.schema) %}
            {#- An EXTERNAL table (LOCATION): dropping it forgets the metadata, never the files.
                Re-created at every run so that its inferred schema follows the twins. -#}
            {% do run_query('drop table if exists ' ~ relation) %}
            {% do run_query(
                'create table ' ~ relation
                ~ " using parquet options (recursiveFileLookup 'true', pathGlobFilter '*.parquet')"
                ~ " location '" ~ root.rstrip('/') ~ '/_parsed/' ~ source_node.name ~ "'"
            ) %}
        {%- endfor -%}
    {%- endif -%}
    select 1 as bronze_sources_registered
{%- endmacro %}
