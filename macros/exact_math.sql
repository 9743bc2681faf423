{#-
    Exact arithmetic for money and shares (SPEC §4: "floating point gets exact ties wrong by
    0.01"). DuckDB divides decimals in DOUBLE, so ratios are computed on integers (cents and
    counts) and rounded half away from zero in integer arithmetic, then scaled back to DECIMAL.
-#}

{#- Money as integer cents. -#}
{% macro to_cents(expression) -%}
    cast(({{ expression }}) * 100 as hugeint)
{%- endmacro %}

{#-
    round(multiplier × numerator / denominator, scale), half away from zero, as DECIMAL(18, scale).
    numerator and denominator must be integer-valued; null when the denominator is null or 0.
-#}
{% macro exact_ratio(numerator, denominator, multiplier=1, scale=2) -%}
    case
        when ({{ denominator }}) is null or ({{ denominator }}) = 0 then null
        else cast(
            cast(
                sign(cast({{ numerator }} as hugeint)) * sign(cast({{ denominator }} as hugeint))
                * (
                    (
                        2 * abs(cast({{ numerator }} as hugeint)) * {{ multiplier * (10 ** scale) }}
                        + abs(cast({{ denominator }} as hugeint))
                    ) // (2 * abs(cast({{ denominator }} as hugeint)))
                ) as decimal(38, 0)
            ) * {{ '0.' ~ ('0' * (scale - 1)) ~ '1' if scale > 0 else '1' }}
            as decimal(18, {{ scale }})
        )
    end
{%- endmacro %}

{#- A money average from a sum in cents and a count, rounded to the cent. -#}
{% macro money_avg(cents_sum, count) -%}
    {{ lakehouse.exact_ratio(cents_sum, '(' ~ count ~ ') * 100', multiplier=1, scale=2) }}
{%- endmacro %}
