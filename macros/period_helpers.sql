{#-
    Helpers for the period, anomaly and distribution reports (SPEC §4). Engine-specific pieces go
    through adapter.dispatch, like macros/cleaning.sql, so that another engine needs only its own
    implementation of each macro.
-#}

{#-
    Continuous (linear interpolation) quantile of a numeric expression, as DOUBLE
    (numpy's default "linear" method: value at rank 1 + fraction × (n − 1)).
    The expression is cast to DOUBLE first: DuckDB's quantile_cont on a DECIMAL(18,2) returns a
    DECIMAL(18,2) and so rounds the interpolated value to the cent. Give it integer cents and the
    result is exact to well below 10^-6 (divide by 100 and cast to DECIMAL(18,4) afterwards).
-#}
{% macro percentile_cont(expression, fraction) -%}
    {{ return(adapter.dispatch('percentile_cont', 'lakehouse')(expression, fraction)) }}
{%- endmacro %}

{% macro default__percentile_cont(expression, fraction) -%}
    quantile_cont(cast({{ expression }} as double), {{ fraction }})
{%- endmacro %}

{#- Spark's percentile() is exact, with the same linear interpolation. -#}
{% macro spark__percentile_cont(expression, fraction) -%}
    percentile(cast({{ expression }} as double), {{ fraction }})
{%- endmacro %}

{#-
    Sample standard deviation (divisor n − 1) of an integer-valued measure (cents, units) from its
    exact aggregates: n, Σx and Σx². The variance numerator n·Σx² − (Σx)² is computed in integer
    arithmetic, so a constant series has a standard deviation of exactly 0 (DOUBLE running sums can
    leave 1e-15 and turn a flat series into an "anomaly"); only the final division and square root
    are in DOUBLE. Null when n < 2.
-#}
{% macro sample_std_from_sums(n, total, total_of_squares) -%}
    case
        when ({{ n }}) >= 2
            then sqrt(
                cast(
                    cast({{ n }} as {{ lakehouse.type_wide_integer() }}) * ({{ total_of_squares }})
                    - ({{ total }}) * ({{ total }})
                    as double
                )
                / (cast({{ n }} as double) * (cast({{ n }} as double) - 1))
            )
    end
{%- endmacro %}

{#-
    `column` values joined with `delimiter` in the order of `order_by` (ascending). dbt.listagg
    drops the order on Spark, so Spark sorts (key, value) pairs itself.
-#}
{% macro ordered_listagg(column, delimiter, order_by) -%}
    {{ return(adapter.dispatch('ordered_listagg', 'lakehouse')(column, delimiter, order_by)) }}
{%- endmacro %}

{% macro default__ordered_listagg(column, delimiter, order_by) -%}
    {{ dbt.listagg(column, "'" ~ delimiter ~ "'", 'order by ' ~ order_by) }}
{%- endmacro %}

{% macro spark__ordered_listagg(column, delimiter, order_by) -%}
    array_join(
        transform(
            array_sort(collect_list(named_struct('k', {{ order_by }}, 'v', {{ column }}))),
            pair -> pair.v
        ),
        '{{ delimiter }}'
    )
{%- endmacro %}
