-- A calendar spine covering the data: first subscription or purchase up to as_of_date.

with

purchases as (

    select purchase_date from {{ ref('stg_retail__purchases') }}

),

clients as (

    select subscription_date from {{ ref('stg_retail__clients') }}

),

purchase_bounds as (

    select
        min(purchase_date) as first_purchase_date,
        max(purchase_date) as last_purchase_date
    from purchases

),

subscription_bounds as (

    select min(subscription_date) as first_subscription_date
    from clients

),

bounds as (

    -- No purchase or no client yet: as_of_date stands in for the missing bound.
    select
        least(
            coalesce(purchase_bounds.first_purchase_date, {{ lakehouse.as_of_date() }}),
            coalesce(subscription_bounds.first_subscription_date, {{ lakehouse.as_of_date() }})
        ) as first_date,
        greatest(
            coalesce(purchase_bounds.last_purchase_date, {{ lakehouse.as_of_date() }}),
            {{ lakehouse.as_of_date() }}
        ) as last_date
    from purchase_bounds
    cross join subscription_bounds

),

spine as (

    {{ lakehouse.date_spine('bounds', 'first_date', 'last_date', 'date_day') }}

),

final as (

    select
        date_day,
        {{ lakehouse.calendar_columns('date_day') }}
    from spine

)

select * from final
