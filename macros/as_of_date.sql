{#-
    The business "today" (SPEC: every "today" is as_of_date), as a SQL date expression:
    1. var('as_of_date') when given (`dbt build --vars '{as_of_date: 2025-06-30}'`), as a literal;
    2. else the engine's run parameter when one is set: on DuckDB the variable
       `lakehouse_as_of_date`, which the profile's plugin sets from LAKEHOUSE_AS_OF_DATE (that is
       how `lakehouse run` passes it: a --vars value that changes every run would force dbt to
       re-parse the whole project every run);
    3. else the run's UTC date.
-#}
{% macro as_of_date() -%}
    {%- set value = var('as_of_date', none) -%}
    {%- if value -%}
        {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', value | string) -%}
            {{ exceptions.raise_compiler_error("var as_of_date must be YYYY-MM-DD, got '" ~ value ~ "'") }}
        {%- endif -%}
        cast('{{ value }}' as date)
    {%- else -%}
        {{ return(adapter.dispatch('run_as_of_date', 'lakehouse')()) }}
    {%- endif -%}
{%- endmacro %}

{% macro default__run_as_of_date() -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d") }}' as date)
{%- endmacro %}

{% macro duckdb__run_as_of_date() -%}
    coalesce(
        cast(getvariable('lakehouse_as_of_date') as date),
        cast('{{ run_started_at.strftime("%Y-%m-%d") }}' as date)
    )
{%- endmacro %}

{#- The export run this build feeds: var('run_id'), else the engine's run parameter (DuckDB
    variable `lakehouse_run_id`, set from LAKEHOUSE_RUN_ID), else dbt's invocation id. -#}
{% macro run_id() -%}
    {%- if var('run_id', none) -%}
        cast('{{ var("run_id") }}' as varchar)
    {%- else -%}
        {{ return(adapter.dispatch('run_id', 'lakehouse')()) }}
    {%- endif -%}
{%- endmacro %}

{% macro default__run_id() -%}
    cast('{{ invocation_id }}' as varchar)
{%- endmacro %}

{% macro duckdb__run_id() -%}
    coalesce(cast(getvariable('lakehouse_run_id') as varchar), '{{ invocation_id }}')
{%- endmacro %}
