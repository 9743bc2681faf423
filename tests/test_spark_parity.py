"""Parity of the two dbt targets (issue 8): the same dirty bronze through DuckDB and Spark.

One lake, ingested once; `lakehouse run --target lake` then `lakehouse run --target spark` build
their own warehouses from the same bronze twins and each publishes an export run. Every exported
gold and silver model must be equal row by row: counts exact, DECIMAL within 0.01, DOUBLE within
1e-6, everything else equal (only run ids differ).
"""

from __future__ import annotations

import json
import shutil
import time
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from tests.conftest import END_DATE, generated_sources, lakehouse, read_latest, run_env

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("java") is None, reason="the Spark target needs Java 17"),
]

IGNORED_COLUMNS = {"run_id"}


@pytest.fixture(scope="module")
def dirty_sources(tmp_path_factory) -> Path:
    return generated_sources(
        tmp_path_factory, "parity-sources",
        *("--clients", "300", "--seed", "7", "--end-date", END_DATE),
        *("--dirty-rate", "0.05", "--batches", "2"),
    )  # fmt: skip


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, state_dir, prefect_api, dirty_sources):
    lake = tmp_path_factory.mktemp("parity-lake")
    env = run_env(lake, state_dir, prefect_api)
    lakehouse("ingest", str(dirty_sources), env=env)
    runs = {}
    for target in ("lake", "spark"):
        started = time.perf_counter()
        result = lakehouse(
            "run", "--as-of", END_DATE, "--target", target, "--json", env=env, timeout=2400
        )
        # The README quotes these times (`pytest -s tests/test_spark_parity.py` prints them).
        stages = json.loads(result.stdout)["durations"]
        print(
            f"\nlakehouse run --target {target}: {time.perf_counter() - started:.1f} s wall; "
            + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in stages.items())
        )
        runs[target] = read_latest(lake / "gold")
    return lake, runs, env


def _rows(conn, path: Path, columns: list[str]) -> list[tuple]:
    quoted = ", ".join(f'"{c}"' for c in columns)
    return conn.execute(f"select {quoted} from read_parquet('{path}') order by all").fetchall()


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, Decimal) and isinstance(b, Decimal):
        return abs(a - b) <= Decimal("0.01")
    if isinstance(a, float) or isinstance(b, float):
        return abs(float(a) - float(b)) <= 1e-6
    return a == b


def test_both_targets_export_the_same_models(two_runs):
    _, runs, _ = two_runs
    assert runs["lake"]["run_id"] != runs["spark"]["run_id"]
    assert runs["lake"]["models"] == runs["spark"]["models"]
    assert runs["lake"]["silver_models"] == runs["spark"]["silver_models"]
    assert runs["lake"]["row_counts"] == runs["spark"]["row_counts"]


def test_every_exported_model_matches_row_by_row(two_runs):
    lake, runs, _ = two_runs
    conn = duckdb.connect()
    problems = []
    for layer, key in (("gold", "models"), ("silver", "silver_models")):
        for model in runs["lake"][key]:
            left = lake / layer / runs["lake"]["run_folder"] / f"{model}.parquet"
            right = lake / layer / runs["spark"]["run_folder"] / f"{model}.parquet"
            types_left, types_right = (
                {
                    row[0]: row[1]
                    for row in conn.execute(f"describe from read_parquet('{path}')").fetchall()
                }
                for path in (left, right)
            )
            if types_left != types_right:
                problems.append(f"{layer}/{model}: column types {types_left} != {types_right}")
                continue
            columns = [c for c in types_left if c not in IGNORED_COLUMNS]
            a, b = _rows(conn, left, columns), _rows(conn, right, columns)
            if len(a) != len(b):
                problems.append(f"{layer}/{model}: {len(a)} rows on DuckDB, {len(b)} on Spark")
                continue
            for row_a, row_b in zip(a, b, strict=True):
                diff = [
                    f"{c}: {x!r} != {y!r}"
                    for c, x, y in zip(columns, row_a, row_b, strict=True)
                    if not _same(x, y)
                ]
                if diff:
                    problems.append(f"{layer}/{model} row {row_a[:3]}: {'; '.join(diff[:3])}")
                    break
    assert not problems, "\n".join(problems)


def test_export_and_where_take_the_spark_target(two_runs):
    """`lakehouse export --target spark` republishes the Spark warehouse the run built."""
    lake, runs, env = two_runs
    where = lakehouse("where", "--target", "spark", env={**env, "COLUMNS": "250"}).stdout
    assert str(lake / "warehouse" / "spark") in where
    result = lakehouse("export", "--target", "spark", "--as-of", END_DATE, "--json", env=env)
    published = json.loads(result.stdout)
    assert published["run_id"] != runs["spark"]["run_id"]
    assert {**published["gold"], **published["silver"]} == runs["spark"]["row_counts"]
    assert read_latest(lake / "gold")["run_id"] == published["run_id"]
