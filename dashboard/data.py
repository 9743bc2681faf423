"""Data access for the dashboard: the export manifest and small aggregated queries.

The dashboard never opens the dbt warehouse file (DuckDB allows one writer *or* many readers).
It resolves `gold/latest.json`, then queries that run's Parquet files through an in-memory DuckDB
connection from `orchestration.storage`, so it reads local folders and S3 alike.

Caching: `latest.json` is read on every script run (one small object), so a new publish shows
at the next interaction without a restart. Query results are cached with `st.cache_data` keyed
on the run id and the SQL (which names the run folder), so a new run never reuses an old result.
Helpers aggregate in SQL and return small frames or values; no table is loaded whole.

Adding a page: write a helper here that calls `_frame` / `_row` with SQL over
`manifest.table("<model>")`, and keep the page file to layout and charts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal

import duckdb
import pandas as pd
import streamlit as st

from dashboard.formatting import round_half_away
from orchestration.settings import Settings, get_settings
from orchestration.storage import Lake, StorageError, duckdb_connection

MANIFEST_KEY = "latest.json"


# --- errors a page can show instead of a traceback ------------------------------------------
class DashboardDataError(RuntimeError):
    """The export cannot be shown; the message says why and what to do."""


class LakeUnreachableError(DashboardDataError):
    """The object store cannot be used (down, wrong endpoint, refused credentials)."""

    def __init__(self, endpoint: str, detail: str):
        super().__init__(f"The object store at {endpoint} cannot be used: {detail}")
        self.endpoint = endpoint
        self.detail = detail


class ManifestError(DashboardDataError):
    """`gold/latest.json` exists but cannot be understood."""


class ModelMissingError(DashboardDataError):
    """The run being displayed did not export a model that a page needs."""


class ExportReadError(DashboardDataError):
    """A Parquet file of the run could not be read."""


# --- the manifest ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Manifest:
    """The published run (`gold/latest.json`) and where its model files are."""

    run_id: str
    as_of_date: str
    published_at: str
    run_folder: str
    models: tuple[str, ...] | None  # None: the manifest does not list them
    location: str  # gold layer root, for messages
    model_uris: dict[str, str]

    def has(self, model: str) -> bool:
        return self.models is None or model in self.models

    def uri(self, model: str) -> str:
        if not self.has(model):
            raise ModelMissingError(
                f"Run {self.run_id} has no `{model}` export; re-run the pipeline "
                "(`lakehouse run`) with a version that builds it."
            )
        return self.model_uris.get(model) or f"{self.location}/{self.run_folder}/{model}.parquet"

    def table(self, model: str) -> str:
        """SQL for a model's Parquet file, to use in a `from` clause."""
        return "read_parquet(" + _sql_string(self.uri(model)) + ")"


def _store_key(settings: Settings) -> tuple[str | None, str, str]:
    """What identifies one store configuration: the key of the cached Lake and connection."""
    lake_dir = str(settings.lake_dir) if settings.lake_dir else None
    return (lake_dir, settings.endpoint, settings.s3_region)


@st.cache_resource(show_spinner=False)
def _cached_lake(lake_dir: str | None, endpoint: str, region: str) -> Lake:
    """One Lake (so one boto3 client, which is thread-safe) per store configuration."""
    return Lake(get_settings())


def _lake(settings: Settings | None = None) -> Lake:
    return Lake(settings) if settings is not None else _cached_lake(*_store_key(get_settings()))


def lake_location(settings: Settings | None = None) -> str:
    """Where the dashboard looks, in words: the local folder or the store endpoint and bucket."""
    lake = _lake(settings)
    if lake.is_local:
        return lake.uri("gold")
    return f"{lake.uri('gold')} at {lake.settings.endpoint}"


def load_manifest(settings: Settings | None = None) -> Manifest | None:
    """The published run, or None when nothing has been exported yet.

    Raises LakeUnreachableError when the object store cannot be used, ManifestError when
    `latest.json` is not the document the export step writes.
    """
    lake = _lake(settings)
    try:
        if not lake.exists("gold", MANIFEST_KEY):
            return None
        raw = lake.read_bytes("gold", MANIFEST_KEY)
    except StorageError as exc:
        if _is_missing_bucket(exc):
            return None
        raise LakeUnreachableError(lake.settings.endpoint, str(exc)) from exc
    except FileNotFoundError:  # removed between the check and the read
        return None
    return _parse_manifest(raw, lake)


def _is_missing_bucket(exc: StorageError) -> bool:
    response = getattr(exc.__cause__, "response", None) or {}
    return response.get("Error", {}).get("Code") in ("NoSuchBucket", "NoSuchKey")


def _parse_manifest(raw: bytes, lake: Lake) -> Manifest:
    where = lake.uri("gold", MANIFEST_KEY)
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{where} is not valid JSON ({exc}); re-run the export.") from exc
    if not isinstance(document, dict):
        raise ManifestError(f"{where} is not a JSON object; re-run the export.")
    missing = [
        k for k in ("run_id", "as_of_date", "published_at", "run_folder") if not document.get(k)
    ]
    if missing:
        raise ManifestError(f"{where} lacks {', '.join(missing)}; re-run the export.")
    models = document.get("models")
    run_folder = str(document["run_folder"]).strip("/")
    model_names = tuple(str(m) for m in models) if isinstance(models, list) else None
    return Manifest(
        run_id=str(document["run_id"]),
        as_of_date=str(document["as_of_date"]),
        published_at=str(document["published_at"]),
        run_folder=run_folder,
        models=model_names,
        location=lake.uri("gold"),
        model_uris={m: lake.uri("gold", f"{run_folder}/{m}.parquet") for m in model_names or ()},
    )


# --- querying -------------------------------------------------------------------------------
def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@st.cache_resource(show_spinner=False)
def _connection(lake_dir: str | None, endpoint: str, region: str) -> duckdb.DuckDBPyConnection:
    """One DuckDB per store configuration (the arguments are the cache key); queries use cursors."""
    return duckdb_connection(settings=get_settings())


def _cursor() -> duckdb.DuckDBPyConnection:
    return _connection(*_store_key(get_settings())).cursor()


def _execute(sql: str) -> duckdb.DuckDBPyConnection:
    cursor = _cursor()
    try:
        return cursor.execute(sql)
    except duckdb.IOException as exc:  # includes HTTP errors from the object store
        cursor.close()
        raise ExportReadError(f"Could not read the export: {exc}") from exc


@st.cache_data(show_spinner=False, max_entries=256)
def _frame(run_id: str, sql: str) -> pd.DataFrame:
    """A small result as a DataFrame (DECIMAL becomes float: for charts, not for totals)."""
    cursor = _execute(sql)
    try:
        return cursor.df()
    finally:
        cursor.close()


@st.cache_data(show_spinner=False, max_entries=256)
def _row(run_id: str, sql: str) -> tuple:
    """A one-row result with exact types (DECIMAL stays Decimal)."""
    cursor = _execute(sql)
    try:
        return cursor.fetchone()
    finally:
        cursor.close()


# --- overview -------------------------------------------------------------------------------
@dataclass(frozen=True)
class SalesTotals:
    revenue: Decimal
    orders: int
    clients: int

    @property
    def avg_order_value(self) -> Decimal | None:
        """Exact revenue / orders, rounded once, half away from zero (SPEC §4)."""
        return round_half_away(self.revenue / self.orders) if self.orders else None


def sales_totals(manifest: Manifest) -> SalesTotals:
    """Headline totals over every sale: revenue, orders (purchase lines), purchasing clients."""
    revenue, orders, clients = _row(
        manifest.run_id,
        f"""
        select
            coalesce(sum(total), 0) as total_revenue,
            count(*) as total_orders,
            count(distinct client_id) as unique_clients
        from {manifest.table("fct_sales")}
        """,
    )
    return SalesTotals(revenue=Decimal(revenue), orders=int(orders), clients=int(clients))


def daily_sales(manifest: Manifest) -> pd.DataFrame:
    """One row per calendar day: revenue, its 7-day moving average, orders (for charts)."""
    return _frame(
        manifest.run_id,
        f"""
        select
            sale_date,
            cast(total_revenue as double) as total_revenue,
            cast(revenue_7d_avg as double) as revenue_7d_avg,
            total_orders
        from {manifest.table("rpt_sales_daily")}
        order by sale_date
        """,
    )
