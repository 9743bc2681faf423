"""Silver proven against the generator: a dirty, multi-batch data set through `lakehouse run`.

The generator writes, next to the files, how many rows of each defect it injected and what SPEC §3
must make of them (computed from what it wrote, never from the SQL; tests/test_generator.py checks
that sidecar against an independent pure-Python implementation of the rules). Here the published
quality report and the silver/quarantine exports must agree with it to the row.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from tests.conftest import lakehouse, run_env

pytestmark = pytest.mark.e2e

END_DATE = "2025-06-30"
ENTITIES = ("clients", "purchases")


@pytest.fixture(scope="session")
def dirty_run(tmp_path_factory, state_dir, prefect_api):
    src = tmp_path_factory.mktemp("dirty-sources")
    lake = tmp_path_factory.mktemp("dirty-lake")
    env = run_env(lake, state_dir, prefect_api)
    lakehouse(
        "generate", "--out", str(src), "--clients", "10000", "--seed", "2024",
        "--end-date", END_DATE, "--dirty-rate", "0.05", "--batches", "3", env=env,
    )  # fmt: skip
    result = lakehouse(
        "run", "--sources", str(src), "--as-of", END_DATE, "--json", env=env, timeout=900
    )
    summary = json.loads(result.stdout)
    sidecar = json.loads((src / "generation_manifest.json").read_text())
    latest = json.loads((lake / "gold" / "latest.json").read_text())
    report = json.loads((lake / "gold" / latest["run_folder"] / "quality_report.json").read_text())
    return lake, latest, summary, sidecar, report


def silver_file(lake: Path, latest: dict, model: str) -> str:
    return str(lake / "silver" / latest["run_folder"] / f"{model}.parquet")


def test_the_data_set_is_big_and_dirty_enough(dirty_run):
    _, _, _, sidecar, _ = dirty_run
    expected = sidecar["expected"]
    assert expected["purchases"]["bronze_rows"] >= 50_000
    assert sidecar["batches"] >= 3
    assert sidecar["injected"]["clients"]["resent_moved"] > 0
    for entity in ENTITIES:
        assert all(count > 0 for count in expected[entity]["quarantine"].values())


@pytest.mark.parametrize("entity", ENTITIES)
def test_quality_report_matches_the_generator(dirty_run, entity):
    _, _, _, sidecar, report = dirty_run
    expected = sidecar["expected"][entity]
    got = report["entities"][entity]
    assert got["bronze_rows"] == expected["bronze_rows"]
    assert got["silver_rows"] == expected["silver_rows"]
    assert got["quarantine"] == expected["quarantine"]
    assert got["fixes"] == expected["flags"]
    assert got["quality_score"] == round(100 * expected["silver_rows"] / expected["bronze_rows"], 2)


def test_overall_score_pools_rows(dirty_run):
    _, _, _, sidecar, report = dirty_run
    expected = sidecar["expected"]
    silver = sum(expected[e]["silver_rows"] for e in ENTITIES)
    bronze = sum(expected[e]["bronze_rows"] for e in ENTITIES)
    assert report["overall"]["bronze_rows"] == bronze
    assert report["overall"]["silver_rows"] == silver
    assert report["overall"]["quality_score"] == round(100 * silver / bronze, 2)


@pytest.mark.parametrize("entity", ENTITIES)
def test_every_bronze_line_is_in_silver_or_quarantine_per_file(dirty_run, entity):
    lake, latest, summary, sidecar, report = dirty_run
    conn = duckdb.connect()
    silver = silver_file(lake, latest, f"stg_retail__{entity}")
    quarantine = silver_file(lake, latest, f"stg_retail__{entity}_quarantine")
    kept = dict(
        conn.execute(
            f"select _source_file, count(*) from read_parquet('{silver}') group by 1"
        ).fetchall()
    )
    refused: dict[str, dict[str, int]] = {}
    for source_file, reason, count in conn.execute(
        f"select _source_file, reject_reason, count(*) from read_parquet('{quarantine}') "
        "group by 1, 2"
    ).fetchall():
        refused.setdefault(source_file, {})[reason] = count
    landed = {item["source"]: item["bronze_key"] for item in summary["ingest"]["landed"]}
    files = {name: f for name, f in sidecar["files"].items() if f["entity"] == entity}
    assert set(files) <= set(landed)
    for name, expected in files.items():
        key = landed[name]
        assert report["files"][key]["bronze_rows"] == expected["data_lines"], name
        assert kept.get(key, 0) == expected["silver_rows"], name
        nonzero = {reason: n for reason, n in expected["quarantine"].items() if n}
        assert refused.get(key, {}) == nonzero, name
        assert kept.get(key, 0) + sum(refused.get(key, {}).values()) == expected["data_lines"]


def test_silver_keys_are_unique_and_quarantine_keeps_reasons(dirty_run):
    lake, latest, _, _, _ = dirty_run
    conn = duckdb.connect()
    for model, key in (
        ("stg_retail__clients", "client_id"),
        ("stg_retail__purchases", "purchase_id"),
    ):
        path = silver_file(lake, latest, model)
        total, distinct = conn.execute(
            f"select count(*), count(distinct {key}) from read_parquet('{path}')"
        ).fetchone()
        assert total == distinct > 0
    path = silver_file(lake, latest, "stg_retail__purchases_quarantine")
    bad = conn.execute(
        f"select count(*) from read_parquet('{path}') "
        "where reject_reason is null or not starts_with(reject_reasons, reject_reason)"
    ).fetchone()[0]
    assert bad == 0
