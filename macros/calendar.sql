{#-
    One row per day from `first_date` to `last_date` inclusive, in a column named `name`: the two
    bounds are columns of `bounds`, a relation of one row (null bounds give no row).
-#}
{% macro date_spine(bounds, first_date, last_date, name) -%}
    {{ return(adapter.dispatch('date_spine', 'lakehouse')(bounds, first_date, last_date, name)) }}
{%- endmacro %}

{% macro default__date_spine(bounds, first_date, last_date, name) -%}
    select
        cast(unnest(generate_series(
            cast({{ first_date }} as timestamp),
            cast({{ last_date }} as timestamp),
            interval 1 day
        )) as date) as {{ name }}
    from {{ bounds }}
{%- endmacro %}

{#- Spark: sequence() of dates, exploded. -#}
{% macro spark__date_spine(bounds, first_date, last_date, name) -%}
    select
        explode(sequence(
            cast({{ first_date }} as date),
            cast({{ last_date }} as date),
            interval 1 day
        )) as {{ name }}
    from {{ bounds }}
{%- endmacro %}

{#- The calendar attributes of a date (ISO week and day of week, Monday = 1). -#}
{% macro calendar_columns(day) -%}
    {{ return(adapter.dispatch('calendar_columns', 'lakehouse')(day)) }}
{%- endmacro %}

{% macro default__calendar_columns(day) -%}
    cast(extract(year from {{ day }}) as integer) as year,
    cast(extract(quarter from {{ day }}) as integer) as quarter,
    cast(extract(month from {{ day }}) as integer) as month,
    strftime({{ day }}, '%B') as month_name,
    strftime({{ day }}, '%Y-%m') as year_month,
    cast(date_trunc('month', {{ day }}) as date) as month_start_date,
    cast(extract(isoyear from {{ day }}) as integer) as iso_year,
    cast(extract(week from {{ day }}) as integer) as iso_week,
    cast(extract(isoyear from {{ day }}) as varchar)
    || '-W' || lpad(cast(extract(week from {{ day }}) as varchar), 2, '0') as iso_year_week,
    cast(extract(isodow from {{ day }}) as integer) as iso_day_of_week,
    strftime({{ day }}, '%A') as day_name,
    cast(date_trunc('week', {{ day }}) as date) as week_start_date,
    extract(isodow from {{ day }}) in (6, 7) as is_weekend
{%- endmacro %}

{#-
    Spark: `week` and `yearofweek` are ISO 8601, `dayofweek_iso` is Monday = 1, date_trunc('week')
    is the Monday; date_format names are English (Locale.US) whatever the JVM locale.
-#}
{% macro spark__calendar_columns(day) -%}
    cast(extract(year from {{ day }}) as integer) as year,
    cast(extract(quarter from {{ day }}) as integer) as quarter,
    cast(extract(month from {{ day }}) as integer) as month,
    date_format({{ day }}, 'MMMM') as month_name,
    date_format({{ day }}, 'yyyy-MM') as year_month,
    cast(date_trunc('month', {{ day }}) as date) as month_start_date,
    cast(extract(yearofweek from {{ day }}) as integer) as iso_year,
    cast(extract(week from {{ day }}) as integer) as iso_week,
    concat(
        cast(extract(yearofweek from {{ day }}) as string),
        '-W',
        lpad(cast(extract(week from {{ day }}) as string), 2, '0')
    ) as iso_year_week,
    cast(extract(dayofweek_iso from {{ day }}) as integer) as iso_day_of_week,
    date_format({{ day }}, 'EEEE') as day_name,
    cast(date_trunc('week', {{ day }}) as date) as week_start_date,
    extract(dayofweek_iso from {{ day }}) in (6, 7) as is_weekend
{%- endmacro %}
