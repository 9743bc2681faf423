{#-
    Exact arithmetic for money and shares (SPEC §4: "floating point gets exact ties wrong by
    0.01"). DuckDB divides decimals in DOUBLE, so ratios are computed on integers (cents and
    counts) and rounded half away from zero in integer arithmetic, then scaled back to DECIMAL.
-#}

{#- Money as integer cents (the wide integer type), rounded half away from zero to the cent. -#}
{% macro to_cents(expression) -%}
    {{ return(adapter.dispatch('to_cents', 'lakehouse')(expression)) }}
{%- endmacro %}

{% macro default__to_cents(expression) -%}
    cast(({{ expression }}) * 100 as {{ lakehouse.type_wide_integer() }})
{%- endmacro %}

{#- DuckDB turns a DECIMAL(38, s) (a sum of money) into an integer by dividing HUGEINTs in
    software: 0.5 s for two million per-client sums. Below 10^14 the value fits DECIMAL(18, 2),
    whose conversion is 64-bit arithmetic (0.04 s); the result is the same. From 10^14 on, the
    value is widened first: DuckDB keeps DECIMAL(18, 2) × 100 in 64 bits, which overflows there
    (one order line of 2·10^14 failed the build). -#}
{% macro duckdb__to_cents(expression) -%}
    case
        when abs({{ expression }}) < 99999999999999
            then cast(cast({{ expression }} as decimal(18, 2)) * 100 as bigint)
        else cast(
            cast({{ expression }} as decimal(38, 2)) * 100 as {{ lakehouse.type_wide_integer() }}
        )
    end
{%- endmacro %}

{#- The widest exact integer type: DuckDB's HUGEINT (128 bits), Spark's DECIMAL(38, 0). -#}
{% macro type_wide_integer() -%}
    {{ return(adapter.dispatch('type_wide_integer', 'lakehouse')()) }}
{%- endmacro %}

{% macro default__type_wide_integer() -%}
    hugeint
{%- endmacro %}

{% macro spark__type_wide_integer() -%}
    decimal(38, 0)
{%- endmacro %}

{#- Integer division truncating toward zero, of non-negative integer-valued operands. -#}
{% macro int_div(numerator, denominator) -%}
    {{ return(adapter.dispatch('int_div', 'lakehouse')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__int_div(numerator, denominator) -%}
    ({{ numerator }}) // ({{ denominator }})
{%- endmacro %}

{#- Spark's `div` is exact on DECIMAL operands and returns a BIGINT. -#}
{% macro spark__int_div(numerator, denominator) -%}
    ({{ numerator }}) div ({{ denominator }})
{%- endmacro %}

{#-
    round(multiplier × numerator / denominator, scale), half away from zero, as DECIMAL(18, scale).
    numerator and denominator must be integer-valued; null when the denominator is null or 0.
-#}
{% macro exact_ratio(numerator, denominator, multiplier=1, scale=2) -%}
    {{ return(adapter.dispatch('exact_ratio', 'lakehouse')(numerator, denominator, multiplier, scale)) }}
{%- endmacro %}

{% macro default__exact_ratio(numerator, denominator, multiplier, scale) -%}
    case
        when ({{ denominator }}) is null or ({{ denominator }}) = 0 then null
        else {{ lakehouse.rounded_quotient(
            numerator, denominator, multiplier, scale, lakehouse.type_wide_integer() | trim
        ) }}
    end
{%- endmacro %}

{#- DuckDB divides HUGEINTs in software, some fifty times slower than BIGINTs (1 s per two million
    rows in rpt_client_kpis): operands small enough that 2 × |numerator| × 10^scale × multiplier
    + |denominator| fits in a BIGINT take the BIGINT path, the same integer arithmetic; larger
    ones the exact HUGEINT path. -#}
{% macro duckdb__exact_ratio(numerator, denominator, multiplier, scale) -%}
    {%- set factor = multiplier * (10 ** scale) -%}
    case
        when ({{ denominator }}) is null or ({{ denominator }}) = 0 then null
        when
            abs({{ numerator }}) <= {{ (8 * 10 ** 18) // (2 * factor) }}
            and abs({{ denominator }}) <= {{ 10 ** 18 }}
            then {{ lakehouse.rounded_quotient(numerator, denominator, multiplier, scale, 'bigint') }}
        else {{ lakehouse.rounded_quotient(numerator, denominator, multiplier, scale, 'hugeint') }}
    end
{%- endmacro %}

{#- The rounding of exact_ratio in integer type `wide`, for operands that fit in it. -#}
{% macro rounded_quotient(numerator, denominator, multiplier, scale, wide) -%}
    cast(
        cast(
            cast(sign(cast({{ numerator }} as {{ wide }})) as integer)
            * cast(sign(cast({{ denominator }} as {{ wide }})) as integer)
            * cast({{ lakehouse.int_div(
                '2 * abs(cast(' ~ numerator ~ ' as ' ~ wide ~ ')) * ' ~ (multiplier * (10 ** scale))
                ~ ' + abs(cast(' ~ denominator ~ ' as ' ~ wide ~ '))',
                '2 * abs(cast(' ~ denominator ~ ' as ' ~ wide ~ '))'
            ) }} as {{ wide }}) as decimal(38, 0)
        ) * {{ '0.' ~ ('0' * (scale - 1)) ~ '1' if scale > 0 else '1' }}
        as decimal(18, {{ scale }})
    )
{%- endmacro %}

{#- A money average from a sum in cents and a count, rounded to the cent. -#}
{% macro money_avg(cents_sum, count) -%}
    {{ lakehouse.exact_ratio(cents_sum, '(' ~ count ~ ') * 100', multiplier=1, scale=2) }}
{%- endmacro %}
