-- SPEC §4: the client history is rebuilt from the same lines as silver, so its latest version is
-- the client silver keeps: every silver client has a history, every history a silver client,
-- and the latest version's country is the silver country (fct_sales relies on it for clients
-- with a single version). Returns the clients where the two disagree.

with

versions as (

    select * from {{ ref('int_client_versions_tracked') }}

),

clients as (

    select * from {{ ref('stg_retail__clients') }}

),

latest_version_numbers as (

    select
        client_id,
        max(version_number) as version_number
    from versions
    group by client_id

),

latest_versions as (

    select
        versions.client_id,
        versions.country
    from versions
    inner join latest_version_numbers
        on
            versions.client_id = latest_version_numbers.client_id
            and versions.version_number = latest_version_numbers.version_number

),

compared as (

    select
        coalesce(clients.client_id, latest_versions.client_id) as client_id,
        clients.country as silver_country,
        latest_versions.country as history_country
    from clients
    full outer join latest_versions
        on clients.client_id = latest_versions.client_id

),

final as (

    select * from compared
    where silver_country is distinct from history_country

)

select * from final
