"""One settings object for the whole project, read from the environment and an optional `.env`.

Every variable is documented in `.env.example`. dbt reads the same values through the
`orchestration.dbt_plugin` plugin, so the CLI, the flow, dbt and the dashboard always agree.
"""

from __future__ import annotations

import json
import re
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("sources", "bronze", "silver", "gold")
SPILL_FOLDER = "duckdb_tmp"  # DuckDB's temp_directory, under the state folder
MEMORY_SIZE = re.compile(r"\s*[0-9]+(\.[0-9]+)?\s*([kmgt]i?b|[kmgt])\s*", re.IGNORECASE)
ENDPOINT_URL = re.compile(r"https?://(\[[0-9a-fA-F:]+\]|[^/\s:\[\]]+)(:[0-9]{1,5})?/?")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=PROJECT_ROOT / ".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    # --- where the lake lives -------------------------------------------------------------
    lake_dir: Path | None = Field(
        default=None,
        description="Absolute folder: every layer becomes <LAKE_DIR>/<layer>, no object store.",
    )
    state_dir: Path = Field(
        default=PROJECT_ROOT / ".lakehouse",
        alias="LAKEHOUSE_STATE_DIR",
        description="Engine state: object-store data, generated credentials, warehouse.",
    )

    # --- S3 object store (embedded SeaweedFS by default, MinIO in compose) -----------------
    s3_endpoint: str | None = Field(
        default=None, description="http://host:port of a running S3 store; unset = embedded."
    )
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    s3_region: str = "us-east-1"
    bucket_sources: str = Field(default="sources", alias="S3_BUCKET_SOURCES")
    bucket_bronze: str = Field(default="bronze", alias="S3_BUCKET_BRONZE")
    bucket_silver: str = Field(default="silver", alias="S3_BUCKET_SILVER")
    bucket_gold: str = Field(default="gold", alias="S3_BUCKET_GOLD")
    objectstore_port: int = Field(default=8333, alias="OBJECTSTORE_PORT", ge=1, le=65535)
    s3_connect_attempts: int = Field(
        default=5,
        alias="S3_CONNECT_ATTEMPTS",
        ge=1,
        le=10,
        description="Tries to reach the store before a run fails (backoff 1, 2, 4… s).",
    )

    # --- engine ---------------------------------------------------------------------------
    duckdb_memory_limit: str = Field(default="4GB", alias="DUCKDB_MEMORY_LIMIT")
    duckdb_threads: int = Field(default=2, alias="DUCKDB_THREADS", ge=1)
    ingest_workers: int = Field(
        default=2,
        alias="INGEST_WORKERS",
        ge=1,
        description="Threads that split a large CSV into its bronze twin (1: no pool).",
    )

    # --- pipeline -------------------------------------------------------------------------
    export_keep_runs: int = Field(default=5, alias="EXPORT_KEEP_RUNS", ge=1)
    quality_threshold: float = Field(
        default=90.0,
        alias="QUALITY_THRESHOLD",
        ge=0,
        le=100,
        description="Overall quality score under which a run fails before export.",
    )
    schedule_cron: str = Field(
        default="0 2 * * *",
        alias="SCHEDULE_CRON",
        description="Cron schedule (UTC) of the deployment `lakehouse serve` serves.",
    )
    run_lock_wait_seconds: float = Field(
        default=0,
        alias="RUN_LOCK_WAIT_SECONDS",
        ge=0,
        description="How long a run waits for another one on the same warehouse (0: refuse).",
    )
    dbt_project_dir: Path = Field(default=PROJECT_ROOT, alias="LAKEHOUSE_DBT_PROJECT_DIR")
    dbt_target: Literal["lake", "spark", "spark_cluster"] = Field(
        default="lake",
        alias="DBT_TARGET",
        description="dbt output: `lake` (DuckDB), `spark` (local PySpark session, LAKE_DIR only) "
        "or `spark_cluster` (thrift/http, see profiles.yml).",
    )
    dbt_unit_tests: Literal["changed", "always"] = Field(
        default="changed",
        alias="DBT_UNIT_TESTS",
        description=(
            "dbt unit tests in pipeline builds: when the project code changed since they last "
            "passed (they check logic on fixed rows, not data), or on every build."
        ),
    )
    data_test_scope: Literal["built_rows", "all_rows"] = Field(
        default="built_rows",
        alias="DATA_TEST_SCOPE",
        description=(
            "Rows the row-level data tests of the incremental models check in an incremental "
            "build: those the build writes (when the last build passed every test and the code "
            "is unchanged), or every row."
        ),
    )
    dbt_task_granularity: Literal["build", "node"] = Field(
        default="build",
        alias="DBT_TASK_GRANULARITY",
        description="Prefect tasks for dbt: one for the whole build (fast), or one per node.",
    )

    # --- dashboard ------------------------------------------------------------------------
    dashboard_host: str = Field(default="127.0.0.1", alias="DASHBOARD_HOST")
    dashboard_port: int = Field(default=8501, alias="DASHBOARD_PORT", ge=1, le=65535)

    @field_validator("lake_dir", "state_dir", "dbt_project_dir", mode="after")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        if value is None or str(value) == "":
            return None
        return Path(value).expanduser().resolve()

    @field_validator("lake_dir", "state_dir", mode="after")
    @classmethod
    def _not_a_file(cls, value: Path | None) -> Path | None:
        if value is not None and value.exists() and not value.is_dir():
            raise ValueError(f"{value} is a file; give a folder (it is created when missing)")
        return value

    @field_validator("lake_dir", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value in ("", None) else value

    @field_validator("duckdb_memory_limit", mode="after")
    @classmethod
    def _memory_size(cls, value: str) -> str:
        """A size DuckDB's `memory_limit` takes: a positive number and a unit (4GB, 512MiB)."""
        if not MEMORY_SIZE.fullmatch(value):
            raise ValueError("expected a size such as 4GB, 3.5GB or 512MiB")
        return value

    @field_validator("s3_endpoint", mode="after")
    @classmethod
    def _endpoint_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not ENDPOINT_URL.fullmatch(value):
            raise ValueError("expected http://host:port or https://host:port, with no path")
        return value.rstrip("/")

    # --- derived facts (one place each) ---------------------------------------------------
    @property
    def uses_object_store(self) -> bool:
        return self.lake_dir is None

    @property
    def warehouse_path(self) -> Path:
        """The DuckDB file: under LAKE_DIR when set, so a new lake never sees old tables."""
        root = self.lake_dir if self.lake_dir is not None else self.state_dir
        return root / "warehouse" / "lakehouse.duckdb"

    @property
    def engine(self) -> Literal["duckdb", "spark"]:
        return "spark" if self.dbt_target.startswith("spark") else "duckdb"

    @property
    def spark_warehouse_path(self) -> Path:
        """The local Spark session's tables and metastore, beside the DuckDB file."""
        root = self.lake_dir if self.lake_dir is not None else self.state_dir
        return root / "warehouse" / "spark"

    @property
    def objectstore_dir(self) -> Path:
        return self.state_dir / "objectstore"

    @property
    def endpoint(self) -> str:
        """The S3 endpoint URL: the configured one, or the embedded store's."""
        return self.s3_endpoint or f"http://127.0.0.1:{self.objectstore_port}"

    def bucket(self, layer: str) -> str:
        if layer not in LAYERS:
            raise ValueError(f"unknown layer {layer!r}; expected one of {', '.join(LAYERS)}")
        return getattr(self, f"bucket_{layer}")

    def credentials(self) -> tuple[str, str]:
        """S3 credentials: from settings, else generated once into the state folder."""
        if self.s3_access_key_id and self.s3_secret_access_key:
            return self.s3_access_key_id, self.s3_secret_access_key
        path = self.state_dir / "credentials.json"
        if path.exists():
            stored = json.loads(path.read_text())
            return stored["access_key_id"], stored["secret_access_key"]
        path.parent.mkdir(parents=True, exist_ok=True)
        generated = {
            "access_key_id": "lakehouse" + secrets.token_hex(6),
            "secret_access_key": secrets.token_urlsafe(30),
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(generated))
        tmp.chmod(0o600)
        tmp.replace(path)
        return generated["access_key_id"], generated["secret_access_key"]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reload_settings() -> Settings:
    """Forget the cached settings (tests and the CLI change the environment)."""
    get_settings.cache_clear()
    return get_settings()
