"""`--target` on the commands that open the warehouse (issue 8): accepted where it applies, refused
clearly where it does not. Fast: nothing here starts Spark or builds anything (the Spark export
itself is covered by tests/test_spark_parity.py).
"""

from __future__ import annotations

import json

from orchestration.bench_pipeline import bench_env
from tests.conftest import clean_env, lakehouse


def _env(tmp_path, **extra: str) -> dict[str, str]:
    return clean_env(
        LAKEHOUSE_STATE_DIR=str(tmp_path / "state"), COLUMNS="250", NO_COLOR="1", **extra
    )


def test_export_refuses_a_cluster_target(tmp_path):
    result = lakehouse(
        "export",
        "--target",
        "spark_cluster",
        env=_env(tmp_path, LAKE_DIR=str(tmp_path)),
        check=False,
    )
    assert result.returncode == 1
    assert "spark_cluster" in result.stderr and "local warehouse" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_and_serve_refuse_a_cluster_target_before_starting_anything(tmp_path):
    """Their export would refuse it after the ingestion and the build: they refuse it first."""
    sources = tmp_path / "sources"
    sources.mkdir()
    (sources / "clients_001.csv").write_text("id_client,name,email,country,subscription_date\n")
    lake = tmp_path / "lake"
    for args, env in (
        (("run", "--sources", str(sources), "--target", "spark_cluster"), {}),
        (("run", "--sources", str(sources)), {"DBT_TARGET": "spark_cluster"}),
        (("serve", "--target", "spark_cluster"), {"PREFECT_API_URL": "http://127.0.0.1:9/api"}),
    ):
        result = lakehouse(*args, env=_env(tmp_path, LAKE_DIR=str(lake), **env), check=False)
        assert result.returncode == 1, (args, result.stdout)
        assert f"lakehouse {args[0]}` publishes from a local warehouse" in result.stderr
        assert "dbt build --target spark_cluster" in result.stderr
        assert "Traceback" not in result.stderr
        assert not lake.exists(), f"{args[0]} started before refusing"  # nothing ingested


def test_a_refused_run_still_prints_json_with_json(tmp_path):
    """`run --json` prints a JSON summary even when the run never starts (a missing folder, the
    cluster target, a bad setting): status `refused` and the error that stderr shows too."""
    lake = tmp_path / "lake"
    missing = tmp_path / "no-such-folder"
    for args, env, says in (
        (("--sources", str(missing)), {}, f"--sources {missing}: no such file or folder"),
        (("--target", "spark_cluster"), {}, "publishes from a local warehouse"),
        ((), {"QUALITY_THRESHOLD": "high"}, "QUALITY_THRESHOLD='high': Input should be a valid"),
    ):
        env = _env(tmp_path, LAKE_DIR=str(lake), **env)
        result = lakehouse("run", *args, "--json", env=env, check=False)
        assert result.returncode == 1, (args, result.stderr)
        assert json.loads(result.stdout) == {
            "status": "refused",
            "error": " ".join(result.stderr.split()).removeprefix("error: "),
        }
        assert says in result.stdout, result.stdout
        assert not lake.exists()


def test_export_on_spark_without_a_spark_warehouse_says_so(tmp_path):
    result = lakehouse(
        "export", "--target", "spark", env=_env(tmp_path, LAKE_DIR=str(tmp_path)), check=False
    )
    assert result.returncode == 1
    assert "no spark warehouse" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unknown_target_is_a_usage_error(tmp_path):
    env = _env(tmp_path, LAKE_DIR=str(tmp_path))
    for command in (("export",), ("where",), ("docs", "--no-serve"), ("bench", "pipeline")):
        result = lakehouse(*command, "--target", "oracle", env=env, check=False)
        assert result.returncode == 2, command
        assert "--target" in result.stderr, command


def test_bench_pipeline_refuses_the_cluster_target(tmp_path):
    env = _env(tmp_path, LAKE_DIR=str(tmp_path))
    result = lakehouse("bench", "pipeline", "--target", "spark_cluster", env=env, check=False)
    assert result.returncode == 2
    assert "local lake" in result.stderr


def test_bench_pipeline_passes_the_target_to_its_runs(tmp_path):
    assert bench_env(tmp_path, None, "spark")["DBT_TARGET"] == "spark"
    assert bench_env(tmp_path, "3GB", "lake")["DBT_TARGET"] == "lake"


def test_where_shows_the_warehouse_of_the_target(tmp_path):
    env = _env(tmp_path, LAKE_DIR=str(tmp_path))
    spark = lakehouse("where", "--target", "spark", env=env).stdout
    assert str(tmp_path / "warehouse" / "spark") in spark
    assert "lakehouse.duckdb" not in spark
    lake = lakehouse("where", env=env).stdout
    assert str(tmp_path / "warehouse" / "lakehouse.duckdb") in lake


def test_docs_on_spark_without_a_lake_refuses(tmp_path):
    result = lakehouse("docs", "--target", "spark", "--no-serve", env=_env(tmp_path), check=False)
    assert result.returncode == 1
    assert "set LAKE_DIR" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_and_export_refuse_an_as_of_that_is_no_date(tmp_path):
    lake = tmp_path / "lake"
    for command in ("run", "export"):
        result = lakehouse(
            command, "--as-of", "2025-13-01", env=_env(tmp_path, LAKE_DIR=str(lake)), check=False
        )
        assert result.returncode == 2, (command, result.stdout)
        assert "Invalid value for '--as-of': must be YYYY-MM-DD, got '2025-13-01'" in result.stderr
        assert not lake.exists(), f"{command} started before refusing"
