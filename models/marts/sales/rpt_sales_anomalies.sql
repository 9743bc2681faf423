-- Days whose revenue deviates from the trailing 28-day mean by more than 3 trailing sample
-- standard deviations (SPEC §4). The history of a day is the 28 spine days before it (the day
-- excluded, zero-sale days counted as 0); days without a full 28-day history are not scored.
-- Sums are exact integer cents; only the square root and the z-score are in DOUBLE.

with

daily as (

    select * from {{ ref('rpt_sales_daily') }}

),

daily_cents as (

    select
        sale_date,
        total_revenue,
        {{ lakehouse.to_cents('total_revenue') }} as revenue_cents
    from daily

),

trailing_history as (

    -- rpt_sales_daily has one row per calendar day (tested), so 28 rows are 28 days.
    select
        sale_date,
        total_revenue,
        revenue_cents,
        count(*) over last_28_days as history_days,
        sum(revenue_cents) over last_28_days as history_cents,
        sum(revenue_cents * revenue_cents) over last_28_days as history_squares
    from daily_cents
    window
        last_28_days as (order by sale_date rows between 28 preceding and 1 preceding)

),

scored as (

    select
        sale_date,
        total_revenue,
        history_days,
        history_cents,
        {{ lakehouse.sample_std_from_sums('history_days', 'history_cents', 'history_squares') }}
            as std_cents,
        -- (revenue - mean) in cents, times n so that it stays an exact integer.
        history_days * revenue_cents - history_cents as scaled_deviation
    from trailing_history
    where history_days = 28

),

z_scored as (

    select
        *,
        case
            when std_cents > 0
                then cast(scaled_deviation as double) / (history_days * std_cents)
        end as z_score_unrounded
    from scored

),

final as (

    select
        sale_date,
        total_revenue,
        {{ lakehouse.money_avg('history_cents', 'history_days') }} as trailing_mean,
        round(std_cents / 100, 4) as trailing_std,
        round(z_score_unrounded, 4) as z_score,
        case when z_score_unrounded > 0 then 'spike' else 'drop' end as direction
    from z_scored
    where abs(z_score_unrounded) > 3

)

select * from final
