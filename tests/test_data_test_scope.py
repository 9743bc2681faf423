"""An incremental build's data tests check the rows it writes, and every row when in doubt.

One small lake, built in full (every row tested, the build check passes). Then two stored
silver purchase lines are corrupted by hand (a negative price, which the stored rule outcome
does not refuse): line R, whose purchase id a new batch repeats, so that the incremental build
ranks its copies again and writes R anew; and line K, which no build touches again. The build
scoped to its own rows (what `lakehouse run` asks for after a passing build) catches R and only
R; the same tests on every row catch both; and after that failed build, the next run's build
is back to testing every row (macros/test_scope.sql, orchestration/incremental.py). On the same
lake, the builds that must not count as passed: one that leaves out the tests of a view over
what it wrote, one whose selection drops tests, and a `dbt test` that finds a failing row. A
second lake: a fact rewritten under another as_of_date by a build that failed is compared again.
"""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from orchestration.incremental import RETESTED
from tests.conftest import BIN, build_selection, flow_build_env, lakehouse

pytestmark = pytest.mark.e2e

AS_OF = "2025-06-30"
PURCHASE_HEADER = "id_purchase,id_client,product,price,quantity,purchase_date,total"
PRICE_TEST = "test.lakehouse.accepted_range_stg_retail__purchases_price__0."
NEW_PURCHASE = 990_000_001


def dbt(env: dict[str, str], target: Path, *args: str, as_of: str = AS_OF) -> dict[str, dict]:
    """A dbt command on the lake (it may fail); its results by node."""
    command = [str(BIN / "dbt"), *args, "--vars", f"{{as_of_date: '{as_of}'}}", "--quiet"]
    subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    results = json.loads((target / "run_results.json").read_text())["results"]
    return {result["unique_id"]: result for result in results}


def result_of(results: dict[str, dict], prefix: str) -> dict:
    (result,) = [result for node, result in results.items() if node.startswith(prefix)]
    return result


def build_check(warehouse: Path) -> tuple:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return conn.execute("select previous_passed, passed from main.build_check").fetchone()


def build(env: dict[str, str], target: Path, *args: str, as_of: str = AS_OF) -> dict[str, dict]:
    """A `dbt build` without the unit tests (they check logic, not stored rows)."""
    return dbt(env, target, "build", "--exclude-resource-type", "unit_test", *args, as_of=as_of)


def ingest_lines(env: dict[str, str], batch: Path, *lines: tuple) -> None:
    """Write purchase lines (tuples in PURCHASE_HEADER's order) as a batch file and ingest it."""
    batch.parent.mkdir(exist_ok=True)
    body = "".join(f"{','.join(map(str, line))}\n" for line in lines)
    batch.write_text(f"{PURCHASE_HEADER}\n{body}", encoding="utf-8")
    lakehouse("ingest", str(batch), env=env)


def build_after_batch(
    env: dict[str, str], target: Path, batch: Path, purchase_id: int, like: tuple, *selection: str
) -> dict[str, dict]:
    """Ingest a batch of one new purchase (the other values of stored line `like`), then a
    `dbt build` of `selection`; its results."""
    ingest_lines(env, batch, (purchase_id, *like[1:]))
    return build(env, target, *selection)


# A stored silver line as a purchase line: (id, client, product, price, quantity, date, total).
STORED_LINES = (
    "select purchase_id, client_id, canonical_product, parsed_price, parsed_quantity, "
    "parsed_purchase_date, checked_total from silver.base_retail__purchases "
    "where reject_reason is null order by purchase_id limit {limit}"
)


def set_price(warehouse: Path, price: object, *purchase_ids: int) -> None:
    """Overwrite the price of stored silver lines (a corruption, or its repair)."""
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute(
            f"update silver.base_retail__purchases set parsed_price = {price} "
            f"where reject_reason is null and purchase_id in ({', '.join(map(str, purchase_ids))})"
        )


def built_lake(base: Path, clients: int, seed: int) -> tuple[dict[str, str], Path, Path, dict]:
    """A lake under `base` with a generated data set ingested and built in full: its
    environment (dbt builds in it stand for `lakehouse run`'s), dbt target folder, warehouse and
    the build's results."""
    src, target = base / "src", base / "target"
    env = flow_build_env(
        LAKE_DIR=str(base / "lake"),
        LAKEHOUSE_STATE_DIR=str(base / "state"),
        DBT_TARGET_PATH=str(target),
    )
    lakehouse(
        "generate", "--out", str(src), "--clients", str(clients), "--seed", str(seed),
        "--end-date", AS_OF, env=env,
    )  # fmt: skip
    lakehouse("ingest", *map(str, sorted(src.glob("*.csv"))), env=env)
    full = build(env, target)
    return env, target, base / "lake" / "warehouse" / "lakehouse.duckdb", full


@pytest.fixture(scope="module")
def scoped_lake(tmp_path_factory):
    base = tmp_path_factory.mktemp("test-scope")
    env, target, warehouse, full = built_lake(base, clients=200, seed=11)
    after_full_build = {"check": build_check(warehouse), "selection": build_selection(env, AS_OF)}

    with duckdb.connect(str(warehouse), read_only=True) as conn:
        (rewritten, kept) = conn.execute(STORED_LINES.format(limit=2)).fetchall()
    set_price(warehouse, -1, rewritten[0], kept[0])
    # A later copy of R's purchase: it loses to R (the oldest batch wins), but every stored copy
    # of the id is ranked again, so the build writes R again. And a new purchase, which the
    # failing build stores in silver but never reaches the fact (its tests stop it before).
    ingest_lines(env, base / "late" / "purchases_002.csv", rewritten, (NEW_PURCHASE, *kept[1:]))

    scoped = build({**env, "LAKEHOUSE_TEST_SCOPE": "built_rows"}, target)
    after_failed_build = {
        "check": build_check(warehouse),
        "selection": build_selection(env, AS_OF),
        "every_row_selection": build_selection({**env, "DATA_TEST_SCOPE": "all_rows"}, AS_OF),
    }
    every_row = dbt(env, target, "test", "--select", "stg_retail__purchases")
    # The stored lines repaired by hand; the next build has no new file, and its fact must still
    # take the purchase the failed build left out of it.
    for line in (rewritten, kept):
        set_price(warehouse, line[3], line[0])
    # As `lakehouse run` after a failed build: every row tested.
    repaired = build(env, target)
    after_repair = build_check(warehouse)
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        new_in_fact = conn.execute(
            f"select count(*) from gold.fct_sales where purchase_id = {NEW_PURCHASE}"
        ).fetchone()[0]
    # A build that writes purchases but not the view over them: the view's tests do not run,
    # so it does not pass; the next build tests every row and passes again.
    base_only = build_after_batch(
        env, target, base / "late" / "purchases_003.csv", NEW_PURCHASE + 1, kept,
        "--select", "base_retail__purchases",
    )  # fmt: skip
    after_base_only_build = build_check(warehouse)
    build(env, target)
    after_second_repair = build_check(warehouse)
    # A `dbt test` that finds a failing stored row marks the builds not passed.
    set_price(warehouse, -1, kept[0])
    failing_test = dbt(env, target, "test", "--select", "stg_retail__purchases")
    after_failing_test = build_check(warehouse)
    set_price(warehouse, kept[3], kept[0])
    build(env, target)
    after_third_repair = build_check(warehouse)
    # A build that writes a batch but leaves its tests out by selection (not by resource type)
    # does not count as passed.
    untested = build_after_batch(
        env, target, base / "late" / "purchases_004.csv", NEW_PURCHASE + 2, kept,
        "--select", "base_retail__purchases", "stg_retail__purchases",
        "stg_retail__purchases_quarantine", "fct_sales", "--indirect-selection", "empty",
    )  # fmt: skip
    return {
        "base_only": base_only,
        "after_base_only_build": after_base_only_build,
        "after_second_repair": after_second_repair,
        "failing_test": failing_test,
        "after_failing_test": after_failing_test,
        "after_third_repair": after_third_repair,
        "untested": untested,
        "after_untested_build": build_check(warehouse),
        "full": full,
        "after_full_build": after_full_build,
        "scoped": scoped,
        "after_failed_build": after_failed_build,
        "every_row": every_row,
        "repaired": repaired,
        "after_repair": after_repair,
        "new_in_fact": new_in_fact,
        "ids": (rewritten[0], kept[0]),
    }


def test_a_full_build_passes_and_lets_the_next_run_test_its_own_rows(scoped_lake):
    full = scoped_lake["full"]
    assert {r["status"] for r in full.values()} <= {"success", "pass", "no-op"}, [
        (node, r["status"]) for node, r in full.items() if r["status"] not in ("success", "pass")
    ]
    assert scoped_lake["after_full_build"]["check"] == (False, True)
    *_, scope = scoped_lake["after_full_build"]["selection"]
    assert scope == "built_rows"


def test_the_scoped_build_catches_the_row_it_wrote_and_only_that(scoped_lake):
    price = result_of(scoped_lake["scoped"], PRICE_TEST)
    assert price["status"] == "fail"
    assert price["failures"] == 1  # R; K was not written by this build


def test_the_same_test_on_every_row_catches_both(scoped_lake):
    price = result_of(scoped_lake["every_row"], PRICE_TEST)
    assert price["status"] == "fail"
    assert price["failures"] == 2


def test_after_a_failed_build_every_model_is_built_and_every_row_tested(scoped_lake):
    assert scoped_lake["after_failed_build"]["check"] == (True, False)
    args, message, _, scope = scoped_lake["after_failed_build"]["selection"]
    assert scope == "all_rows"
    assert args == ["build"] and message == RETESTED
    # Also when every row is tested anyway: the record must pass again for the fact to compare
    # only what changed.
    assert scoped_lake["after_failed_build"]["every_row_selection"] == [
        ["build"], RETESTED, [], "all_rows",
    ]  # fmt: skip


def test_after_a_failed_build_the_fact_still_takes_what_it_missed(scoped_lake):
    """The failed build stored the new purchase in silver (stamped with its number) and stopped
    before the fact; the repaired build, with no new file, finds it among the lines stamped
    after the fact's newest row, adds it, tests every row and passes."""
    repaired = scoped_lake["repaired"]
    assert {r["status"] for r in repaired.values()} <= {"success", "pass", "no-op"}
    assert scoped_lake["new_in_fact"] == 1
    assert scoped_lake["after_repair"] == (False, True)


def models_built(results: dict[str, dict]) -> dict[str, str]:
    return {
        node.split(".")[-1]: result["status"]
        for node, result in results.items()
        if node.startswith("model.")
    }


def test_a_build_that_leaves_out_a_view_over_what_it_wrote_does_not_pass(scoped_lake):
    """`dbt build -s base_retail__purchases` writes lines that stg_retail__purchases shows; the
    view's tests (prices, unique ids, clients) did not run, so its rows are not vouched for."""
    assert models_built(scoped_lake["base_only"]) == {"base_retail__purchases": "success"}
    assert not any(
        node.startswith("test.")
        for node in scoped_lake["base_only"]
        if "stg_retail__purchases_" in node and "quarantine" not in node
    )
    assert scoped_lake["after_base_only_build"] == (True, False)
    assert scoped_lake["after_second_repair"] == (False, True)


def test_a_dbt_test_that_fails_marks_the_builds_not_passed(scoped_lake):
    assert result_of(scoped_lake["failing_test"], PRICE_TEST)["status"] == "fail"
    assert scoped_lake["after_failing_test"] == (False, False)
    assert scoped_lake["after_third_repair"] == (False, True)


def test_a_build_whose_selection_leaves_tests_out_does_not_pass(scoped_lake):
    built = models_built(scoped_lake["untested"])
    assert set(built) == {
        "base_retail__purchases", "stg_retail__purchases", "stg_retail__purchases_quarantine",
        "fct_sales",
    }  # fmt: skip
    assert set(built.values()) == {"success"}
    assert scoped_lake["after_untested_build"] == (True, False)


@pytest.fixture(scope="module")
def fact_after_another_as_of(tmp_path_factory):
    """A build under another as_of_date rewrites fact rows, then "fails": the state it leaves
    (the fact written and stamped, `incremental_state` still at the old date because a failing
    build records nothing, the build not passed) is set by hand after a build that passed.
    The next build under the old date must compare every purchase again: the rows it rewrote
    carry the newest stamp, so the stamps alone would leave them as the other date made them.

    Client C subscribed on S; a purchase of C dated S - 20 days. Under as_of S - 10 days C's
    subscription is capped to S - 10, so the purchase's tenure is -10 days; under AS_OF it is -20.
    """
    base = tmp_path_factory.mktemp("fact-as-of")
    env, target, warehouse, _ = built_lake(base, clients=100, seed=12)
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        client, subscribed = conn.execute(
            "select client_id, subscription_date from silver.stg_retail__clients "
            "where not is_subscription_date_capped order by subscription_date desc limit 1"
        ).fetchone()
        like = conn.execute(STORED_LINES.format(limit=1)).fetchone()
    bought = subscribed - timedelta(days=20)
    other_as_of = (subscribed - timedelta(days=10)).isoformat()
    line = (NEW_PURCHASE, client, *like[2:5], bought.isoformat(), like[6])
    ingest_lines(env, base / "late" / "purchases_002.csv", line)
    other = build(env, target, as_of=other_as_of)
    tenure_sql = (
        f"select customer_tenure_days from gold.fct_sales where purchase_id = {NEW_PURCHASE}"
    )
    with duckdb.connect(str(warehouse)) as conn:
        under_other = conn.execute(tenure_sql).fetchone()
        conn.execute(
            f"update main.incremental_state set as_of_date = date '{AS_OF}' "
            "where model = 'fct_sales'"
        )
        conn.execute("update main.build_check set passed = false")
    back = build(env, target)
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        under_as_of = conn.execute(tenure_sql).fetchone()
    return {"other": other, "under_other": under_other, "back": back, "under_as_of": under_as_of}


def test_a_fact_rewritten_under_another_as_of_date_is_compared_again(fact_after_another_as_of):
    lake = fact_after_another_as_of
    for results in (lake["other"], lake["back"]):
        assert {r["status"] for r in results.values()} <= {"success", "pass", "no-op"}
    assert lake["under_other"] == (-10,)
    assert lake["under_as_of"] == (-20,)
