-- The ten countries of the seed plus `Unknown` (clients whose country could not be recognised).

with

countries as (

    select * from {{ ref('countries') }}

),

final as (

    select
        country,
        iso_code,
        region,
        currency,
        false as is_unknown
    from countries
    union all
    select
        'Unknown' as country,
        cast(null as {{ dbt.type_string() }}) as iso_code,
        cast(null as {{ dbt.type_string() }}) as region,
        cast(null as {{ dbt.type_string() }}) as currency,
        true as is_unknown

)

select * from final
