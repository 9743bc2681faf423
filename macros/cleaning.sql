{#-
    Text cleaning shared by the staging models (SPEC §3). Engine-specific pieces go through
    adapter.dispatch so that another engine needs only its own implementation of each macro.
-#}

{#- A cleaned value (SPEC §3) is `null_if_token(trim_blanks(value))`: trimmed text, or null for
    blanks and the null tokens. A model that cleans many values computes `trim_blanks` in one step
    and `null_if_token` on its result in the next, so that the trimmed text is computed once, not
    once per use. -#}

{#- Text without leading or trailing whitespace (RE2's \s: tab, newline, form feed, carriage
    return, space). -#}
{% macro trim_blanks(column) -%}
    {{ return(adapter.dispatch('trim_blanks', 'lakehouse')(column)) }}
{%- endmacro %}

{#- trim() with that character set is the regex `^\s+|\s+$` without a regex, and it runs only
    on text that starts or ends with a control character or a space (the regex's set is among
    them), so most values are not copied. At ten million lines the regex, or an `in (…)` list
    (which DuckDB plans as a join), cost more than everything else in the base models. -#}
{% macro default__trim_blanks(column) -%}
    (case
        when ascii({{ column }}) <= 32 or ascii(right({{ column }}, 1)) <= 32
            then trim({{ column }}, chr(9) || chr(10) || chr(12) || chr(13) || chr(32))
        else {{ column }}
    end)
{%- endmacro %}

{#- The same five characters spelt out: Java's \s also holds the vertical tab, RE2's does not. -#}
{% macro spark__trim_blanks(column) -%}
    {{ lakehouse.regexp_replace_all(column, '^[\\t\\n\\f\\r ]+|[\\t\\n\\f\\r ]+$', '') }}
{%- endmacro %}

{#- Null for an empty text and the null tokens (case-insensitive), else the text itself. -#}
{% macro null_if_token(column) -%}
    {{ return(adapter.dispatch('null_if_token', 'lakehouse')(column)) }}
{%- endmacro %}

{#- The tokens are looked up only for text of at most four characters. -#}
{% macro default__null_if_token(column) -%}
    case
        when length({{ column }}) <= 4
            and list_contains(['', 'null', 'none', 'nan', 'n/a', 'na', '#n/a', '<na>'], lower({{ column }}))
            then null
        else {{ column }}
    end
{%- endmacro %}

{% macro spark__null_if_token(column) -%}
    case
        when lower({{ column }}) in ('', 'null', 'none', 'nan', 'n/a', 'na', '#n/a', '<na>') then null
        else {{ column }}
    end
{%- endmacro %}

{#-
    Replace every match of a regular expression. `pattern` is the regex itself (RE2 / Java
    syntax, backslashes single): each engine quotes it as its string literals need.
-#}
{% macro regexp_replace_all(column, pattern, replacement) -%}
    {{ return(adapter.dispatch('regexp_replace_all', 'lakehouse')(column, pattern, replacement)) }}
{%- endmacro %}

{% macro default__regexp_replace_all(column, pattern, replacement) -%}
    regexp_replace({{ column }}, '{{ pattern }}', '{{ replacement }}', 'g')
{%- endmacro %}

{#- Spark string literals treat a backslash as an escape: double it; Spark replaces every match. -#}
{% macro spark__regexp_replace_all(column, pattern, replacement) -%}
    regexp_replace({{ column }}, '{{ pattern | replace('\\', '\\\\') }}', '{{ replacement }}')
{%- endmacro %}

{#- True when the whole text matches a regular expression. -#}
{% macro matches(column, pattern) -%}
    {{ return(adapter.dispatch('matches', 'lakehouse')(column, pattern)) }}
{%- endmacro %}

{% macro default__matches(column, pattern) -%}
    regexp_full_match({{ column }}, '{{ pattern }}')
{%- endmacro %}

{#-
    Java's `$` also matches before a final line break: anchor on `\z` (the very end) instead,
    so that 'abc\n' does not fully match 'abc' (RE2's full match does not either).
-#}
{% macro spark__matches(column, pattern) -%}
    ({{ column }} rlike '^(?:{{ pattern | replace('\\', '\\\\') }})\\z')
{%- endmacro %}

{#- A positive integer id from digits only (at most 18), else null. -#}
{% macro parse_id(column) -%}
    case
        when {{ lakehouse.matches(column, '[0-9]{1,18}') }} and cast({{ column }} as bigint) >= 1
            then cast({{ column }} as bigint)
    end
{%- endmacro %}

{#- A date from the accepted layouts (SPEC §3), else null (impossible dates included). -#}
{% macro parse_date(column) -%}
    {{ return(adapter.dispatch('parse_date', 'lakehouse')(column)) }}
{%- endmacro %}

{#- Year 0000 is no calendar year (1 BC precedes AD 1): an impossible date. DuckDB would read
    it as 1 BC, which Python's dates (the dashboard) cannot hold. In every accepted layout the
    year is the first or the last four characters, and the other end holds a separator. -#}
{% macro is_year_zero(column) -%}
    (left({{ column }}, 4) = '0000' or right({{ column }}, 4) = '0000')
{%- endmacro %}

{% macro default__parse_date(column) -%}
    case
        when {{ lakehouse.is_year_zero(column) }} then null
        when {{ lakehouse.matches(column, '[0-9]{4}-[0-9]{2}-[0-9]{2}') }}
            then cast(try_strptime({{ column }}, '%Y-%m-%d') as date)
        when {{ lakehouse.matches(column, '[0-9]{4}/[0-9]{2}/[0-9]{2}') }}
            then cast(try_strptime({{ column }}, '%Y/%m/%d') as date)
        when {{ lakehouse.matches(column, '[0-9]{2}/[0-9]{2}/[0-9]{4}') }}
            then cast(try_strptime({{ column }}, '%d/%m/%Y') as date)
        when {{ lakehouse.matches(column, '[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}') }}
            then cast(try_strptime({{ column }}, '%Y-%m-%dT%H:%M:%S') as date)
    end
{%- endmacro %}

{#-
    Spark: the layout is already validated by the pattern, so the strict (CORRECTED) parser
    returns null for an impossible date or time (ANSI mode is off under dbt-spark).
-#}
{% macro spark__parse_date(column) -%}
    case
        when {{ lakehouse.is_year_zero(column) }} then null
        when {{ lakehouse.matches(column, '[0-9]{4}-[0-9]{2}-[0-9]{2}') }}
            then to_date({{ column }}, 'yyyy-MM-dd')
        when {{ lakehouse.matches(column, '[0-9]{4}/[0-9]{2}/[0-9]{2}') }}
            then to_date({{ column }}, 'yyyy/MM/dd')
        when {{ lakehouse.matches(column, '[0-9]{2}/[0-9]{2}/[0-9]{4}') }}
            then to_date({{ column }}, 'dd/MM/yyyy')
        when {{ lakehouse.matches(column, '[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}') }}
            then cast(to_timestamp({{ column }}, "yyyy-MM-dd'T'HH:mm:ss") as date)
    end
{%- endmacro %}

{#- A plain decimal (no exponent, no thousands separator) as DECIMAL(18,2), else null. -#}
{% macro parse_money(column) -%}
    case
        when {{ lakehouse.matches(column, '[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)') }}
            then {{ lakehouse.try_decimal(column) }}
    end
{%- endmacro %}

{% macro try_decimal(column) -%}
    {{ return(adapter.dispatch('try_decimal', 'lakehouse')(column)) }}
{%- endmacro %}

{% macro default__try_decimal(column) -%}
    try_cast({{ column }} as decimal(18, 2))
{%- endmacro %}

{#- Spark (ANSI off): a failed or overflowing cast is null; rounding is half up (away from zero). -#}
{% macro spark__try_decimal(column) -%}
    cast({{ column }} as decimal(18, 2))
{%- endmacro %}

{#- An integer quantity: digits with an optional sign and an all-zero fraction ('2.0' is 2). -#}
{% macro parse_quantity(column) -%}
    case
        when {{ lakehouse.matches(column, '[+-]?[0-9]{1,18}([.]0+)?') }}
            then cast(regexp_replace({{ column }}, '[.]0+$', '') as bigint)
    end
{%- endmacro %}

{#- Lower-cased e-mail when it is valid, else null. -#}
{% macro valid_email(column) -%}
    case
        when {{ lakehouse.matches('lower(' ~ column ~ ')', '[a-z0-9._%+-]+@[a-z0-9.-]+[.][a-z]{2,}') }}
            then lower({{ column }})
    end
{%- endmacro %}

{#- Mask an e-mail for gold: first character, ***, then the domain (j***@example.com). -#}
{% macro mask_email(column) -%}
    case
        when {{ column }} is not null
            then {{ dbt.concat(["left(" ~ column ~ ", 1)", "'***@'", "split_part(" ~ column ~ ", '@', 2)"]) }}
    end
{%- endmacro %}

{#- Comma-joined codes of the true flags, in the given order (null when none is true). -#}
{% macro join_flags(pairs) -%}
    nullif(concat_ws(','
        {%- for flag, code in pairs %},
        case when {{ flag }} then '{{ code }}' end
        {%- endfor %}
    ), '')
{%- endmacro %}

{#- A small literal table: `columns` names, `rows` tuples of Python literals. -#}
{% macro values_table(columns, rows) -%}
    {%- for row in rows %}
    select
        {%- for value in row %}
        {% if value is string %}'{{ value }}'{% else %}{{ value }}{% endif %} as {{ columns[loop.index0] }}
        {%- if not loop.last %},{% endif %}
        {%- endfor %}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
{%- endmacro %}

{#-
    The cell (row, col), both 1-based, of a literal grid given as a list of rows of strings (an
    independent encoding of a lookup table in tests). DuckDB: nested list literal, Spark:
    element_at over array(array(…)).
-#}
{% macro grid_lookup(grid, row, col) -%}
    {{ return(adapter.dispatch('grid_lookup', 'lakehouse')(grid, row, col)) }}
{%- endmacro %}

{% macro default__grid_lookup(grid, row, col) -%}
    [
    {%- for cells in grid %}
        [{% for cell in cells %}'{{ dbt.escape_single_quotes(cell) }}'{% if not loop.last %}, {% endif %}{% endfor %}]
        {%- if not loop.last %},{% endif %}
    {%- endfor %}
    ][{{ row }}][{{ col }}]
{%- endmacro %}

{% macro spark__grid_lookup(grid, row, col) -%}
    element_at(element_at(array(
    {%- for cells in grid %}
        array({% for cell in cells %}'{{ dbt.escape_single_quotes(cell) }}'{% if not loop.last %}, {% endif %}{% endfor %})
        {%- if not loop.last %},{% endif %}
    {%- endfor %}
    ), {{ row }}), {{ col }})
{%- endmacro %}

{#- Which of `columns` are null, as one integer: bit i (value 2^i) is set when the i-th column is
    null. The base models keep it with each line (`null_flags`, over the cleaned values of the raw
    columns), so the data-quality report counts nulls per column without cleaning ten million
    raw values again at every run. -#}
{% macro null_flags(columns) -%}
    cast(
        {%- for column in columns %}
        (case when {{ column }} is null then {{ 2 ** loop.index0 }} else 0 end)
        {%- if not loop.last %} +{% endif %}
        {%- endfor %}
        as integer
    )
{%- endmacro %}

{#- Whether the column at `position` (0-based) of a `null_flags` value is null. -#}
{% macro is_flagged_null(flags, position) -%}
    ({{ flags }} & {{ 2 ** position }}) != 0
{%- endmacro %}
