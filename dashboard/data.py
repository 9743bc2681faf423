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

import html
import json
import math
import re
import tempfile
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Literal

import duckdb
import pandas as pd
import streamlit as st

from dashboard.formatting import format_date_range, round_half_away
from orchestration.layout import RUNS_PREFIX
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
    silver_models: tuple[str, ...] | None = None  # None: the manifest does not list them
    silver_location: str = ""  # silver layer root
    documents: tuple[str, ...] | None = None  # JSON documents; None: not listed
    silver_uris: dict[str, str] = field(default_factory=dict)
    has_docs: bool = False  # the run published the dbt docs site (docs/index.html)

    def has(self, model: str) -> bool:
        return self.models is None or model in self.models

    def has_silver(self, model: str) -> bool:
        return self.silver_models is None or model in self.silver_models

    def silver_table(self, model: str) -> str:
        """SQL for a silver model's Parquet file (published beside gold, SPEC §5)."""
        if not self.has_silver(model):
            raise ModelMissingError(
                f"Run {self.run_id} has no silver `{model}` export; re-run the pipeline "
                "(`lakehouse run`) with a version that builds it."
            )
        uri = (
            self.silver_uris.get(model)
            or f"{self.silver_location}/{self.run_folder}/{model}.parquet"
        )
        return "read_parquet(" + _sql_string(uri) + ")"

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
    silver = document.get("silver_models")
    silver_names = tuple(str(m) for m in silver) if isinstance(silver, list) else None
    documents = document.get("documents")
    return Manifest(
        run_id=str(document["run_id"]),
        as_of_date=str(document["as_of_date"]),
        published_at=str(document["published_at"]),
        run_folder=run_folder,
        models=model_names,
        location=lake.uri("gold"),
        model_uris={m: lake.uri("gold", f"{run_folder}/{m}.parquet") for m in model_names or ()},
        silver_models=silver_names,
        silver_location=lake.uri("silver"),
        documents=tuple(str(d) for d in documents) if isinstance(documents, list) else None,
        silver_uris={
            m: lake.uri("silver", f"{run_folder}/{m}.parquet") for m in silver_names or ()
        },
        has_docs=bool(document.get("docs_uri")),
    )


# --- querying -------------------------------------------------------------------------------
def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@st.cache_resource(show_spinner=False)
def _connection(lake_dir: str | None, endpoint: str, region: str) -> duckdb.DuckDBPyConnection:
    """One DuckDB per store configuration (the arguments are the cache key); queries use cursors.

    Pages read exported files in their published order: keep it (the warehouse writers do not).
    """
    conn = duckdb_connection(settings=get_settings())
    conn.execute("set preserve_insertion_order = true")
    return conn


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


def _csv(sql: str) -> bytes:
    """A query's result as CSV bytes, written by DuckDB itself (no DataFrame in between)."""
    with tempfile.TemporaryDirectory(prefix="dashboard-csv-") as folder:
        target = Path(folder) / "result.csv"
        cursor = _execute(f"copy ({sql}) to {_sql_string(str(target))} (format csv, header)")
        cursor.close()
        return target.read_bytes()


@st.cache_data(show_spinner=False, max_entries=256)
def _exact_frame(run_id: str, sql: str) -> pd.DataFrame:
    """A small result as a DataFrame with exact types (DECIMAL as Decimal objects), for sums
    that must stay exact (money)."""
    cursor = _execute(sql)
    try:
        columns = [d[0] for d in cursor.description]
        return pd.DataFrame(cursor.fetchall(), columns=columns)
    finally:
        cursor.close()


# --- JSON documents of the run ------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=32)
def _document(run_id: str, run_folder: str, name: str) -> dict:
    """A JSON document published in the run folder (cached per run id)."""
    lake = _lake()
    where = lake.uri("gold", f"{run_folder}/{name}")
    try:
        raw = lake.read_bytes("gold", f"{run_folder}/{name}")
    except FileNotFoundError as exc:
        raise ModelMissingError(
            f"Run {run_id} has no `{name}` ({where}); re-run the pipeline (`lakehouse run`)."
        ) from exc
    except StorageError as exc:
        raise ExportReadError(f"Could not read {where}: {exc}") from exc
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExportReadError(f"{where} is not valid JSON ({exc}); re-run the export.") from exc
    if not isinstance(document, dict):
        raise ExportReadError(f"{where} is not a JSON object; re-run the export.")
    return document


def document(manifest: Manifest, name: str) -> dict:
    if manifest.documents is not None and name not in manifest.documents:
        raise ModelMissingError(
            f"Run {manifest.run_id} has no `{name}`; re-run the pipeline (`lakehouse run`)."
        )
    return _document(manifest.run_id, manifest.run_folder, name)


# --- sidebar filters ------------------------------------------------------------------------
@dataclass(frozen=True)
class SalesFilter:
    """The sidebar's filters on sales. Empty means "everything": figures then read gold as is."""

    start_date: date | None = None
    end_date: date | None = None
    countries: tuple[str, ...] = ()
    products: tuple[str, ...] = ()

    @property
    def is_set(self) -> bool:
        return bool(self.start_date or self.end_date or self.countries or self.products)

    def where(self) -> str:
        """A SQL `where` clause over `fct_sales` columns ("" when no filter is set)."""
        conditions = []
        if self.start_date:
            conditions.append(f"purchase_date >= date {_sql_string(self.start_date.isoformat())}")
        if self.end_date:
            conditions.append(f"purchase_date <= date {_sql_string(self.end_date.isoformat())}")
        if self.countries:
            conditions.append(f"country in ({', '.join(map(_sql_string, self.countries))})")
        if self.products:
            conditions.append(f"product in ({', '.join(map(_sql_string, self.products))})")
        return ("where " + " and ".join(conditions)) if conditions else ""


NO_FILTER = SalesFilter()


@dataclass(frozen=True)
class FilterChoices:
    first_date: date | None
    last_date: date | None
    countries: tuple[str, ...]
    products: tuple[str, ...]


def filter_choices(manifest: Manifest) -> FilterChoices:
    """What the sidebar offers: the sales date range, the countries and products with sales.

    Read from the small gold reports, which hold exactly these (the daily spine runs from the
    first to the last sale; the product and country reports list those with sales), rather
    than from the millions of rows of `fct_sales`."""
    first, last, countries, products = _row(
        manifest.run_id,
        f"""
        select
            (select min(sale_date) from {manifest.table("rpt_sales_daily")}),
            (select max(sale_date) from {manifest.table("rpt_sales_daily")}),
            (select list(country order by country) from {manifest.table("rpt_country_analytics")}
                where country is not null),
            (select list(product order by product) from {manifest.table("rpt_product_analytics")}
                where product is not null)
        """,
    )
    return FilterChoices(first, last, tuple(countries or ()), tuple(products or ()))


def _sales(manifest: Manifest, filters: SalesFilter) -> str:
    """`fct_sales` with the filters applied, for a `from` clause."""
    return f"(select * from {manifest.table('fct_sales')} {filters.where()}) as sales"


# --- overview -------------------------------------------------------------------------------
@dataclass(frozen=True)
class SalesTotals:
    revenue: Decimal
    orders: int
    clients: int
    quantity: int = 0

    @property
    def exact_avg_order_value(self) -> Decimal | None:
        """Revenue / orders, unrounded: growth is computed from it (SPEC §4)."""
        return self.revenue / self.orders if self.orders else None

    @property
    def avg_order_value(self) -> Decimal | None:
        """Exact revenue / orders, rounded once, half away from zero (SPEC §4)."""
        exact = self.exact_avg_order_value
        return None if exact is None else round_half_away(exact)


@dataclass(frozen=True)
class Window:
    """A run of calendar days, both ends included."""

    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def shifted_back(self) -> Window:
        """The window of the same length that ends the day before this one starts."""
        return Window(self.start - timedelta(days=self.days), self.start - timedelta(days=1))

    def sql(self, column: str = "purchase_date") -> str:
        """SQL: `column` falls in the window."""
        return (
            f"{column} between date {_sql_string(self.start.isoformat())} "
            f"and date {_sql_string(self.end.isoformat())}"
        )


@dataclass(frozen=True)
class Comparison:
    """The windows a KPI delta compares: `current` against `previous`, in words in `basis`.

    `partial_base`: the earlier window starts before the first sale, so part of it precedes the
    data; a change against it would measure where the data starts, not the business (a range
    starting a month after the first sale would show thousands of percent): no change is shown.
    """

    current: Window
    previous: Window
    basis: str
    partial_base: bool = False

    def describe(self) -> str:
        """`2025-06-01 – 2025-06-30 vs the 30 days before (2025-05-02 – 2025-05-31)`."""
        return (
            f"{format_date_range(self.current.start, self.current.end)} {self.basis} "
            f"({format_date_range(self.previous.start, self.previous.end)})"
        )


RECENT_DAYS = 30


def recent_days(end: date, first_sale: date | None, days: int = RECENT_DAYS) -> Comparison:
    """The last `days` calendar days up to `end`, against the `days` before them."""
    current = Window(end - timedelta(days=days - 1), end)
    return _against_the_window_before(current, f"vs the {days} days before", first_sale)


def _against_the_window_before(current: Window, basis: str, first_sale: date | None) -> Comparison:
    previous = current.shifted_back()
    partial = first_sale is not None and previous.start < first_sale
    return Comparison(current, previous, basis, partial_base=partial)


def headline_comparison(filters: SalesFilter, choices: FilterChoices) -> Comparison | None:
    """What the Overview cards' deltas compare (one rule, stated in the cards' help).

    A chosen start date: the selected range against the period of the same length just before
    it. Otherwise the range starts at the first sale, so nothing precedes it: the last 30 days
    of the range against the 30 days before. None when there are no sales at all.
    """
    end = filters.end_date or choices.last_date
    if end is None:
        return None
    if filters.start_date is None:
        return recent_days(end, choices.first_date)
    current = Window(filters.start_date, end)
    basis = f"vs the previous {current.days} days"
    return _against_the_window_before(current, basis, choices.first_date)


@dataclass(frozen=True)
class ComparedTotals:
    """The totals of a comparison's two windows."""

    current: SalesTotals
    previous: SalesTotals


def change_pct(current: Decimal | int | None, previous: Decimal | int | None) -> Decimal | None:
    """Growth in percent, rounded once half away from zero; None on a missing or zero base."""
    if current is None or not previous:
        return None
    return round_half_away(Decimal(current - previous) * 100 / Decimal(previous))


@dataclass(frozen=True)
class Leader:
    """The first of a ranking by revenue: what it is and how much it sold."""

    role: str  # "Top product", …
    name: str
    revenue: Decimal
    share_pct: Decimal  # of the revenue shown
    rule: str
    reference: str = ""  # what tells two of the same name apart (a client id)


@dataclass(frozen=True)
class Overview:
    """The Overview's figures built on sales."""

    totals: SalesTotals  # the selected range (every sale when no filter is set)
    headline: Comparison | None  # what the headline cards' changes compare
    headline_totals: ComparedTotals | None
    recent: Comparison | None  # the last 30 days of the range against the 30 before
    recent_totals: ComparedTotals | None
    daily: pd.DataFrame  # sale_date, total_revenue, revenue_7d_avg over the range
    recent_daily: pd.DataFrame  # RECENT_DAY_COLUMNS
    leaders: list[Leader]


RECENT_DAY_COLUMNS = [
    "sale_date",
    "previous_date",
    "total_revenue",
    "total_orders",
    "previous_revenue",
    "previous_orders",
]


def overview(manifest: Manifest, filters: SalesFilter = NO_FILTER) -> Overview:
    """The Overview's figures.

    Without filters: the gold reports as published; only the distinct clients of the compared
    windows need `fct_sales`. With filters: two passes over the filtered `fct_sales`, limited
    to the days some figure needs — one sums sales per day, product and country, the other per
    client (distinct clients, and who spent most).
    """
    choices = filter_choices(manifest)
    headline = headline_comparison(filters, choices)
    if headline is None:  # no sales at all
        return _no_sales_overview()
    selected = Window(filters.start_date or choices.first_date, headline.current.end)
    recent = recent_days(selected.end, choices.first_date)
    if not filters.is_set:
        return _published_overview(manifest, headline, recent)
    return _filtered_overview(manifest, filters, selected, headline, recent)


def _no_sales_overview() -> Overview:
    days = DaySums(pd.DataFrame(columns=["sale_date", "revenue", "orders", "quantity"]))
    return Overview(
        totals=SalesTotals(Decimal(0), 0, 0),
        headline=None,
        headline_totals=None,
        recent=None,
        recent_totals=None,
        daily=days.daily_trend(None),
        recent_daily=days.recent(None),
        leaders=[],
    )


@dataclass(frozen=True)
class DaySums:
    """Revenue (exact decimals), orders and quantity per sale day: the sums of any window."""

    frame: pd.DataFrame  # sale_date (date), revenue (Decimal), orders, quantity

    def within(self, window: Window) -> pd.DataFrame:
        dates = self.frame["sale_date"]
        return self.frame[(dates >= window.start) & (dates <= window.end)]

    def totals(self, window: Window, clients: int) -> SalesTotals:
        rows = self.within(window)
        return SalesTotals(
            Decimal(sum(rows["revenue"], Decimal(0))),
            int(rows["orders"].sum()),
            int(clients),
            int(rows["quantity"].sum()),
        )

    def daily_trend(self, window: Window | None) -> pd.DataFrame:
        """Every day from the first to the last sale of the window (zeros between) with its
        revenue and 7-day moving average (over the days available, as gold computes it)."""
        rows = self.within(window) if window else self.frame.iloc[0:0]
        rows = rows[rows["orders"] > 0]
        if rows.empty:
            return pd.DataFrame(columns=["sale_date", "total_revenue", "revenue_7d_avg"])
        spine = pd.date_range(rows["sale_date"].min(), rows["sale_date"].max()).date
        revenue = (
            rows.set_index("sale_date")["revenue"].astype(float).reindex(spine, fill_value=0.0)
        )
        return pd.DataFrame(
            {
                "sale_date": spine,
                "total_revenue": revenue.to_numpy(),
                "revenue_7d_avg": revenue.rolling(7, min_periods=1).mean().round(2).to_numpy(),
            }
        )

    def recent(self, comparison: Comparison | None) -> pd.DataFrame:
        """Per day of the current window: revenue and orders, and those of the day as many days
        earlier in the previous window (zeros where nothing sold)."""
        if comparison is None:
            return pd.DataFrame(columns=RECENT_DAY_COLUMNS)
        by_day = self.frame.set_index("sale_date")
        shift = timedelta(days=comparison.current.days)
        days = [comparison.current.start + timedelta(days=n) for n in range(shift.days)]
        now = by_day.reindex(days)
        before = by_day.reindex([day - shift for day in days])
        return pd.DataFrame(
            {
                "sale_date": days,
                "previous_date": [day - shift for day in days],
                "total_revenue": now["revenue"].astype(float).fillna(0.0).to_numpy(),
                "total_orders": now["orders"].fillna(0).astype(int).to_numpy(),
                "previous_revenue": before["revenue"].astype(float).fillna(0.0).to_numpy(),
                "previous_orders": before["orders"].fillna(0).astype(int).to_numpy(),
            }
        )


def _published_overview(manifest: Manifest, headline: Comparison, recent: Comparison) -> Overview:
    """No filter: the gold reports as published (the headline then compares the recent days)."""
    daily = _frame(
        manifest.run_id,
        f"""
        select
            sale_date,
            cast(total_revenue as double) as total_revenue,
            cast(revenue_7d_avg as double) as revenue_7d_avg
        from {manifest.table("rpt_sales_daily")}
        order by sale_date
        """,
    )
    days = DaySums(
        _exact_frame(
            manifest.run_id,
            f"""
            select sale_date, total_revenue as revenue, total_orders as orders,
                total_quantity as quantity
            from {manifest.table("rpt_sales_daily")}
            order by sale_date
            """,
        )
    )
    [purchasing] = _row(
        manifest.run_id,
        f"select count(*) from {manifest.table('rpt_client_kpis')} where total_purchases > 0",
    )
    # The one figure no gold model holds: the distinct clients of each compared window.
    current_clients, previous_clients = _row(
        manifest.run_id,
        f"""
        select
            count(distinct client_id) filter (where {recent.current.sql()}),
            count(distinct client_id) filter (where {recent.previous.sql()})
        from {manifest.table("fct_sales")}
        where {Window(recent.previous.start, recent.current.end).sql()}
        """,
    )
    recent_totals = ComparedTotals(
        days.totals(recent.current, current_clients),
        days.totals(recent.previous, previous_clients),
    )
    everything = Window(days.frame["sale_date"].min(), days.frame["sale_date"].max())
    totals = days.totals(everything, purchasing)
    tops = _exact_frame(
        manifest.run_id,
        " union all ".join(
            f"""(
                select '{dimension}' as dimension, {dimension} as name, total_revenue as revenue
                from {manifest.table(f"rpt_{dimension}_analytics")}
                order by total_revenue desc, {dimension}
                limit 1
            )"""
            for dimension in ("product", "country")
        ),
    )
    return Overview(
        totals=totals,
        headline=headline,
        headline_totals=recent_totals,
        recent=recent,
        recent_totals=recent_totals,
        daily=daily,
        recent_daily=days.recent(recent),
        leaders=_leaders(tops, top_clients(manifest, limit=1), totals.revenue),
    )


def _filtered_overview(
    manifest: Manifest,
    filters: SalesFilter,
    selected: Window,
    headline: Comparison,
    recent: Comparison,
) -> Overview:
    """Filters set: two passes over `fct_sales` for the chosen countries and products, over
    the days some figure needs (the selected range and the compared windows), and the top
    client's name looked up."""
    span = Window(min(selected.start, headline.previous.start, recent.previous.start), selected.end)
    sales = _sales(manifest, replace(filters, start_date=span.start, end_date=span.end))
    # Per day over the span; per product and per country over the selected range.
    sums = _exact_frame(
        manifest.run_id,
        f"""
        select
            case
                when grouping(purchase_date) = 0 then 'day'
                when grouping(product) = 0 then 'product'
                else 'country'
            end as dimension,
            purchase_date as sale_date,
            coalesce(product, country) as name,
            sum(total) as revenue,
            count(*) as orders,
            sum(quantity) as quantity,
            sum(total) filter (where {selected.sql()}) as revenue_in_range
        from {sales}
        group by grouping sets ((purchase_date), (product), (country))
        """,
    )
    # Per client: who bought in the range and in each compared window, and who spent most.
    windows = {
        "selected": selected,
        "headline_current": headline.current,
        "headline_previous": headline.previous,
        "recent_current": recent.current,
        "recent_previous": recent.previous,
    }
    counts = _row(
        manifest.run_id,
        f"""
        with
        per_client as (
            select
                client_id,
                count(*) filter (where {selected.sql()}) as orders,
                sum(total) filter (where {selected.sql()}) as spent,
                {", ".join(f"bool_or({w.sql()}) as {name}" for name, w in windows.items())}
            from {sales}
            group by client_id
        ),
        top_client as (
            select client_id, orders, spent
            from per_client
            where orders > 0
            order by spent desc, client_id
            limit 1
        )
        select
            {", ".join(f"count(*) filter (where {name})" for name in windows)},
            (select client_id from top_client),
            (select orders from top_client),
            (select spent from top_client)
        from per_client
        """,
    )
    clients = dict(zip(windows, counts[: len(windows)], strict=True))
    top_client_id, top_orders, top_spent = counts[len(windows) :]
    days = DaySums(sums[sums["dimension"] == "day"].reset_index(drop=True))
    totals = days.totals(selected, clients["selected"])
    ranked = sums[(sums["dimension"] != "day") & sums["revenue_in_range"].notna()]
    tops = (
        ranked.assign(revenue=ranked["revenue_in_range"])
        .sort_values(["revenue", "name"], ascending=[False, True], kind="stable")
        .groupby("dimension", sort=False)
        .head(1)
    )
    return Overview(
        totals=totals,
        headline=headline,
        headline_totals=ComparedTotals(
            days.totals(headline.current, clients["headline_current"]),
            days.totals(headline.previous, clients["headline_previous"]),
        ),
        recent=recent,
        recent_totals=ComparedTotals(
            days.totals(recent.current, clients["recent_current"]),
            days.totals(recent.previous, clients["recent_previous"]),
        ),
        daily=days.daily_trend(selected),
        recent_daily=days.recent(recent),
        leaders=_leaders(
            tops, _client_card(manifest, top_client_id, top_orders, top_spent), totals.revenue
        ),
    )


def _client_card(
    manifest: Manifest, client_id: int | None, orders: int | None, spent: Decimal | None
) -> pd.DataFrame:
    """A client's name and masked e-mail beside orders and spend computed elsewhere (the
    shape of `top_clients`); empty without a client."""
    if client_id is None:
        return pd.DataFrame(columns=["client_id", "name", "email_masked", "total_spent"])
    name, email = _row(
        manifest.run_id,
        f"""
        select name, email_masked from {manifest.table("rpt_client_kpis")}
        where client_id = {int(client_id)}
        """,
    ) or (f"Client {client_id}", None)
    return pd.DataFrame(
        [
            {
                "client_id": client_id,
                "name": name,
                "email_masked": email,
                "total_purchases": orders,
                "total_spent": float(spent),
            }
        ]
    )


LEADER_RULES = {
    "product": ("Top product", "By revenue; ties by name."),
    "country": ("Top country", "Client country at purchase time, by revenue; ties by name."),
}


def _leaders(tops: pd.DataFrame, clients: pd.DataFrame, revenue: Decimal) -> list[Leader]:
    """Top product and country (`dimension`, `name`, `revenue`), then the top client."""

    def share(amount: Decimal) -> Decimal:  # unrounded: the page rounds it for display
        return Decimal(amount) * 100 / revenue if revenue else Decimal(0)

    found = []
    for dimension, (role, rule) in LEADER_RULES.items():
        for top in tops[tops["dimension"] == dimension].itertuples():
            found.append(Leader(role, top.name, Decimal(top.revenue), share(top.revenue), rule))
    if not clients.empty:
        top = clients.iloc[0]
        spent = round_half_away(top["total_spent"])
        found.append(
            Leader(
                "Top client",
                top["name"],
                spent,
                share(spent),
                f"By total spent; ties by client id. E-mail: {top['email_masked'] or '—'}.",
                reference=f"#{top['client_id']}",
            )
        )
    return found


def client_activity(manifest: Manifest) -> pd.DataFrame:
    """Clients split into active (bought in the last 90 days), inactive, and never purchased."""
    counts = client_counts(manifest)
    return pd.DataFrame(
        {
            "status": ["Active", "Inactive", "No purchases"],
            "clients": [
                counts.active,
                counts.purchasing - counts.active,
                counts.clients - counts.purchasing,
            ],
        }
    )


# --- temporal -------------------------------------------------------------------------------
Grain = Literal["daily", "weekly", "monthly"]

# Per grain: the gold report, its period column, and how fct_sales dates map onto periods.
_PERIODS: dict[str, tuple[str, str, str, str]] = {
    "daily": ("rpt_sales_daily", "sale_date", "purchase_date", "1 day"),
    "weekly": (
        "rpt_sales_weekly",
        "week_start_date",
        "date_trunc('week', purchase_date)",
        "7 days",
    ),
    "monthly": (
        "rpt_sales_monthly",
        "month_start_date",
        "date_trunc('month', purchase_date)",
        "1 month",
    ),
}


def period_sales(
    manifest: Manifest, grain: Grain, filters: SalesFilter = NO_FILTER
) -> pd.DataFrame:
    """Sales per day, ISO week or month: revenue, orders, customers, growth, moving averages.

    Without filters this is the gold report as published. With filters it is recomputed from
    `fct_sales` the way gold computes it: a spine of every period from the first to the last
    (filtered) sale, zeros where nothing sold, growth vs the previous period (null on a zero
    base), and daily moving averages over calendar days.
    """
    model, period_column, period_expression, step = _PERIODS[grain]
    daily = grain == "daily"
    averages = (
        "cast(revenue_7d_avg as double) as revenue_7d_avg, "
        "cast(revenue_28d_avg as double) as revenue_28d_avg,"
        if daily
        else "cast(null as double) as revenue_7d_avg, cast(null as double) as revenue_28d_avg,"
    )
    moving_averages = (
        "cast(avg(total_revenue) over (order by period rows between 6 preceding and current row)"
        " as double) as revenue_7d_avg, cast(avg(total_revenue) over (order by period rows "
        "between 27 preceding and current row) as double) as revenue_28d_avg,"
        if daily
        else averages
    )
    if not filters.is_set:
        return _frame(
            manifest.run_id,
            f"""
            select
                cast({period_column} as date) as period,
                cast(total_revenue as double) as total_revenue,
                total_orders,
                unique_customers,
                cast(avg_order_value as double) as avg_order_value,
                cast(revenue_growth_pct as double) as revenue_growth_pct,
                cast(orders_growth_pct as double) as orders_growth_pct,
                {averages}
                is_partial_period
            from {manifest.table(model)}
            order by period
            """,
        )
    return _frame(
        manifest.run_id,
        f"""
        with
        per_period as (
            select
                cast({period_expression} as date) as period,
                sum(total) as total_revenue,
                count(*) as total_orders,
                count(distinct client_id) as unique_customers,
                min(purchase_date) as first_sale,
                max(purchase_date) as last_sale
            from {_sales(manifest, filters)}
            group by 1
        ),
        spine as (
            select cast(period as date) as period
            from (select min(period) as first_period, max(period) as last_period from per_period),
                generate_series(first_period, last_period, interval {_sql_string(step)})
                    as t(period)
        ),
        filled as (
            select
                spine.period,
                coalesce(per_period.total_revenue, 0) as total_revenue,
                coalesce(per_period.total_orders, 0) as total_orders,
                coalesce(per_period.unique_customers, 0) as unique_customers,
                -- a first or last period the sales do not cover from bound to bound
                coalesce(
                    spine.period = (select min(period) from per_period)
                    and per_period.first_sale > spine.period
                    or spine.period = (select max(period) from per_period)
                    and per_period.last_sale
                        < cast(spine.period + interval {_sql_string(step)} as date) - 1,
                    false
                ) as is_partial_period
            from spine
            left join per_period on spine.period = per_period.period
        ),
        growth as (
            select
                *,
                lag(total_revenue) over (order by period) as previous_revenue,
                lag(total_orders) over (order by period) as previous_orders
            from filled
        )
        select
            period,
            cast(total_revenue as double) as total_revenue,
            total_orders,
            unique_customers,
            cast(round(total_revenue / nullif(total_orders, 0), 2) as double) as avg_order_value,
            cast(round((total_revenue - previous_revenue) * 100 / nullif(previous_revenue, 0), 2)
                as double) as revenue_growth_pct,
            cast(round((total_orders - previous_orders) * 100.0 / nullif(previous_orders, 0), 2)
                as double) as orders_growth_pct,
            {moving_averages}
            is_partial_period
        from growth
        order by period
        """,
    )


def sales_anomalies(manifest: Manifest) -> pd.DataFrame:
    """Days whose revenue is more than 3 trailing standard deviations from the trailing mean."""
    return _frame(
        manifest.run_id,
        f"""
        select
            sale_date,
            cast(total_revenue as double) as total_revenue,
            cast(trailing_mean as double) as trailing_mean,
            cast(trailing_std as double) as trailing_std,
            cast(z_score as double) as z_score,
            direction
        from {manifest.table("rpt_sales_anomalies")}
        order by sale_date
        """,
    )


# --- clients --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClientCounts:
    clients: int
    purchasing: int
    active: int
    high_value: int
    at_risk: int


def client_counts(manifest: Manifest) -> ClientCounts:
    row = _row(
        manifest.run_id,
        f"""
        select
            count(*),
            count(*) filter (where total_purchases > 0),
            count(*) filter (where is_active),
            count(*) filter (where is_high_value),
            count(*) filter (where is_at_risk)
        from {manifest.table("rpt_client_kpis")}
        """,
    )
    return ClientCounts(*(int(value) for value in row))


# Display order of the RFM segments (best first), as SPEC §4 lists them.
RFM_SEGMENTS = (
    "Champions",
    "Loyal Customers",
    "Potential Loyalists",
    "New Customers",
    "Promising",
    "Need Attention",
    "About to Sleep",
    "At Risk",
    "Can't Lose Them",
    "Hibernating",
    "No Purchases",
)


def rfm_segments(manifest: Manifest) -> pd.DataFrame:
    """Clients and revenue per RFM segment, in the display order above."""
    order = ", ".join(map(_sql_string, RFM_SEGMENTS))
    return _frame(
        manifest.run_id,
        f"""
        select
            rfm_segment,
            count(*) as clients,
            cast(sum(total_spent) as double) as revenue,
            round(100.0 * count(*) / sum(count(*)) over (), 2) as share_of_clients_pct
        from {manifest.table("rpt_client_kpis")}
        group by rfm_segment
        order by coalesce(list_position([{order}], rfm_segment), 99), rfm_segment
        """,
    )


def rfm_grid(manifest: Manifest) -> pd.DataFrame:
    """Purchasing clients per (R, F) score pair, every pair of 1–5 present."""
    return _frame(
        manifest.run_id,
        f"""
        with
        scores as (select unnest(range(1, 6)) as score),
        counted as (
            select r_score, f_score, count(*) as clients
            from {manifest.table("rpt_client_kpis")}
            where r_score is not null
            group by r_score, f_score
        )
        select r.score as r_score, f.score as f_score, coalesce(counted.clients, 0) as clients
        from scores as r
        cross join scores as f
        left join counted on counted.r_score = r.score and counted.f_score = f.score
        order by r.score, f.score
        """,
    )


@dataclass(frozen=True)
class Measure:
    """A column to bin into equal-width bins from `low` to `high` (the last bin includes
    `high`). Whole numbers (days, purchases, units) get a whole-number width, at least 1: a bin
    [start, end) then holds the values start … end − 1, so no bin straddles two values."""

    expression: str
    low: float
    high: float
    whole_numbers: bool = False

    def width(self, bins: int) -> float:
        span = float(self.high) - float(self.low)
        if self.whole_numbers:
            return max(1.0, float(math.ceil((span + 1) / bins)))
        return span / bins if span > 0 else 1.0

    def histogram_sql(self, bins: int) -> str:
        """A DuckDB aggregate: a map of bin number → rows."""
        value = f"cast({self.expression} as double)"
        low, width = float(self.low), self.width(bins)
        return f"histogram(least(floor(({value} - {low!r}) / {width!r}), {bins - 1}))"

    def frame(self, counts: dict | None, bins: int) -> pd.DataFrame:
        """The map of `histogram_sql` as `bin_start`, `bin_end`, `rows` (empty bins left out)."""
        numbers = sorted(counts or {})
        width = self.width(bins)
        return pd.DataFrame(
            {
                "bin_start": [float(self.low) + n * width for n in numbers],
                "bin_end": [float(self.low) + (n + 1) * width for n in numbers],
                "rows": [counts[n] for n in numbers],
            }
        )


# Measures counted in whole numbers (days, purchases, units): binned on whole numbers.
WHOLE_NUMBER_MEASURES = frozenset({"recency", "frequency", "quantity"})
CLIENT_MEASURES = {
    "recency": ("days_since_last_purchase", "Days since last purchase"),
    "frequency": ("total_purchases", "Purchases"),
    "monetary": ("total_spent", "Total spent (€)"),
}


def client_histograms(manifest: Manifest) -> dict[str, pd.DataFrame]:
    """Purchasing clients binned by recency, frequency and monetary value, as published in
    rpt_distribution_histograms (20 bins from the minimum to the maximum of each)."""
    return {
        measure: frame.rename(columns={"rows": "clients"})
        for measure, frame in _published_histograms(manifest, tuple(CLIENT_MEASURES)).items()
    }


def _published_histograms(manifest: Manifest, metrics: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    """The bins of `metrics` as rpt_distribution_histograms publishes them (empty bins left
    out), as `bin_start`, `bin_end`, `rows`: dbt binned the millions of rows once, at build."""
    frame = _frame(
        manifest.run_id,
        f"""
        select metric, bin_start, bin_end, observations as rows
        from {manifest.table("rpt_distribution_histograms")}
        order by metric, bin_number
        """,
    )
    return {
        metric: frame.loc[frame["metric"] == metric, ["bin_start", "bin_end", "rows"]].reset_index(
            drop=True
        )
        for metric in metrics
    }


def top_clients(
    manifest: Manifest, filters: SalesFilter = NO_FILTER, limit: int = 10
) -> pd.DataFrame:
    """The clients who spent most (ties by client id), with masked e-mail.

    With filters, orders and spend are summed over the filtered `fct_sales`."""
    kpis = manifest.table("rpt_client_kpis")
    if not filters.is_set:
        ranked = f"""
            select client_id, total_purchases, total_spent
            from {kpis} where total_purchases > 0
        """
    else:
        ranked = f"""
            select client_id, count(*) as total_purchases, sum(total) as total_spent
            from {_sales(manifest, filters)}
            group by client_id
        """
    # Rank on the ids and amounts alone, then fetch names and e-mails for the few at the top.
    return _frame(
        manifest.run_id,
        f"""
        with top as (
            select * from ({ranked}) order by total_spent desc, client_id limit {int(limit)}
        )
        select
            top.client_id, kpis.name, kpis.email_masked, kpis.country, top.total_purchases,
            cast(top.total_spent as double) as total_spent
        from top
        join {kpis} as kpis on kpis.client_id = top.client_id
        order by top.total_spent desc, top.client_id
        """,
    )


AT_RISK_SHOWN = 100


def _at_risk_sql(manifest: Manifest, limit: int | None = None) -> str:
    # Ranked on ids and amounts alone; names and e-mails are then read for those kept only.
    kpis = manifest.table("rpt_client_kpis")
    return f"""
        with ranked as (
            select client_id, total_spent
            from {kpis}
            where is_at_risk
            order by total_spent desc, client_id
            {f"limit {int(limit)}" if limit is not None else ""}
        )
        select
            kpis.client_id, kpis.name, kpis.email_masked, kpis.country, kpis.rfm_segment,
            kpis.total_purchases, cast(kpis.total_spent as double) as total_spent,
            kpis.last_purchase_date, kpis.days_since_last_purchase
        from {kpis} as kpis
        semi join ranked on ranked.client_id = kpis.client_id
        order by kpis.total_spent desc, kpis.client_id
    """


def at_risk_clients(manifest: Manifest, limit: int = AT_RISK_SHOWN) -> pd.DataFrame:
    """High-value clients who have not bought for more than 90 days, biggest spenders first
    (the first `limit`: at scale the list has hundreds of thousands of clients)."""
    return _frame(manifest.run_id, _at_risk_sql(manifest, limit))


def at_risk_clients_csv(manifest: Manifest) -> bytes:
    """The whole at-risk list as CSV, written by DuckDB (made on click, never cached)."""
    return _csv(_at_risk_sql(manifest))


def cohort_retention(manifest: Manifest) -> pd.DataFrame:
    return _frame(
        manifest.run_id,
        f"""
        select
            strftime(cohort_month, '%Y-%m') as cohort_month,
            months_since_first_purchase,
            cohort_size,
            active_clients,
            cast(revenue as double) as revenue,
            cast(retention_pct as double) as retention_pct
        from {manifest.table("rpt_cohort_retention")}
        order by cohort_month, months_since_first_purchase
        """,
    )


# --- products and geography -----------------------------------------------------------------
def product_analytics(manifest: Manifest, filters: SalesFilter = NO_FILTER) -> pd.DataFrame:
    """Per product: revenue, share, quantity, unit price range, customers, top countries."""
    if not filters.is_set:
        return _frame(
            manifest.run_id,
            f"""
            select
                product,
                cast(total_revenue as double) as total_revenue,
                cast(market_share_pct as double) as market_share_pct,
                total_quantity_sold,
                total_orders,
                unique_customers,
                cast(min_price as double) as min_price,
                cast(avg_price as double) as avg_price,
                cast(max_price as double) as max_price,
                top_countries
            from {manifest.table("rpt_product_analytics")}
            order by total_revenue desc, product
            """,
        )
    return _frame(
        manifest.run_id,
        f"""
        with
        sales as (select * from {_sales(manifest, filters)}),
        by_country as (
            select
                product,
                country,
                row_number() over (
                    partition by product order by sum(total) desc, country
                ) as country_rank
            from sales
            group by product, country
        ),
        top_countries as (
            select product, string_agg(country, ', ' order by country_rank) as top_countries
            from by_country
            where country_rank <= 3
            group by product
        ),
        per_product as (
            select
                product,
                sum(total) as total_revenue,
                sum(quantity) as total_quantity_sold,
                count(*) as total_orders,
                count(distinct client_id) as unique_customers,
                min(price) as min_price,
                round(avg(price), 2) as avg_price,
                max(price) as max_price
            from sales
            group by product
        )
        select
            per_product.product,
            cast(total_revenue as double) as total_revenue,
            cast(round(total_revenue * 100 / sum(total_revenue) over (), 2) as double)
                as market_share_pct,
            total_quantity_sold,
            total_orders,
            unique_customers,
            cast(min_price as double) as min_price,
            cast(avg_price as double) as avg_price,
            cast(max_price as double) as max_price,
            top_countries.top_countries
        from per_product
        left join top_countries on per_product.product = top_countries.product
        order by total_revenue desc, per_product.product
        """,
    )


def country_analytics(manifest: Manifest, filters: SalesFilter = NO_FILTER) -> pd.DataFrame:
    """Per client country: revenue, share, customers, orders, average basket, per customer."""
    if not filters.is_set:
        return _frame(
            manifest.run_id,
            f"""
            select
                country,
                cast(total_revenue as double) as total_revenue,
                cast(market_share_pct as double) as market_share_pct,
                unique_customers,
                total_orders,
                total_quantity,
                cast(avg_order_value as double) as avg_order_value,
                cast(avg_revenue_per_customer as double) as avg_revenue_per_customer
            from {manifest.table("rpt_country_analytics")}
            order by total_revenue desc, country
            """,
        )
    return _frame(
        manifest.run_id,
        f"""
        with per_country as (
            select
                country,
                sum(total) as total_revenue,
                count(distinct client_id) as unique_customers,
                count(*) as total_orders,
                sum(quantity) as total_quantity
            from {_sales(manifest, filters)}
            group by country
        )
        select
            country,
            cast(total_revenue as double) as total_revenue,
            cast(round(total_revenue * 100 / sum(total_revenue) over (), 2) as double)
                as market_share_pct,
            unique_customers,
            total_orders,
            total_quantity,
            cast(round(total_revenue / total_orders, 2) as double) as avg_order_value,
            cast(round(total_revenue / unique_customers, 2) as double)
                as avg_revenue_per_customer
        from per_country
        order by total_revenue desc, country
        """,
    )


# --- statistics -----------------------------------------------------------------------------
# fct_sales column per distribution metric of rpt_distribution_statistics.
SALES_METRICS = {
    "order_value": ("total", "Order value (€)"),
    "unit_price": ("price", "Unit price (€)"),
    "quantity": ("quantity", "Quantity (units)"),
}
STATISTICS = ("mean", "median", "std", "min", "max", "p25", "p75", "p90", "p95", "mode")
QUANTILES = {"median": 0.5, "p25": 0.25, "p75": 0.75, "p90": 0.9, "p95": 0.95}


HISTOGRAM_BINS = 30


def distribution_statistics(manifest: Manifest, filters: SalesFilter = NO_FILTER) -> pd.DataFrame:
    """One row per metric (order_value, unit_price, quantity, overall), one column per statistic.

    Without filters: rpt_distribution_statistics as published. With filters: the same
    statistics over the filtered fct_sales (continuous quantiles, sample std, smallest mode),
    read in the pass that also bins them (see `sales_histograms`)."""
    if not filters.is_set:
        long = _frame(
            manifest.run_id,
            f"""
            select metric, statistic, cast(value as double) as value
            from {manifest.table("rpt_distribution_statistics")}
            """,
        )
        return long.pivot_table(
            index="metric", columns="statistic", values="value", aggfunc="first"
        )
    return _filtered_sales_profile(manifest, filters)[0]


def sales_histograms(
    manifest: Manifest, filters: SalesFilter = NO_FILTER
) -> dict[str, pd.DataFrame]:
    """Order lines of (filtered) fct_sales binned by order value, unit price and quantity.

    Without filters: the bins rpt_distribution_histograms publishes. With filters: one pass
    over the filtered order lines (the same as the statistics) counts all three on the same
    bins (published minimum to maximum, same widths), so both read against the same scale."""
    if filters.is_set:
        return _filtered_sales_profile(manifest, filters)[1]
    published = _published_histograms(manifest, tuple(SALES_METRICS))
    return {metric: frame.rename(columns={"rows": "orders"}) for metric, frame in published.items()}


def _sales_measures(manifest: Manifest) -> dict[str, Measure]:
    published = distribution_statistics(manifest)
    return {
        metric: Measure(
            column,
            published.loc[metric, "min"],
            published.loc[metric, "max"],
            whole_numbers=metric in WHOLE_NUMBER_MEASURES,
        )
        for metric, (column, _) in SALES_METRICS.items()
    }


def _filtered_sales_profile(
    manifest: Manifest, filters: SalesFilter
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Statistics and bins of the filtered order lines, from one pass of DuckDB."""
    measures = _sales_measures(manifest)
    aggregates = []
    for metric, (column, _) in SALES_METRICS.items():
        aggregates += [
            f"round(avg({column}), 2)",
            f"round(stddev_samp({column}), 4)",
            f"min({column})",
            f"max({column})",
            f"quantile_cont({column}, [{', '.join(map(str, QUANTILES.values()))}])",
            measures[metric].histogram_sql(HISTOGRAM_BINS),
        ]
    row = _row(
        manifest.run_id,
        f"""
        select
            {", ".join(aggregates)},
            histogram(quantity),
            coalesce(sum(total), 0),
            count(*),
            coalesce(sum(quantity), 0),
            count(distinct client_id)
        from {_sales(manifest, filters)}
        """,
    )
    statistics: dict[str, dict[str, float | None]] = {}
    histograms = {}
    for index, metric in enumerate(SALES_METRICS):
        mean, std, low, high, quantiles, bins = row[6 * index : 6 * index + 6]
        statistics[metric] = {
            "mean": mean,
            "std": std,
            "min": low,
            "max": high,
            **dict(zip(QUANTILES, quantiles or [None] * len(QUANTILES), strict=True)),
            "mode": None,
        }
        frame = measures[metric].frame(bins, HISTOGRAM_BINS)
        histograms[metric] = frame.rename(columns={"rows": "orders"})
    counts = row[18] or {}  # quantity → order lines; the mode is the smallest of the most common
    statistics["quantity"]["mode"] = min(counts, key=lambda q: (-counts[q], q)) if counts else None
    revenue, orders, quantity, customers = row[19:]
    statistics["overall"] = {
        "total_revenue": revenue,
        "total_orders": orders,
        "total_quantity": quantity,
        "unique_customers": customers,
    }
    frame = pd.DataFrame.from_dict(statistics, orient="index").astype(float)
    return frame.rename_axis("metric"), histograms


# --- data quality ---------------------------------------------------------------------------
QUARANTINE_MODELS = {
    "clients": "stg_retail__clients_quarantine",
    "purchases": "stg_retail__purchases_quarantine",
}
_EMAIL = re.compile(r"([A-Za-z0-9])[A-Za-z0-9._%+\-]*@([A-Za-z0-9.\-]+)")


def mask_emails(text: object) -> object:
    """Mask anything that looks like an e-mail address (`j***@example.com`), as gold does."""
    return _EMAIL.sub(r"\1***@\2", text) if isinstance(text, str) else text


def quality_report(manifest: Manifest) -> dict:
    """quality_report.json of the run: per entity, overall and per bronze file (SPEC §3)."""
    return document(manifest, "quality_report.json")


def quarantine_examples(manifest: Manifest, entity: str, limit: int = 20) -> pd.DataFrame:
    """The first refused row of each reject reason of an entity, e-mail-like text masked."""
    quarantine = manifest.silver_table(QUARANTINE_MODELS[entity])
    # Find the first line of each reason on the three columns that say so, then read those rows.
    frame = _frame(
        manifest.run_id,
        f"""
        with firsts as (
            select reject_reason, min((_source_file, _row_number)) as first_line
            from {quarantine}
            group by reject_reason
            order by reject_reason
            limit {int(limit)}
        )
        select quarantine.*
        from {quarantine} as quarantine
        semi join firsts
            on firsts.reject_reason = quarantine.reject_reason
            and firsts.first_line = (quarantine._source_file, quarantine._row_number)
        order by quarantine.reject_reason
        """,
    )
    # Load time says nothing about the refusal; the bronze file and line number do.
    return frame.drop(columns=["_ingested_at"], errors="ignore").map(mask_emails)


def quality_scores(report: dict) -> pd.DataFrame:
    """Quality score (silver rows / bronze rows, %) per entity and overall."""
    sections = {**report.get("entities", {}), "overall": report.get("overall", {})}
    return pd.DataFrame(
        [
            {"entity": entity, "quality_score": section.get("quality_score")}
            for entity, section in sections.items()
        ],
        columns=["entity", "quality_score"],
    )


def quarantine_by_reason(report: dict) -> pd.DataFrame:
    """Quarantined rows per entity and reject reason (every reason listed, zero included)."""
    return pd.DataFrame(
        [
            {"entity": entity, "reject_reason": reason, "rows": count}
            for entity, section in report.get("entities", {}).items()
            for reason, count in section.get("quarantine", {}).items()
        ],
        columns=["entity", "reject_reason", "rows"],
    )


def reconciliation(report: dict) -> pd.DataFrame:
    """Bronze = silver + quarantine, per entity and per bronze file, with the check's result."""
    rows = [
        {"entity": entity, "source_file": "all", **_row_counts(section)}
        for entity, section in report.get("entities", {}).items()
    ]
    rows += [
        {"entity": section.get("entity"), "source_file": name, **_row_counts(section)}
        for name, section in sorted(report.get("files", {}).items())
    ]
    frame = pd.DataFrame(
        rows,
        columns=["entity", "source_file", "bronze_rows", "silver_rows", "quarantined_rows"],
    )
    frame["reconciles"] = frame["bronze_rows"] == frame["silver_rows"] + frame["quarantined_rows"]
    return frame


def _row_counts(section: dict) -> dict:
    return {k: section.get(k) for k in ("bronze_rows", "silver_rows", "quarantined_rows")}


# --- runs -----------------------------------------------------------------------------------
DOCS_PAGE = "docs/index.html"


def docs_page(manifest: Manifest) -> bytes:
    """The dbt docs site (lineage) published with the run: one self-contained HTML page.

    Read only when the download is clicked; a failure then becomes a page that says so (the
    click happens after the script ran, where no error element can be shown)."""
    try:
        return _lake().read_bytes("gold", f"{manifest.run_folder}/{DOCS_PAGE}")
    except (FileNotFoundError, StorageError) as exc:
        message = f"Could not read the dbt docs of run {manifest.run_id}: {exc}"
        return f"<!doctype html><title>dbt docs</title><p>{html.escape(message)}</p>".encode()


def run_history(manifest: Manifest) -> pd.DataFrame:
    """The published runs still kept (newest first): when, as of when, rows and quality."""
    return _run_history(manifest.run_id)


@st.cache_data(show_spinner=False, max_entries=8)
def _run_history(displayed_run_id: str) -> pd.DataFrame:
    """Read once per displayed run: a new publish is a new key, so the list refreshes."""
    lake = _lake()
    rows = []
    try:
        runs = sorted(lake.iter_folders("gold", RUNS_PREFIX), reverse=True)
        for run_id in runs:
            run = _json_or_none(lake, f"{RUNS_PREFIX}{run_id}/_manifest.json")
            if run is None:  # a folder being pruned, or a failed publish
                continue
            report = _json_or_none(lake, f"{RUNS_PREFIX}{run_id}/quality_report.json") or {}
            counts = run.get("row_counts", {})
            rows.append(
                {
                    "run_id": run_id,
                    "published_at": run.get("published_at"),
                    "as_of_date": run.get("as_of_date"),
                    "orders": counts.get("fct_sales"),
                    "clients": counts.get("rpt_client_kpis"),
                    "quarantined_rows": report.get("overall", {}).get("quarantined_rows"),
                    "quality_score": report.get("overall", {}).get("quality_score"),
                    "displayed": run_id == displayed_run_id,
                }
            )
    except StorageError as exc:
        raise ExportReadError(f"Could not list the published runs: {exc}") from exc
    columns = ["run_id", "published_at", "as_of_date", "orders", "clients"]
    columns += ["quarantined_rows", "quality_score", "displayed"]
    history = pd.DataFrame(rows, columns=columns)
    published = pd.to_datetime(history["published_at"], utc=True, errors="coerce")
    history["published_at"] = published.dt.tz_localize(None)  # UTC, shown as such
    return history


def _json_or_none(lake: Lake, key: str) -> dict | None:
    try:
        document = json.loads(lake.read_bytes("gold", key))
    except (FileNotFoundError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return document if isinstance(document, dict) else None
