-- A calendar spine covering the data: first subscription or purchase up to as_of_date.

with

purchases as (

    select purchase_date from {{ ref('stg_retail__purchases') }}

),

clients as (

    select subscription_date from {{ ref('stg_retail__clients') }}

),

bounds as (

    select
        least(
            coalesce((select min(purchase_date) from purchases), {{ lakehouse.as_of_date() }}),
            coalesce((select min(subscription_date) from clients), {{ lakehouse.as_of_date() }})
        ) as first_date,
        greatest(
            coalesce((select max(purchase_date) from purchases), {{ lakehouse.as_of_date() }}),
            {{ lakehouse.as_of_date() }}
        ) as last_date

),

spine as (

    {{ lakehouse.date_spine(
        '(select first_date from bounds)',
        '(select last_date from bounds)',
        'date_day'
    ) }}

),

final as (

    select
        date_day,
        {{ lakehouse.calendar_columns('date_day') }}
    from spine

)

select * from final
