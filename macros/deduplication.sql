{#-
    De-duplication of the base models (SPEC §3: `duplicate_client`, `duplicate_purchase`), over a
    CTE `passing` of lines with `passes_row_rules` (every earlier rule passed). Renders three CTEs:

    - `id_copies`: the passing lines per id (an id with one has a survivor);
    - `copy_ranks`: the rank of each passing line among its id's, for the ids with several only
      (batch order `batch_order` — `asc`: the oldest batch wins, `desc`: the newest — then the
      first line in the file). A window over every line would carry all of its columns through a
      sort: at ten million lines it cost more than the rest of the model;
    - `ranked`: `passing` with `copy_rank` (1 = the survivor, null for a line that does not pass)
      and `has_passing_copy` (the id has a survivor).
-#}
{% macro rank_passing_copies(key, batch_order) -%}
id_copies as (

    select
        {{ key }},
        count(*) as passing_copies
    from passing
    where passes_row_rules
    group by {{ key }}

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
    inner join id_copies
        on passing.{{ key }} = id_copies.{{ key }}
    where passing.passes_row_rules and id_copies.passing_copies > 1

),

ranked as (

    select
        passing.*,
        case when passing.passes_row_rules then coalesce(copy_ranks.copy_rank, 1) end as copy_rank,
        id_copies.{{ key }} is not null as has_passing_copy
    from passing
    left join id_copies
        on passing.{{ key }} = id_copies.{{ key }}
    left join copy_ranks
        on passing._line_id = copy_ranks._line_id

)
{%- endmacro %}
