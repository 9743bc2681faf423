"""Which silver models a run leaves out (orchestration/incremental.py), on hand-written state.

The end-to-end proof that the outcome equals a full rebuild is tests/test_incremental.py; here
the rule itself: a model is up to date when it reflects the run's as_of_date and every bronze
file of the sources upstream of it, and so does each of its bronze_driven parents, all built by
the flow with the project's current code.
"""

from __future__ import annotations

from orchestration.incremental import ModelState, SilverStatus, up_to_date_models

AS_OF = "2025-06-30"
CLIENTS_1 = "clients/ingest_date=2025-06-01/clients__20250601T000000000000Z__aaaaaaaaaaaa.csv"
CLIENTS_2 = "clients/ingest_date=2025-06-02/clients__20250602T000000000000Z__bbbbbbbbbbbb.csv"
PURCHASES_1 = "purchases/ingest_date=2025-06-01/purchases__20250601T000000000001Z__cccccccccccc.csv"
PURCHASES_2 = "purchases/ingest_date=2025-06-02/purchases__20250602T000000000001Z__dddddddddddd.csv"
CLIENTS = frozenset({"retail.clients"})
BOTH = frozenset({"retail.clients", "retail.purchases"})
SEEN = frozenset({CLIENTS_1, PURCHASES_1})
CODE = "fingerprint-of-the-project"
CLIENT_MODELS = ["base_retail__clients", "stg_retail__clients"]
PURCHASE_MODELS = ["base_retail__purchases", "fct_sales"]


def state(**replaced: ModelState) -> dict[str, ModelState]:
    """Four models built after the first clients and purchases files, as the hook records them."""
    models = {
        "base_retail__clients": ModelState(CLIENTS, frozenset(), SEEN, AS_OF, CODE),
        "stg_retail__clients": ModelState(
            CLIENTS, frozenset({"base_retail__clients"}), SEEN, AS_OF, CODE
        ),
        "base_retail__purchases": ModelState(
            BOTH, frozenset({"stg_retail__clients"}), SEEN, AS_OF, CODE
        ),
        "fct_sales": ModelState(
            BOTH, frozenset({"base_retail__purchases", "stg_retail__clients"}), SEEN, AS_OF, CODE
        ),
    }
    return {**models, **replaced}


def test_a_purchases_file_leaves_out_the_models_that_read_clients_alone():
    bronze = {CLIENTS_1, PURCHASES_1, PURCHASES_2}
    assert up_to_date_models(state(), bronze, AS_OF, CODE) == (CLIENT_MODELS, PURCHASE_MODELS)


def test_a_clients_file_reaches_every_model():
    every = sorted(CLIENT_MODELS + PURCHASE_MODELS)
    assert up_to_date_models(state(), {CLIENTS_1, CLIENTS_2, PURCHASES_1}, AS_OF, CODE) == (
        [],
        every,
    )


def test_no_new_file_leaves_out_every_model_and_a_new_as_of_date_none():
    every = sorted(CLIENT_MODELS + PURCHASE_MODELS)
    assert up_to_date_models(state(), set(SEEN), AS_OF, CODE) == (every, [])
    assert up_to_date_models(state(), set(SEEN), "2025-07-31", CODE) == ([], every)


def test_the_readers_of_a_model_that_is_built_again_are_built_again():
    """stg_retail__clients was last built before the first clients file (a failed run, a manual
    build): the purchase models reflect every file themselves, but read it, so they are built."""
    behind = ModelState(CLIENTS, frozenset({"base_retail__clients"}), frozenset(), AS_OF, CODE)
    up, stale = up_to_date_models(state(stg_retail__clients=behind), set(SEEN), AS_OF, CODE)
    assert up == ["base_retail__clients"]
    assert stale == ["base_retail__purchases", "fct_sales", "stg_retail__clients"]


def test_a_model_built_by_hand_or_with_other_code_is_built_again_with_its_readers():
    """stg_retail__clients was last built by a `dbt build` by hand (no fingerprint: perhaps from
    code since reverted), or by the flow with other code: it and what reads it are built."""
    for code in ("", "fingerprint-of-other-code"):
        by_hand = ModelState(CLIENTS, frozenset({"base_retail__clients"}), SEEN, AS_OF, code)
        up, stale = up_to_date_models(state(stg_retail__clients=by_hand), set(SEEN), AS_OF, CODE)
        assert up == ["base_retail__clients"]
        assert stale == ["base_retail__purchases", "fct_sales", "stg_retail__clients"]


def test_the_build_leaves_out_the_models_and_the_unchanged_sources_by_name():
    status = SilverStatus(
        AS_OF,
        built_as_of=AS_OF,
        new_files=[PURCHASES_2],
        up_to_date_models=CLIENT_MODELS,
        unchanged_sources=["retail.clients"],
        stale_models=PURCHASE_MODELS,
    )
    assert not status.up_to_date
    assert status.dbt_args() == [
        "--exclude",
        *CLIENT_MODELS,
        "source:retail.clients",
        "--indirect-selection",
        "cautious",
    ]
    assert status.describe() == (
        "1 new bronze file(s) (purchases): silver and fct_sales built incrementally; "
        "up to date, skipped: base_retail__clients, stg_retail__clients"
    )
