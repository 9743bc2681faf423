{#-
    Reconciliation checks shared by the singular tests in tests/reconciliation/ (SPEC §3):
    every bronze line of an entity ends in exactly one place, silver or quarantine.
-#}

{#- SPEC §3: every bronze line ends in exactly one place, so bronze rows = silver rows + quarantined rows, for each bronze file and for the entity as a whole. Returns the files (and the '(all files)' total) that do not add up. -#}
{% macro bronze_reconciles_per_file(entity) %}
with

bronze as (

    select * from {{ source('retail', entity) }}

),

silver as (

    select * from {{ ref('stg_retail__' ~ entity) }}

),

quarantine as (

    select * from {{ ref('stg_retail__' ~ entity ~ '_quarantine') }}

),

bronze_per_file as (

    select
        _source_file,
        count(*) as bronze_rows
    from bronze
    group by _source_file

),

silver_per_file as (

    select
        _source_file,
        count(*) as silver_rows
    from silver
    group by _source_file

),

quarantine_per_file as (

    select
        _source_file,
        count(*) as quarantine_rows
    from quarantine
    group by _source_file

),

all_files as (

    select _source_file from bronze_per_file
    union all
    select _source_file from silver_per_file
    union all
    select _source_file from quarantine_per_file

),

files as (

    select distinct _source_file from all_files

),

per_file as (

    select
        files._source_file,
        coalesce(bronze_per_file.bronze_rows, 0) as bronze_rows,
        coalesce(silver_per_file.silver_rows, 0) as silver_rows,
        coalesce(quarantine_per_file.quarantine_rows, 0) as quarantine_rows
    from files
    left join bronze_per_file
        on files._source_file = bronze_per_file._source_file
    left join silver_per_file
        on files._source_file = silver_per_file._source_file
    left join quarantine_per_file
        on files._source_file = quarantine_per_file._source_file

),

bronze_total as (

    select count(*) as bronze_rows from bronze

),

silver_total as (

    select count(*) as silver_rows from silver

),

quarantine_total as (

    select count(*) as quarantine_rows from quarantine

),

entity_total as (

    select
        '(all files)' as _source_file,
        bronze_total.bronze_rows,
        silver_total.silver_rows,
        quarantine_total.quarantine_rows
    from bronze_total
    cross join silver_total
    cross join quarantine_total

),

checks as (

    select * from per_file
    union all
    select * from entity_total

),

final as (

    select * from checks
    where bronze_rows != silver_rows + quarantine_rows

)

select * from final
{% endmacro %}

{#- SPEC §3, line by line: each bronze line (file, line number) is in exactly one of silver and
    quarantine, and neither holds a line that is not in bronze. Catches what equal counts can hide
    (one line lost while another is kept twice).

    Two steps, so that a consistent build costs no per-line grouping: each file's line numbers
    are compared first as a multiset fingerprint (count and sum of 64-bit hashes: a lost, doubled
    or foreign line changes the sum unless two hashes collide), and only the files whose
    fingerprints differ are then checked line by line, naming each line that did not land once. -#}
{% macro bronze_lines_land_once(entity) %}
with

bronze as (

    select * from {{ source('retail', entity) }}

),

silver as (

    select * from {{ ref('stg_retail__' ~ entity) }}

),

quarantine as (

    select * from {{ ref('stg_retail__' ~ entity ~ '_quarantine') }}

),

lines as (

    -- One pass: every line of bronze, silver and quarantine.
    select
        _source_file,
        _row_number,
        1 as in_bronze,
        0 as in_silver_or_quarantine
    from bronze
    union all
    select
        _source_file,
        _row_number,
        0 as in_bronze,
        1 as in_silver_or_quarantine
    from silver
    union all
    select
        _source_file,
        _row_number,
        0 as in_bronze,
        1 as in_silver_or_quarantine
    from quarantine

),

hashed_lines as (

    select
        _source_file,
        in_bronze,
        cast(
            {{ lakehouse.fingerprint(['cast(_row_number as bigint)']) }}
            as {{ lakehouse.type_wide_integer() }}
        ) as line_hash
    from lines

),

files_to_check as (

    -- The files whose lines in bronze and in silver + quarantine are not the same multiset.
    select _source_file
    from hashed_lines
    group by _source_file
    having
        sum(in_bronze) != sum(1 - in_bronze)
        or sum(case when in_bronze = 1 then line_hash else 0 end)
        != sum(case when in_bronze = 0 then line_hash else 0 end)

),

files as (

    select
        _source_file,
        row_number() over (order by _source_file) as file_number
    from files_to_check

),

keyed_lines as (

    -- (file, line number) as one integer: grouping the lines on it instead of on the file's
    -- name and the number takes a quarter less time and memory. Line numbers are below 2^32, so
    -- two lines share a key only if they share the file and the number.
    select
        cast(files.file_number as bigint) * 4294967296 + lines._row_number as line_key,
        lines.in_bronze,
        lines.in_silver_or_quarantine
    from lines
    inner join files
        on lines._source_file = files._source_file

),

placed as (

    select
        line_key,
        sum(in_bronze) = 1 as is_in_bronze,
        sum(in_silver_or_quarantine) as destinations
    from keyed_lines
    group by line_key

),

final as (

    select
        files._source_file,
        placed.line_key % 4294967296 as _row_number,
        placed.is_in_bronze,
        placed.destinations
    from placed
    inner join files
        on {{ lakehouse.int_div('placed.line_key', '4294967296') }} = files.file_number
    where not placed.is_in_bronze or placed.destinations != 1

)

select * from final
{% endmacro %}
