"""A change of the project's code reaches the rows the incremental models stored before it.

An incremental build applies the code to new bronze lines only: after a change of a rule (here
the product seed, which decides `unknown_product`), every purchase stored before would keep the
old rule's outcome. `lakehouse run` rebuilds in full the incremental models the change reaches
(dbt's `state:modified+` against the manifest of its last build, orchestration/incremental.py)
and the others incrementally. Checks, on one lake built through the flow from a copy of the
project: a change of docs reaches none of them, and a manifest that cannot be compared all of
them; dropping a product from the seed reaches the purchases models and the fact but not the
clients' base model; after the run no purchase of that product is left in silver or gold, every
one of them is in quarantine; and the run's exports equal those of a `--full-refresh` run,
model by model.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import (
    END_DATE,
    build_selection,
    copy_dbt_project,
    lakehouse,
    published_models,
    read_latest,
    run_env,
)

pytestmark = pytest.mark.e2e

DROPPED = "Headphones"
PURCHASE_MODELS = ["base_retail__purchases", "fct_sales", "stg_retail__purchases_quarantine"]


def selection(env: dict[str, str]) -> tuple[list[str], str, list[str], str]:
    """What the next run's build would do after a change of code."""
    return tuple(build_selection(env, END_DATE, code_changed=True))


def run(env: dict[str, str], *args: str) -> dict:
    result = lakehouse("run", "--as-of", END_DATE, "--json", *args, env=env)
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def changed_lake(tmp_path_factory, state_dir, prefect_api, clean_sources):
    """Built once, then a docs change (selection only), then the seed change and a run, then a
    `--full-refresh` run; each run's published export is kept."""
    project = copy_dbt_project(tmp_path_factory.mktemp("code-change-project"))
    lake = tmp_path_factory.mktemp("code-change-lake")
    env = run_env(lake, state_dir, prefect_api, LAKEHOUSE_DBT_PROJECT_DIR=str(project))
    lakehouse("run", "--sources", str(clean_sources), "--as-of", END_DATE, env=env)
    before = read_latest(lake / "gold")

    docs = project / "models" / "docs.md"
    docs.write_text(docs.read_text() + "\n{% docs added_later %}A page of docs.{% enddocs %}\n")
    after_docs = selection(env)
    # A manifest this dbt cannot compare with (as from an older dbt): every incremental model.
    manifest = lake / "warehouse" / "built_with" / "manifest.json"
    kept = manifest.read_bytes()
    manifest.write_text('{"metadata": {"dbt_schema_version": "https://example.com/v3.json"}}')
    unreadable = selection(env)
    manifest.write_bytes(kept)

    seed = project / "seeds" / "products.csv"
    lines = seed.read_text().splitlines(keepends=True)
    assert any(line.startswith(f"{DROPPED},") for line in lines)
    seed.write_text("".join(line for line in lines if not line.startswith(f"{DROPPED},")))
    changed = run(env)
    after = read_latest(lake / "gold")
    reference = run(env, "--full-refresh")
    return {
        "lake": lake,
        "before": before,
        "after_docs": after_docs,
        "unreadable": unreadable,
        "changed": changed,
        "after": after,
        "reference": read_latest(lake / "gold"),
        "reference_summary": reference,
    }


def test_a_change_of_docs_rebuilds_nothing_in_full(changed_lake):
    args, message, models, test_scope = changed_lake["after_docs"]
    assert args == ["build"] and models == []
    assert test_scope == "all_rows"  # a changed test checks every stored row
    assert "not that of an incremental model" in message


def test_a_manifest_that_cannot_be_compared_rebuilds_every_incremental_model(changed_lake):
    _, message, models, _ = changed_lake["unreadable"]
    assert models == sorted(["base_retail__clients", *PURCHASE_MODELS])
    assert "could not be compared" in message


def test_a_seed_change_rebuilds_in_full_the_models_it_reaches(changed_lake):
    message = changed_lake["changed"]["silver"]
    assert changed_lake["changed"]["status"] == "succeeded"
    assert message.startswith(f"the project code changed: {', '.join(PURCHASE_MODELS)} rebuilt")
    assert "base_retail__clients" not in message


def test_the_stored_purchases_of_a_dropped_product_leave_silver_and_gold(changed_lake):
    lake = changed_lake["lake"]
    before = published_models(lake, changed_lake["before"])
    after = published_models(lake, changed_lake["after"])

    def with_dropped(content: dict[str, list[tuple]], model: str) -> list[tuple]:
        return [row for row in content[model] if DROPPED in row]

    sold = len(with_dropped(before, "gold/fct_sales"))
    assert sold > 0
    assert with_dropped(after, "gold/fct_sales") == []
    assert with_dropped(after, "silver/stg_retail__purchases") == []
    assert len(after["gold/fct_sales"]) == len(before["gold/fct_sales"]) - sold
    quarantine = "silver/stg_retail__purchases_quarantine"
    refused = with_dropped(after, quarantine)
    assert len(refused) == len(with_dropped(before, quarantine)) + sold
    assert all(any("unknown_product" in str(value) for value in row) for row in refused)


def test_the_run_equals_a_full_refresh_model_by_model(changed_lake):
    assert changed_lake["reference_summary"]["silver"].startswith("--full-refresh")
    lake = changed_lake["lake"]
    assert published_models(lake, changed_lake["after"]) == published_models(
        lake, changed_lake["reference"]
    )
