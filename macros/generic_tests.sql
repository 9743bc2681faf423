{#- Generic tests written here because the dbt package hub is unreachable (no packages.yml). -#}

{% test expression_is_true(model, expression, where=none) %}
    select *
    from {{ model }}
    where not ({{ expression }})
    {%- if where %} and ({{ where }}){% endif %}
{% endtest %}

{% test accepted_range(model, column_name, min_value=none, max_value=none) %}
    select *
    from {{ model }}
    where
        1 = 0
        {%- if min_value is not none %} or {{ column_name }} < {{ min_value }}{% endif %}
        {%- if max_value is not none %} or {{ column_name }} > {{ max_value }}{% endif %}
{% endtest %}

{% test unique_combination_of_columns(model, combination_of_columns) %}
    select {{ combination_of_columns | join(', ') }}, count(*) as copies
    from {{ model }}
    group by {{ combination_of_columns | join(', ') }}
    having count(*) > 1
{% endtest %}

{% test equal_rowcount(model, compare_model) %}
    with a as (select count(*) as n from {{ model }}),
    b as (select count(*) as n from {{ compare_model }})
    select a.n as model_rows, b.n as compare_rows
    from a cross join b
    where a.n != b.n
{% endtest %}

{#- Sums of a column in two models are equal (to the cent for money). -#}
{% test equal_sum(model, column_name, compare_model, compare_column) %}
    with a as (select coalesce(sum({{ column_name }}), 0) as total from {{ model }}),
    b as (select coalesce(sum({{ compare_column }}), 0) as total from {{ compare_model }})
    select a.total as model_total, b.total as compare_total
    from a cross join b
    where a.total != b.total
{% endtest %}

{#- No value of any text column looks like a raw e-mail address (gold must mask them). -#}
{% test no_raw_email(model) %}
    {%- set columns = adapter.get_columns_in_relation(model) -%}
    {%- set text_columns = [] -%}
    {%- for column in columns if column.is_string() -%}
        {%- do text_columns.append(column.name) -%}
    {%- endfor -%}
    {%- if text_columns | length == 0 %}
    select 1 where 1 = 0
    {%- else %}
    select *
    from {{ model }}
    where
        {%- for name in text_columns %}
        {{ lakehouse.matches(adapter.quote(name), '[^@ ]*[^*@ ]@[^@ ]+[.][a-z]{2,}') }}
        {%- if not loop.last %} or{% endif %}
        {%- endfor %}
    {%- endif %}
{% endtest %}

{#- Every non-null value matches a regular expression as a whole (lakehouse.matches). -#}
{% test matches_pattern(model, column_name, pattern) %}
    select *
    from {{ model }}
    where {{ column_name }} is not null
        and not {{ lakehouse.matches(column_name, pattern) }}
{% endtest %}

{#- The sum of a column equals the number of rows of another model (orders = fact lines). -#}
{% test sum_equals_rowcount(model, column_name, compare_model) %}
    with a as (select coalesce(sum({{ column_name }}), 0) as total from {{ model }}),
    b as (select count(*) as n from {{ compare_model }})
    select a.total as model_total, b.n as compare_rows
    from a cross join b
    where a.total != b.n
{% endtest %}

{#-
    Percentages (rounded to 2 decimals, one per row) add up to 100. Each row carries at most
    0.005 of rounding error, so the sum may honestly miss 100 by up to 0.005 × rows: the
    tolerance is that bound, never less than 0.01. Skipped when every share is null (no base).
-#}
{% test percentages_sum_to_100(model, column_name) %}
    select
        sum({{ column_name }}) as total_pct,
        count({{ column_name }}) as shares
    from {{ model }}
    having
        count({{ column_name }}) > 0
        and abs(sum({{ column_name }}) - 100)
        > greatest(0.01, 0.005 * count({{ column_name }}))
{% endtest %}
