-- One row per silver purchase, with the client's country at purchase time (SPEC §4).

with

purchases as (

    select * from {{ ref('stg_retail__purchases') }}

),

clients as (

    select * from {{ ref('stg_retail__clients') }}

),

versions as (

    select * from {{ ref('int_client_versions_tracked') }}

),

dates as (

    select * from {{ ref('dim_dates') }}

),

purchase_versions as (

    -- The version valid on the purchase date, else the first version.
    select
        purchases.purchase_id,
        versions.country,
        row_number() over (
            partition by purchases.purchase_id
            order by
                case when versions.valid_from <= purchases.purchase_date then 0 else 1 end,
                case
                    when versions.valid_from <= purchases.purchase_date
                        then versions.version_number
                end desc,
                versions.version_number asc
        ) as version_rank
    from purchases
    inner join versions
        on purchases.client_id = versions.client_id

),

final as (

    select
        purchases.purchase_id,
        purchases.client_id,
        purchases.product,
        coalesce(purchase_versions.country, clients.country) as country,
        purchases.price,
        purchases.quantity,
        purchases.total,
        purchases.is_total_recalculated,
        purchases.purchase_date,
        dates.year,
        dates.quarter,
        dates.month,
        dates.year_month,
        dates.iso_year,
        dates.iso_week,
        dates.iso_year_week,
        dates.iso_day_of_week,
        dates.day_name,
        dates.week_start_date,
        dates.month_start_date,
        cast(
            {{ dbt.datediff('clients.subscription_date', 'purchases.purchase_date', 'day') }}
            as bigint
        ) as customer_tenure_days
    from purchases
    inner join clients
        on purchases.client_id = clients.client_id
    inner join dates
        on purchases.purchase_date = dates.date_day
    left join purchase_versions
        on
            purchases.purchase_id = purchase_versions.purchase_id
            and purchase_versions.version_rank = 1

)

select * from final
