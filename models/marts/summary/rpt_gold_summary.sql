-- One row that sums up the published gold layer (SPEC §4), exported as gold_summary.json.

with

sales as (

    select * from {{ ref('fct_sales') }}

),

client_kpis as (

    select * from {{ ref('rpt_client_kpis') }}

),

products as (

    select * from {{ ref('rpt_product_analytics') }}

),

countries as (

    select * from {{ ref('rpt_country_analytics') }}

),

daily as (

    select * from {{ ref('rpt_sales_daily') }}

),

weekly as (

    select * from {{ ref('rpt_sales_weekly') }}

),

monthly as (

    select * from {{ ref('rpt_sales_monthly') }}

),

quality as (

    select * from {{ ref('rpt_data_quality') }}

),

facts as (

    select
        count(*) as fact_rows,
        min(purchase_date) as first_sale_date,
        max(purchase_date) as last_sale_date,
        cast(sum(total) as decimal(18, 2)) as total_revenue
    from sales

),

clients as (

    select
        count(*) as clients,
        count(*) filter (where total_purchases > 0) as purchasing_clients,
        count(*) filter (where is_active) as active_clients,
        count(*) filter (where is_high_value) as high_value_clients,
        count(*) filter (where is_at_risk) as at_risk_clients
    from client_kpis

),

top_client as (

    select
        client_id as top_client_id,
        name as top_client_name,
        total_spent as top_client_revenue
    from client_kpis
    where total_purchases > 0
    order by total_spent desc, client_id asc
    limit 1

),

top_product as (

    select
        product as top_product,
        total_revenue as top_product_revenue
    from products
    order by total_revenue desc, product asc
    limit 1

),

top_country as (

    select
        country as top_country,
        total_revenue as top_country_revenue
    from countries
    order by total_revenue desc, country asc
    limit 1

),

daily_rows as (

    select count(*) as daily_rows from daily

),

weekly_rows as (

    select count(*) as weekly_rows from weekly

),

monthly_rows as (

    select count(*) as monthly_rows from monthly

),

products_with_sales as (

    select count(*) as products_with_sales from products

),

countries_with_sales as (

    select count(*) as countries_with_sales from countries

),

overall_quality as (

    select score as quality_score
    from quality
    where entity = 'overall' and measure = 'score'

),

final as (

    select
        facts.fact_rows,
        facts.first_sale_date,
        facts.last_sale_date,
        facts.total_revenue,
        clients.clients,
        clients.purchasing_clients,
        clients.active_clients,
        clients.high_value_clients,
        clients.at_risk_clients,
        products_with_sales.products_with_sales,
        countries_with_sales.countries_with_sales,
        daily_rows.daily_rows,
        weekly_rows.weekly_rows,
        monthly_rows.monthly_rows,
        top_product.top_product,
        top_product.top_product_revenue,
        top_country.top_country,
        top_country.top_country_revenue,
        top_client.top_client_id,
        top_client.top_client_name,
        top_client.top_client_revenue,
        overall_quality.quality_score,
        {{ lakehouse.as_of_date() }} as as_of_date,
        cast('{{ env_var("LAKEHOUSE_RUN_ID", "") or invocation_id }}' as {{ dbt.type_string() }})
            as run_id
    from facts
    cross join clients
    cross join products_with_sales
    cross join countries_with_sales
    cross join daily_rows
    cross join weekly_rows
    cross join monthly_rows
    cross join overall_quality
    left join top_product on true
    left join top_country on true
    left join top_client on true

)

select * from final
