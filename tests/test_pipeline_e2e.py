"""End-to-end runs of `lakehouse run` (Prefect flow, dbt, export) on both storage backends."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from orchestration.incremental import BUILT_ROWS_TESTED
from tests.conftest import (
    END_DATE,
    copy_dbt_project,
    lakehouse,
    plain_python_truth,
    published_models,
    read_latest,
)

pytestmark = pytest.mark.e2e

AUDIT_COLUMNS = frozenset({"_source_file", "_ingested_at", "_row_number", "run_id"})


def totals(conn: duckdb.DuckDBPyConnection, run_uri: str) -> tuple[Decimal, int, int, int]:
    revenue, orders, purchasers = conn.execute(
        f"select sum(total), count(*), count(distinct client_id) "
        f"from read_parquet('{run_uri}/fct_sales.parquet')"
    ).fetchone()
    clients = conn.execute(
        f"select count(*) from read_parquet('{run_uri}/dim_clients.parquet')"
    ).fetchone()[0]
    return Decimal(revenue), orders, purchasers, clients


def test_lake_dir_run_matches_plain_python(lake_dir_run, clean_sources):
    lake, _, result = lake_dir_run
    # The summary says why a file of the folder did not land (the generator's manifest).
    assert "skipped (not a .csv file): generation_manifest.json" in result.stdout
    truth = plain_python_truth(clean_sources)
    latest = read_latest(lake / "gold")
    assert latest["as_of_date"] == END_DATE
    assert (lake / "warehouse" / "lakehouse.duckdb").exists()
    revenue, orders, purchasers, clients = totals(duckdb.connect(), latest["run_uri"])
    assert revenue == truth.revenue
    assert orders == truth.orders
    assert purchasers == truth.purchasing_clients
    assert clients == truth.clients
    for layer, models in (("gold", latest["models"]), ("silver", latest["silver_models"])):
        for model in models:
            assert (lake / layer / latest["run_folder"] / f"{model}.parquet").exists()


def test_second_run_ingests_nothing_and_exports_the_same(lake_dir_run, clean_sources):
    lake, env, _ = lake_dir_run
    first = read_latest(lake / "gold")
    result = lakehouse(
        "run", "--sources", str(clean_sources), "--as-of", END_DATE, "--json", env=env
    )
    summary = json.loads(result.stdout)
    assert summary["ingest"]["landed"] == []
    # The first run's build passed every test: this one's test the rows it writes.
    assert summary["silver"].endswith(BUILT_ROWS_TESTED), summary["silver"]
    # The first run ran the unit tests and recorded the code they passed on; this one, on the
    # same code, leaves them out (orchestration/unit_tests.py).
    assert (lake / "warehouse" / "unit_tests_passed.json").exists()
    assert summary["unit_tests"].startswith("skipped"), summary["unit_tests"]
    assert "unit_test" not in summary["dbt_timing"] and summary["dbt_timing"]["test"] > 0
    # The command parsed the project while Prefect's API booted; the build did not parse again.
    assert summary["dbt_parsed_ahead"] is True
    already = [s for s in summary["ingest"]["skipped"] if "already in bronze" in s["reason"]]
    assert len(already) == 2
    second = read_latest(lake / "gold")
    assert second["run_id"] != first["run_id"]
    bronze_csvs = sorted(p.name for p in (lake / "bronze").rglob("*.csv"))
    assert len(bronze_csvs) == 2  # each source file landed exactly once
    exported = [published_models(lake, latest, AUDIT_COLUMNS) for latest in (first, second)]
    assert exported[0] == exported[1]
    # Nothing new: the build selects rpt_gold_summary alone (it names the run), so the export
    # copies every other file from the first run (orchestration/export.py).
    models = {*summary["export"]["gold"], *summary["export"]["silver"]}
    assert sorted(summary["export"]["reused"]) == sorted(models - {"rpt_gold_summary"})


def test_failing_model_fails_the_run_and_keeps_latest(lake_dir_run, tmp_path, clean_sources):
    lake, env, _ = lake_dir_run
    before = (lake / "gold" / "latest.json").read_bytes()
    project = copy_dbt_project(tmp_path / "project")
    (project / "models" / "marts" / "sales" / "broken_on_purpose.sql").write_text(
        "select no_such_column from {{ ref('fct_sales') }}\n"
    )
    result = lakehouse(
        "run",
        "--as-of",
        END_DATE,
        env={**env, "LAKEHOUSE_DBT_PROJECT_DIR": str(project)},
        check=False,
    )
    assert result.returncode != 0, result.stdout
    assert "nothing was published" in result.stderr
    assert (lake / "gold" / "latest.json").read_bytes() == before


@pytest.fixture(scope="module")
def object_store_run(seaweed, state_dir, clean_sources):
    """The default path end to end: embedded S3 store and Prefect's ephemeral local API."""
    env = {**seaweed, "PREFECT_HOME": str(state_dir / "prefect")}
    result = lakehouse("run", "--sources", str(clean_sources), "--as-of", END_DATE, env=env)
    return env, result


def test_object_store_run_matches_plain_python(object_store_run, clean_sources):
    env, _ = object_store_run
    from orchestration.settings import Settings
    from orchestration.storage import Lake, duckdb_connection

    settings = Settings(
        _env_file=None,
        lake_dir=None,
        LAKEHOUSE_STATE_DIR=env["LAKEHOUSE_STATE_DIR"],
        OBJECTSTORE_PORT=int(env["OBJECTSTORE_PORT"]),
    )
    lake = Lake(settings)
    latest = json.loads(lake.read_bytes("gold", "latest.json"))
    assert latest["run_uri"].startswith("s3://gold/runs/")
    assert any(k.endswith(".csv") for k in lake.list("bronze", "clients/"))
    assert sorted(lake.list("sources")) == sorted(p.name for p in clean_sources.glob("*.csv"))
    truth = plain_python_truth(clean_sources)
    revenue, orders, purchasers, clients = totals(
        duckdb_connection(settings=settings), latest["run_uri"]
    )
    assert (revenue, orders, purchasers, clients) == (
        truth.revenue,
        truth.orders,
        truth.purchasing_clients,
        truth.clients,
    )


def test_object_store_run_leaks_no_secret(object_store_run):
    """The store's secret key appears nowhere the run writes: output, logs, dbt docs, exports."""
    env, result = object_store_run
    from orchestration.settings import Settings
    from orchestration.storage import Lake

    secret = json.loads((Path(env["LAKEHOUSE_STATE_DIR"]) / "credentials.json").read_text())[
        "secret_access_key"
    ]
    assert secret not in result.stdout + result.stderr
    from tests.conftest import ROOT

    target, logs = ROOT / env["DBT_TARGET_PATH"], ROOT / env["DBT_LOG_PATH"]  # the session's
    written = [*target.glob("*.json"), *target.glob("*.html"), *logs.glob("*.log")]
    assert any(path.name == "static_index.html" for path in written)
    assert [path for path in written if secret in path.read_text(errors="replace")] == []
    settings = Settings(
        _env_file=None,
        lake_dir=None,
        LAKEHOUSE_STATE_DIR=env["LAKEHOUSE_STATE_DIR"],
        OBJECTSTORE_PORT=int(env["OBJECTSTORE_PORT"]),
    )
    lake = Lake(settings)
    exported = [(layer, key) for layer in ("gold", "silver") for key in lake.list(layer)]
    assert len(exported) > 20
    assert [key for layer, key in exported if secret.encode() in lake.read_bytes(layer, key)] == []
