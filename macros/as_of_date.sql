{#- The business "today" as a date literal: var('as_of_date'), else the run's UTC date. -#}
{% macro as_of_date() -%}
    {%- set value = var('as_of_date', none) or run_started_at.strftime('%Y-%m-%d') -%}
    {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', value | string) -%}
        {{ exceptions.raise_compiler_error("var as_of_date must be YYYY-MM-DD, got '" ~ value ~ "'") }}
    {%- endif -%}
    cast('{{ value }}' as date)
{%- endmacro %}
