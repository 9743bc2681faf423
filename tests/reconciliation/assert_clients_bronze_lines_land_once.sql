-- SPEC §3, line by line: each bronze client line (file, line number) is in exactly one of
-- silver and quarantine, and neither holds a line that is not in bronze. Catches what equal
-- counts can hide (one line lost while another is kept twice).

with

bronze as (

    select * from {{ source('retail', 'clients') }}

),

silver as (

    select * from {{ ref('stg_retail__clients') }}

),

quarantine as (

    select * from {{ ref('stg_retail__clients_quarantine') }}

),

landed as (

    select
        _source_file,
        _row_number,
        'silver' as destination
    from silver
    union all
    select
        _source_file,
        _row_number,
        'quarantine' as destination
    from quarantine

),

placed as (

    select
        _source_file,
        _row_number,
        count(*) as destinations
    from landed
    group by _source_file, _row_number

),

compared as (

    select
        coalesce(bronze._source_file, placed._source_file) as _source_file,
        coalesce(bronze._row_number, placed._row_number) as _row_number,
        bronze._row_number is not null as is_in_bronze,
        coalesce(placed.destinations, 0) as destinations
    from bronze
    full outer join placed
        on
            bronze._source_file = placed._source_file
            and bronze._row_number = placed._row_number

),

final as (

    select * from compared
    where not is_in_bronze or destinations != 1

)

select * from final
