-- One row per silver client with its current attributes, fix flags and masked e-mail.

with

clients as (

    select * from {{ ref('stg_retail__clients') }}

),

versions as (

    select
        client_id,
        count(*) as country_versions
    from {{ ref('int_client_versions_tracked') }}
    group by client_id

),

final as (

    select
        clients.client_id,
        clients.name,
        {{ lakehouse.mask_email('clients.email') }} as email_masked,
        clients.country,
        coalesce(versions.country_versions, 1) as country_versions,
        clients.subscription_date,
        clients.is_subscription_date_capped,
        clients.has_invalid_email,
        clients.has_shared_email,
        clients.has_unknown_country
    from clients
    left join versions
        on clients.client_id = versions.client_id

)

select * from final
