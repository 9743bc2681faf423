"""Settings from the environment or `.env`: a value the project cannot use is refused when the
settings are read, and the command says which setting and what it expects, in one line."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from orchestration.settings import Settings
from tests.conftest import clean_env, lakehouse


def _settings(**values: str) -> Settings:
    return Settings(_env_file=None, **values)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DUCKDB_MEMORY_LIMIT", "lots"),
        ("DUCKDB_MEMORY_LIMIT", "3XB"),
        ("DUCKDB_MEMORY_LIMIT", "4"),  # no unit: DuckDB refuses it too
        ("DUCKDB_MEMORY_LIMIT", "80%"),
        ("DUCKDB_THREADS", "0"),
        ("OBJECTSTORE_PORT", "70000"),
        ("DASHBOARD_PORT", "0"),
        ("S3_ENDPOINT", "127.0.0.1:9000"),  # no scheme
        ("S3_ENDPOINT", "http://minio:9000/bucket"),  # a path
        ("S3_ENDPOINT", "ftp://minio:21"),
        ("QUALITY_THRESHOLD", "150"),
        ("DBT_TARGET", "postgres"),
    ],
)
def test_a_value_the_project_cannot_use_is_refused(name, value):
    with pytest.raises(ValidationError) as raised:
        _settings(**{name: value})
    assert len(raised.value.errors()) == 1


@pytest.mark.parametrize(
    ("name", "value", "kept"),
    [
        ("DUCKDB_MEMORY_LIMIT", "4GB", "4GB"),
        ("DUCKDB_MEMORY_LIMIT", "3.5 GB", "3.5 GB"),
        ("DUCKDB_MEMORY_LIMIT", "512MiB", "512MiB"),
        ("DUCKDB_MEMORY_LIMIT", "8g", "8g"),
        ("S3_ENDPOINT", "http://minio:9000", "http://minio:9000"),
        ("S3_ENDPOINT", "https://s3.example.com/", "https://s3.example.com"),
        ("S3_ENDPOINT", "http://[::1]:9000", "http://[::1]:9000"),
    ],
)
def test_the_usual_spellings_are_accepted(name, value, kept):
    settings = _settings(**{name: value})
    field = {"DUCKDB_MEMORY_LIMIT": "duckdb_memory_limit", "S3_ENDPOINT": "s3_endpoint"}[name]
    assert getattr(settings, field) == kept


def test_a_lake_dir_that_is_a_file_is_refused(tmp_path):
    file = tmp_path / "lake"
    file.write_text("")
    with pytest.raises(ValidationError, match="is a file"):
        _settings(LAKE_DIR=str(file))
    assert _settings(LAKE_DIR=str(tmp_path / "new")).lake_dir == tmp_path / "new"


def test_the_command_names_each_bad_setting_in_one_line(tmp_path):
    env = clean_env(
        LAKEHOUSE_STATE_DIR=str(tmp_path / "state"),
        LAKE_DIR=str(tmp_path / "lake"),
        QUALITY_THRESHOLD="150",
        DUCKDB_MEMORY_LIMIT="lots",
        COLUMNS="250",
    )
    result = lakehouse("where", env=env, check=False)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2, result.stderr
    assert any(
        line.startswith("error: QUALITY_THRESHOLD='150': ") and "100" in line for line in errors
    )
    memory = "error: DUCKDB_MEMORY_LIMIT='lots': expected a size"
    assert any(line.startswith(memory) for line in errors)
    assert all(line.endswith("(see .env.example).") for line in errors)


def test_the_store_status_under_lake_dir_says_no_store_is_used(tmp_path):
    """Under LAKE_DIR the lake is a folder: the status neither reports a store it does not use
    as running nor fails for want of one."""
    env = clean_env(
        LAKEHOUSE_STATE_DIR=str(tmp_path / "state"),
        LAKE_DIR=str(tmp_path / "lake"),
        S3_ENDPOINT="http://127.0.0.1:9",  # ignored under LAKE_DIR
        COLUMNS="250",
    )
    result = lakehouse("objectstore", "status", env=env, check=False)
    assert result.returncode == 0
    assert f"LAKE_DIR is set: the lake is the folder {tmp_path / 'lake'}" in result.stdout
    assert "running" not in result.stdout


def test_serve_with_a_prefect_api_url_that_does_not_answer_says_so(tmp_path):
    from tests.conftest import free_port

    url = f"http://127.0.0.1:{free_port()}/api"  # nothing listens there
    env = clean_env(LAKE_DIR=str(tmp_path / "lake"), PREFECT_API_URL=url, COLUMNS="300")
    result = lakehouse("serve", env=env, check=False, timeout=60)
    message = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 1, message
    assert f"PREFECT_API_URL={url} does not answer" in message
    assert "Traceback" not in message
