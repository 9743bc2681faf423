{#-
    De-duplication of the base models (SPEC §3: `duplicate_client`, `duplicate_purchase`), over a
    CTE `passing` of lines with `has_passed_row_rules` (every earlier rule passed). Renders three
    CTEs:

    - `contested_ids`: the ids whose lines need more than the line itself — several passing lines
      (to rank) or a refused line beside a passing one (it has a survivor elsewhere). One narrow
      pass over `passing`; at ten million lines a few tens of thousands of ids come out, so the
      joins below build small hash tables;
    - `copy_ranks`: the rank of each passing line among its id's, for the ids with several only
      (batch order `batch_order` — `asc`: the oldest batch wins, `desc`: the newest — then the
      first line in the file). A window over every line would carry all of its columns through a
      sort: at ten million lines it cost more than the rest of the model;
    - `ranked`: `passing` with `copy_rank` (1 = the survivor, null for a line that does not pass)
      and `has_passing_copy` (the id has a survivor: this line passes, or another one does).
-#}
{% macro rank_passing_copies(key, batch_order) -%}
contested_ids as (

    select
        {{ key }},
        sum(case when has_passed_row_rules then 1 else 0 end) as passing_copies
    from passing
    where {{ key }} is not null
    group by {{ key }}
    -- A passing line and any other line: a second passing copy, or a refused one beside it.
    having sum(case when has_passed_row_rules then 1 else 0 end) > 0 and count(*) > 1

),

copy_ranks as (

    select
        passing._line_id,
        row_number() over (
            partition by passing.{{ key }}
            order by
                passing._ingested_at {{ batch_order }},
                passing._source_file {{ batch_order }},
                passing._row_number asc
        ) as copy_rank
    from passing
    inner join contested_ids
        on passing.{{ key }} = contested_ids.{{ key }}
    where passing.has_passed_row_rules and contested_ids.passing_copies > 1

),

ranked as (

    select
        passing.*,
        case
            when passing.has_passed_row_rules then coalesce(copy_ranks.copy_rank, 1)
        end as copy_rank,
        coalesce(passing.has_passed_row_rules, false) or contested_ids.{{ key }} is not null
            as has_passing_copy
    from passing
    left join contested_ids
        on passing.{{ key }} = contested_ids.{{ key }}
    left join copy_ranks
        on passing._line_id = copy_ranks._line_id

)
{%- endmacro %}
