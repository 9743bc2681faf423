-- The product catalogue (seed) with its category and list price range.

with

products as (

    select * from {{ ref('products') }}

),

final as (

    select
        product,
        category,
        cast(min_price as decimal(18, 2)) as list_price_min,
        cast(max_price as decimal(18, 2)) as list_price_max
    from products

)

select * from final
