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
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Literal

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
    silver_models: tuple[str, ...] | None = None  # None: the manifest does not list them
    silver_location: str = ""  # silver layer root
    documents: tuple[str, ...] | None = None  # JSON documents; None: not listed
    silver_uris: dict[str, str] = field(default_factory=dict)

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
    """What the sidebar offers: the sales date range, the countries and products with sales."""
    first, last, countries, products = _row(
        manifest.run_id,
        f"""
        select
            min(purchase_date),
            max(purchase_date),
            list(distinct country order by country) filter (where country is not null),
            list(distinct product order by product) filter (where product is not null)
        from {manifest.table("fct_sales")}
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
    def avg_order_value(self) -> Decimal | None:
        """Exact revenue / orders, rounded once, half away from zero (SPEC §4)."""
        return round_half_away(self.revenue / self.orders) if self.orders else None


def sales_totals(manifest: Manifest, filters: SalesFilter = NO_FILTER) -> SalesTotals:
    """Headline totals over the (filtered) sales: revenue, orders (lines), clients, quantity."""
    revenue, orders, clients, quantity = _row(
        manifest.run_id,
        f"""
        select
            coalesce(sum(total), 0) as total_revenue,
            count(*) as total_orders,
            count(distinct client_id) as unique_clients,
            coalesce(sum(quantity), 0) as total_quantity
        from {_sales(manifest, filters)}
        """,
    )
    return SalesTotals(
        revenue=Decimal(revenue), orders=int(orders), clients=int(clients), quantity=int(quantity)
    )


def daily_sales(manifest: Manifest, filters: SalesFilter = NO_FILTER) -> pd.DataFrame:
    """One row per calendar day: revenue, its 7-day moving average, orders (for charts)."""
    return period_sales(manifest, "daily", filters).rename(columns={"period": "sale_date"})


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
                count(distinct client_id) as unique_customers
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
                coalesce(per_period.unique_customers, 0) as unique_customers
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
            cast(null as boolean) as is_partial_period
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
        with scores as (select unnest(range(1, 6)) as score)
        select r.score as r_score, f.score as f_score, count(kpis.client_id) as clients
        from scores as r
        cross join scores as f
        left join {manifest.table("rpt_client_kpis")} as kpis
            on kpis.r_score = r.score and kpis.f_score = f.score
        group by r.score, f.score
        order by r.score, f.score
        """,
    )


def _histogram(run_id: str, source: str, expression: str, bins: int) -> pd.DataFrame:
    """Equal-width bins of `expression` over `source`, counted in DuckDB: bin bounds and rows."""
    return _frame(
        run_id,
        f"""
        with
        measured as (
            select cast({expression} as double) as value
            from (select * from {source}) as source
            where {expression} is not null
        ),
        bounds as (
            select min(value) as low, max(value) as high, count(*) as n from measured
        ),
        binned as (
            select
                case
                    when bounds.high = bounds.low then 0
                    else least(
                        floor((value - bounds.low) / ((bounds.high - bounds.low) / {bins})),
                        {bins - 1}
                    )
                end as bin,
                bounds.low,
                bounds.high
            from measured, bounds
        )
        select
            bin,
            low + bin * (case when high = low then 1 else (high - low) / {bins} end) as bin_start,
            low + (bin + 1) * (case when high = low then 1 else (high - low) / {bins} end)
                as bin_end,
            count(*) as rows
        from binned
        group by bin, low, high
        order by bin
        """,
    )


CLIENT_MEASURES = {
    "recency": ("days_since_last_purchase", "Days since last purchase"),
    "frequency": ("total_purchases", "Purchases"),
    "monetary": ("total_spent", "Total spent (€)"),
}


def client_histogram(manifest: Manifest, measure: str, bins: int = 20) -> pd.DataFrame:
    """Purchasing clients binned by recency, frequency or monetary value."""
    column, _ = CLIENT_MEASURES[measure]
    source = f"{manifest.table('rpt_client_kpis')} where total_purchases > 0"
    return _histogram(manifest.run_id, source, column, bins).rename(columns={"rows": "clients"})


def top_clients(
    manifest: Manifest, filters: SalesFilter = NO_FILTER, limit: int = 10
) -> pd.DataFrame:
    """The clients who spent most (ties by client id), with masked e-mail.

    With filters, orders and spend are summed over the filtered `fct_sales`."""
    kpis = manifest.table("rpt_client_kpis")
    if not filters.is_set:
        source = f"""
            select client_id, name, email_masked, country, total_purchases, total_spent
            from {kpis} where total_purchases > 0
        """
    else:
        source = f"""
            select
                kpis.client_id, kpis.name, kpis.email_masked, kpis.country,
                count(*) as total_purchases, sum(sales.total) as total_spent
            from {_sales(manifest, filters)}
            join {kpis} as kpis on kpis.client_id = sales.client_id
            group by all
        """
    return _frame(
        manifest.run_id,
        f"""
        select
            client_id, name, email_masked, country, total_purchases,
            cast(total_spent as double) as total_spent
        from ({source})
        order by total_spent desc, client_id
        limit {int(limit)}
        """,
    )


def at_risk_clients(manifest: Manifest) -> pd.DataFrame:
    """High-value clients who have not bought for more than 90 days, biggest spenders first."""
    return _frame(
        manifest.run_id,
        f"""
        select
            client_id, name, email_masked, country, rfm_segment, total_purchases,
            cast(total_spent as double) as total_spent, last_purchase_date,
            days_since_last_purchase
        from {manifest.table("rpt_client_kpis")}
        where is_at_risk
        order by total_spent desc, client_id
        """,
    )


def cohort_retention(manifest: Manifest) -> pd.DataFrame:
    return _frame(
        manifest.run_id,
        f"""
        select
            cast(cohort_month as varchar) as cohort_month,
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


def distribution_statistics(manifest: Manifest, filters: SalesFilter = NO_FILTER) -> pd.DataFrame:
    """One row per metric (order_value, unit_price, quantity, overall), one column per statistic.

    Without filters: rpt_distribution_statistics as published. With filters: the same
    statistics over the filtered fct_sales (continuous quantiles, sample std, smallest mode).
    """
    if not filters.is_set:
        long = _frame(
            manifest.run_id,
            f"""
            select metric, statistic, cast(value as double) as value
            from {manifest.table("rpt_distribution_statistics")}
            """,
        )
    else:
        parts = []
        for metric, (column, _) in SALES_METRICS.items():
            mode = (
                f"(select {column} from filtered group by {column} "
                f"order by count(*) desc, {column} limit 1)"
                if metric == "quantity"
                else "null"
            )
            statistics = {
                "mean": f"round(avg({column}), 2)",
                "median": f"quantile_cont({column}, 0.5)",
                "std": f"round(stddev_samp({column}), 4)",
                "min": f"min({column})",
                "max": f"max({column})",
                "p25": f"quantile_cont({column}, 0.25)",
                "p75": f"quantile_cont({column}, 0.75)",
                "p90": f"quantile_cont({column}, 0.90)",
                "p95": f"quantile_cont({column}, 0.95)",
                "mode": mode,
            }
            for statistic, expression in statistics.items():
                parts.append(
                    f"select '{metric}' as metric, '{statistic}' as statistic, "
                    f"cast({expression} as double) as value from filtered"
                )
        for statistic, expression in {
            "total_revenue": "coalesce(sum(total), 0)",
            "total_orders": "count(*)",
            "total_quantity": "coalesce(sum(quantity), 0)",
            "unique_customers": "count(distinct client_id)",
        }.items():
            parts.append(
                f"select 'overall', '{statistic}', cast({expression} as double) from filtered"
            )
        long = _frame(
            manifest.run_id,
            f"with filtered as (select * from {_sales(manifest, filters)}) "
            + " union all ".join(parts),
        )
    return long.pivot_table(index="metric", columns="statistic", values="value", aggfunc="first")


def sales_histogram(
    manifest: Manifest, metric: str, filters: SalesFilter = NO_FILTER, bins: int = 30
) -> pd.DataFrame:
    """Order lines of (filtered) fct_sales binned by order value, unit price or quantity."""
    column, _ = SALES_METRICS[metric]
    source = f"{manifest.table('fct_sales')} {filters.where()}"
    return _histogram(manifest.run_id, source, column, bins).rename(columns={"rows": "orders"})


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


def quarantine_examples(manifest: Manifest, entity: str, limit: int = 5) -> pd.DataFrame:
    """A few refused rows of an entity, the first of each reject reason, e-mail-like text masked."""
    frame = _frame(
        manifest.run_id,
        f"""
        select *
        from {manifest.silver_table(QUARANTINE_MODELS[entity])}
        qualify row_number() over (
            partition by reject_reason order by _source_file, _row_number
        ) = 1
        order by reject_reason
        limit {int(limit)}
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
