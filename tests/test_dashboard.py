"""Dashboard tests: the real entry point rendered by Streamlit's AppTest over a tiny fixture lake.

The fixture numbers are computed by hand (see FACT_SALES): four orders from two clients over
2024-03-01..04, with a day without sales, revenue €1,234.50 and an average order value of
exactly €308.625, which must show as €308.63 (half away from zero, not banker's rounding).
Every other gold model a page reads is written from the same four orders, by hand (the
comments say how each number follows), plus a third client without purchases.
"""

from __future__ import annotations

import json
import socket
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import formatting
from orchestration.settings import get_settings, reload_settings

APP = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"
RUN_ID = "20240305T080000Z-test"

FACT_SALES_COLUMNS = {
    "purchase_id": "bigint",
    "client_id": "bigint",
    "product": "varchar",
    "country": "varchar",
    "price": "decimal(18,2)",
    "quantity": "bigint",
    "total": "decimal(18,2)",
    "purchase_date": "date",
}
FACT_SALES = [
    (1, 1, "Laptop", "France", "1000.00", 1, "1000.00", "2024-03-01"),
    (2, 2, "Mouse", "Germany", "20.25", 2, "40.50", "2024-03-01"),
    (3, 1, "Charger", "France", "12.00", 3, "36.00", "2024-03-02"),
    (4, 2, "Keyboard", "Germany", "79.00", 2, "158.00", "2024-03-04"),
]
SALES_DAILY_COLUMNS = {
    "sale_date": "date",
    "total_revenue": "decimal(18,2)",
    "total_orders": "bigint",
    "unique_customers": "bigint",
    "total_quantity": "bigint",
    "avg_order_value": "decimal(18,2)",
    "revenue_growth_pct": "decimal(18,2)",
    "orders_growth_pct": "decimal(18,2)",
    "revenue_7d_avg": "decimal(18,2)",
    "orders_7d_avg": "decimal(18,2)",
    "revenue_28d_avg": "decimal(18,2)",
    "orders_28d_avg": "decimal(18,2)",
    "is_partial_period": "boolean",
}
# With fewer than 7 days of history the 7-day and 28-day averages are equal.
SALES_DAILY = [
    ("2024-03-01", "1040.50", 2, 2, 3, "520.25", None, None)
    + ("1040.50", "2.00", "1040.50", "2.00", False),
    ("2024-03-02", "36.00", 1, 1, 3, "36.00", "-96.54", "-50.00")
    + ("538.25", "1.50", "538.25", "1.50", False),
    ("2024-03-03", "0.00", 0, 0, 0, None, "-100.00", "-100.00")
    + ("358.83", "1.00", "358.83", "1.00", False),
    ("2024-03-04", "158.00", 1, 1, 2, "158.00", None, None)
    + ("308.63", "1.00", "308.63", "1.00", False),
]

# Client 1 (France): orders 1 and 3, €1,036.00, last 2024-03-02 (recency 3 days at 2024-03-05).
# Client 2 (Germany): orders 2 and 4, €198.50, last 2024-03-04 (recency 1). Client 3: none.
# Median spend of purchasing clients (1036 + 198.5) / 2 = 617.25: client 1 is high value, and
# active, so nobody is at risk. RFM over N = 2: R 3 / 5, F 5 / 5 (tie), M 5 / 3, so client 1 is
# R3×F5 Loyal Customers and client 2 R5×F5 Champions.
CLIENT_KPIS_COLUMNS = {
    "client_id": "bigint",
    "name": "varchar",
    "email_masked": "varchar",
    "country": "varchar",
    "total_purchases": "bigint",
    "total_spent": "decimal(18,2)",
    "last_purchase_date": "date",
    "days_since_last_purchase": "bigint",
    "is_active": "boolean",
    "is_high_value": "boolean",
    "is_at_risk": "boolean",
    "r_score": "integer",
    "f_score": "integer",
    "m_score": "integer",
    "rfm_segment": "varchar",
}
CLIENT_KPIS = [
    (1, "Ann Arbor", "a***@example.com", "France", 2, "1036.00", "2024-03-02", 3)
    + (True, True, False, 3, 5, 5, "Loyal Customers"),
    (2, "Bob Berg", "b***@example.com", "Germany", 2, "198.50", "2024-03-04", 1)
    + (True, False, False, 5, 5, 3, "Champions"),
    (3, "Cy Cole", None, "Spain", 0, "0.00", None, None)
    + (False, False, False, None, None, None, "No Purchases"),
]
# Shares of €1,234.50: 1000 → 81.00 %, 158 → 12.80 %, 40.50 → 3.28 %, 36 → 2.92 %.
PRODUCT_COLUMNS = {
    "product": "varchar",
    "total_quantity_sold": "bigint",
    "total_revenue": "decimal(18,2)",
    "total_orders": "bigint",
    "unique_customers": "bigint",
    "avg_price": "decimal(18,2)",
    "min_price": "decimal(18,2)",
    "max_price": "decimal(18,2)",
    "market_share_pct": "decimal(18,2)",
    "top_countries": "varchar",
}
PRODUCTS = [
    ("Laptop", 1, "1000.00", 1, 1, "1000.00", "1000.00", "1000.00", "81.00", "France"),
    ("Keyboard", 2, "158.00", 1, 1, "79.00", "79.00", "79.00", "12.80", "Germany"),
    ("Mouse", 2, "40.50", 1, 1, "20.25", "20.25", "20.25", "3.28", "Germany"),
    ("Charger", 3, "36.00", 1, 1, "12.00", "12.00", "12.00", "2.92", "France"),
]
# France 1036 / 1234.5 = 83.92 %, Germany 198.5 / 1234.5 = 16.08 %.
COUNTRY_COLUMNS = {
    "country": "varchar",
    "total_revenue": "decimal(18,2)",
    "unique_customers": "bigint",
    "total_orders": "bigint",
    "total_quantity": "bigint",
    "avg_order_value": "decimal(18,2)",
    "avg_revenue_per_customer": "decimal(18,2)",
    "market_share_pct": "decimal(18,2)",
}
COUNTRIES = [
    ("France", "1036.00", 1, 2, 4, "518.00", "1036.00", "83.92"),
    ("Germany", "198.50", 1, 2, 4, "99.25", "198.50", "16.08"),
]
# ISO weeks start on Monday: 2024-02-26 holds 03-01..03 (€1,076.50, 3 orders, 2 clients),
# 2024-03-04 holds the last order; growth (158 − 1076.5) / 1076.5 = −85.32 %.
SALES_WEEKLY_COLUMNS = {
    "week_start_date": "date",
    "iso_year_week": "varchar",
    "total_revenue": "decimal(18,2)",
    "total_orders": "bigint",
    "unique_customers": "bigint",
    "total_quantity": "bigint",
    "avg_order_value": "decimal(18,2)",
    "revenue_growth_pct": "decimal(18,2)",
    "orders_growth_pct": "decimal(18,2)",
    "customers_growth_pct": "decimal(18,2)",
    "is_partial_period": "boolean",
}
SALES_WEEKLY = [
    ("2024-02-26", "2024-W09", "1076.50", 3, 2, 6, "358.83", None, None, None, True),
    ("2024-03-04", "2024-W10", "158.00", 1, 1, 2, "158.00", "-85.32", "-66.67", "-50.00", True),
]
SALES_MONTHLY_COLUMNS = {
    "year_month": "varchar",
    "month_start_date": "date",
    "total_revenue": "decimal(18,2)",
    "total_orders": "bigint",
    "unique_customers": "bigint",
    "total_quantity": "bigint",
    "avg_order_value": "decimal(18,2)",
    "avg_revenue_per_customer": "decimal(18,2)",
    "revenue_growth_pct": "decimal(18,2)",
    "orders_growth_pct": "decimal(18,2)",
    "customers_growth_pct": "decimal(18,2)",
    "is_partial_period": "boolean",
}
SALES_MONTHLY = [
    ("2024-03", "2024-03-01", "1234.50", 4, 2, 8, "308.63", "617.25", None, None, None, True),
]
# Order totals 36, 40.50, 158, 1000; unit prices 12, 20.25, 79, 1000; quantities 1, 2, 2, 3.
# Continuous quantiles at rank 1 + p × 3, sample standard deviations.
DISTRIBUTION = {
    "order_value": {"mean": "308.63", "median": "99.25", "std": "464.3643", "min": "36.00"}
    | {"max": "1000.00", "p25": "39.375", "p75": "368.50", "p90": "747.40", "p95": "873.70"},
    "unit_price": {"mean": "277.81", "median": "49.625", "std": "482.3816", "min": "12.00"}
    | {"max": "1000.00", "p25": "18.1875", "p75": "309.25", "p90": "723.70", "p95": "861.85"},
    "quantity": {"mean": "2.00", "median": "2", "std": "0.8165", "min": "1", "max": "3"}
    | {"p25": "1.75", "p75": "2.25", "p90": "2.70", "p95": "2.85", "mode": "2"},
    "overall": {"total_revenue": "1234.50", "total_orders": "4", "total_quantity": "8"}
    | {"unique_customers": "2"},
}
# One cohort (2024-03), both clients active in its first month.
COHORT_COLUMNS = {
    "cohort_month": "date",
    "months_since_first_purchase": "integer",
    "cohort_size": "bigint",
    "active_clients": "bigint",
    "revenue": "decimal(18,2)",
    "retention_pct": "decimal(18,2)",
}
COHORTS = [("2024-03-01", 0, 2, 2, "1234.50", "100.00")]
# Anomalies need 28 days of history: four days have none.
ANOMALY_COLUMNS = {
    "sale_date": "date",
    "total_revenue": "decimal(18,2)",
    "trailing_mean": "decimal(18,2)",
    "trailing_std": "double",
    "z_score": "double",
    "direction": "varchar",
}
# Bronze: 4 client lines (1 refused), 6 purchase lines (2 refused).
CLIENTS_FILE = "clients/ingest_date=2024-03-05/clients__20240305T070000000000Z__aaaaaaaaaaaa.csv"
PURCHASES_FILE = (
    "purchases/ingest_date=2024-03-05/purchases__20240305T070000000000Z__bbbbbbbbbbbb.csv"
)
QUALITY_REPORT = {
    "entities": {
        "clients": {
            "quarantine": {"invalid_client_id": 1, "duplicate_client": 0},
            "bronze_rows": 4,
            "silver_rows": 3,
            "quarantined_rows": 1,
            "quality_score": 75.0,
        },
        "purchases": {
            "quarantine": {"unknown_product": 1, "invalid_price": 1},
            "bronze_rows": 6,
            "silver_rows": 4,
            "quarantined_rows": 2,
            "quality_score": 66.67,
        },
    },
    "overall": {"bronze_rows": 10, "silver_rows": 7, "quarantined_rows": 3, "quality_score": 70.0},
    "files": {
        CLIENTS_FILE: {"entity": "clients", "bronze_rows": 4, "silver_rows": 3}
        | {"quarantined_rows": 1, "quality_score": 75.0},
        PURCHASES_FILE: {"entity": "purchases", "bronze_rows": 6, "silver_rows": 4}
        | {"quarantined_rows": 2, "quality_score": 66.67},
    },
}
RAW_EMAIL = "dora.dunn@example.com"
CLIENTS_QUARANTINE_COLUMNS = {
    "id_client": "varchar",
    "name": "varchar",
    "email": "varchar",
    "subscription_date": "varchar",
    "country": "varchar",
    "reject_reason": "varchar",
    "reject_reasons": "varchar",
    "_raw_line": "varchar",
    "_source_file": "varchar",
    "_row_number": "bigint",
}
CLIENTS_QUARANTINE = [
    ("+4", "Dora Dunn", RAW_EMAIL, "2024-01-01", "Spain", "invalid_client_id")
    + ("invalid_client_id", f"+4,Dora Dunn,{RAW_EMAIL},2024-01-01,Spain", CLIENTS_FILE, 5),
]
PURCHASES_QUARANTINE_COLUMNS = {
    "id_purchase": "varchar",
    "id_client": "varchar",
    "product": "varchar",
    "price": "varchar",
    "quantity": "varchar",
    "purchase_date": "varchar",
    "total": "varchar",
    "reject_reason": "varchar",
    "reject_reasons": "varchar",
    "_source_file": "varchar",
    "_row_number": "bigint",
}
PURCHASES_QUARANTINE = [
    ("5", "1", "Toaster", "10.00", "1", "2024-03-01", "10.00", "unknown_product")
    + ("unknown_product", PURCHASES_FILE, 6),
    ("6", "2", "Mouse", "-1", "1", "2024-03-01", "-1", "invalid_price")
    + ("invalid_price", PURCHASES_FILE, 7),
]


def write_parquet(target: Path, columns: dict[str, str], rows: list[tuple]) -> None:
    conn = duckdb.connect()
    conn.execute(
        "create table t (" + ", ".join(f"{name} {kind}" for name, kind in columns.items()) + ")"
    )
    if rows:
        conn.executemany("insert into t values (" + ", ".join("?" * len(columns)) + ")", rows)
    conn.execute(f"copy t to '{target}' (format parquet)")
    conn.close()


def build_fixture_lake(lake: Path, run_id: str = RUN_ID, sales: list[tuple] = FACT_SALES) -> None:
    """Write the export layout of SPEC §5 for one run: the gold Parquet models the pages read,
    the silver quarantine models, quality_report.json and latest.json."""
    run_folder = lake / "gold" / "runs" / run_id
    run_folder.mkdir(parents=True)
    silver_folder = lake / "silver" / "runs" / run_id
    silver_folder.mkdir(parents=True)
    distribution = [
        (metric, statistic, value)
        for metric, values in DISTRIBUTION.items()
        for statistic, value in values.items()
    ]
    gold = {
        "fct_sales": (FACT_SALES_COLUMNS, sales),
        "rpt_sales_daily": (SALES_DAILY_COLUMNS, SALES_DAILY),
        "rpt_sales_weekly": (SALES_WEEKLY_COLUMNS, SALES_WEEKLY),
        "rpt_sales_monthly": (SALES_MONTHLY_COLUMNS, SALES_MONTHLY),
        "rpt_sales_anomalies": (ANOMALY_COLUMNS, []),
        "rpt_client_kpis": (CLIENT_KPIS_COLUMNS, CLIENT_KPIS),
        "rpt_cohort_retention": (COHORT_COLUMNS, COHORTS),
        "rpt_product_analytics": (PRODUCT_COLUMNS, PRODUCTS),
        "rpt_country_analytics": (COUNTRY_COLUMNS, COUNTRIES),
        "rpt_distribution_statistics": (
            {"metric": "varchar", "statistic": "varchar", "value": "decimal(18,4)"},
            distribution,
        ),
    }
    for model, (columns, rows) in gold.items():
        write_parquet(run_folder / f"{model}.parquet", columns, rows)
    silver = {
        "stg_retail__clients_quarantine": (CLIENTS_QUARANTINE_COLUMNS, CLIENTS_QUARANTINE),
        "stg_retail__purchases_quarantine": (PURCHASES_QUARANTINE_COLUMNS, PURCHASES_QUARANTINE),
    }
    for model, (columns, rows) in silver.items():
        write_parquet(silver_folder / f"{model}.parquet", columns, rows)
    report = {"run_id": run_id, "as_of_date": "2024-03-05", **QUALITY_REPORT}
    (run_folder / "quality_report.json").write_text(json.dumps(report))
    manifest = {
        "run_id": run_id,
        "as_of_date": "2024-03-05",
        "published_at": "2024-03-05T08:00:00Z",
        "run_folder": f"runs/{run_id}",
        "models": sorted(gold),
        "silver_models": sorted(silver),
        "documents": ["quality_report.json"],
    }
    (lake / "gold" / "latest.json").write_text(json.dumps(manifest))


@pytest.fixture
def use_lake(tmp_path, monkeypatch):
    """Point the settings at a local lake folder (created empty) for the test's duration."""

    def use(lake: Path) -> Path:
        monkeypatch.setenv("LAKE_DIR", str(lake))
        monkeypatch.setenv("LAKEHOUSE_STATE_DIR", str(tmp_path / "state"))
        reload_settings()
        return lake

    yield use
    get_settings.cache_clear()  # the next reader sees the restored environment


def run_app() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    return at.run()


def all_text(at: AppTest) -> str:
    parts = [
        e.value for kind in ("markdown", "info", "error", "caption", "title") for e in at.get(kind)
    ]
    return "\n".join(str(p) for p in parts)


def test_overview_shows_hand_computed_totals(tmp_path, use_lake):
    lake = use_lake(tmp_path / "lake")
    build_fixture_lake(lake)

    at = run_app()

    assert not at.exception
    assert not at.error
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {
        "Total revenue": "€1,234.50",
        "Orders": "4",
        "Clients": "2",
        "Average order value": "€308.63",
    }
    sidebar = "\n".join(m.value for m in at.sidebar.markdown)
    assert RUN_ID in sidebar
    assert "2024-03-05" in sidebar
    assert "2024-03-05 08:00:00 UTC" in sidebar

    [chart] = at.get("plotly_chart")
    figure = json.loads(chart.proto.spec)
    assert [trace["name"] for trace in figure["data"]] == [
        "Revenue",
        "7-day moving average",
    ]
    assert figure["layout"]["title"]["text"] == "Daily revenue"
    assert figure["layout"]["yaxis"]["title"]["text"] == "Revenue (€)"
    assert len(figure["data"][0]["x"]) == 4  # the day without sales is a point at zero

    # How tests of later pages reach them: through the entry point's navigation.
    at.switch_page("views/overview.py").run()
    assert not at.exception
    assert at.metric[0].value == "€1,234.50"


def test_a_new_publish_shows_without_restart(tmp_path, use_lake):
    lake = use_lake(tmp_path / "lake")
    build_fixture_lake(lake)
    at = run_app()
    assert at.metric[0].value == "€1,234.50"

    extra_sale = (5, 3, "Webcam", "Spain", "100.00", 1, "100.00", "2024-03-04")
    build_fixture_lake(lake, run_id="20240306T080000Z-next", sales=[*FACT_SALES, extra_sale])
    at.run()

    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Total revenue"] == "€1,334.50"
    assert {m.label: m.value for m in at.metric}["Clients"] == "3"
    assert "20240306T080000Z-next" in "\n".join(m.value for m in at.sidebar.markdown)


def test_no_export_shows_how_to_get_data(tmp_path, use_lake):
    use_lake(tmp_path / "empty-lake")

    at = run_app()

    assert not at.exception
    assert "No data yet" in all_text(at)
    assert "make demo" in all_text(at)
    assert not at.metric


def test_unreachable_store_names_the_endpoint(tmp_path, monkeypatch):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("LAKE_DIR", "")
    monkeypatch.setenv("S3_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("S3_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("S3_SECRET_ACCESS_KEY", "test-secret")
    monkeypatch.setenv("LAKEHOUSE_STATE_DIR", str(tmp_path / "state"))
    reload_settings()
    try:
        at = run_app()
    finally:
        get_settings.cache_clear()

    assert not at.exception
    [error] = at.error
    assert f"http://127.0.0.1:{port}" in error.value
    assert "lakehouse objectstore start" in all_text(at)


def test_broken_manifest_is_reported_not_raised(tmp_path, use_lake):
    lake = use_lake(tmp_path / "lake")
    (lake / "gold").mkdir(parents=True)
    (lake / "gold" / "latest.json").write_text("{not json")

    at = run_app()

    assert not at.exception
    [error] = at.error
    assert "latest.json" in error.value


def test_missing_model_is_reported_not_raised(tmp_path, use_lake):
    lake = use_lake(tmp_path / "lake")
    build_fixture_lake(lake)
    latest = lake / "gold" / "latest.json"
    latest.write_text(json.dumps({**json.loads(latest.read_text()), "models": ["fct_sales"]}))

    at = run_app()

    assert not at.exception
    assert len(at.metric) == 4  # what can be shown still is
    [error] = at.error
    assert "rpt_sales_daily" in error.value


def test_unreadable_parquet_is_reported_not_raised(tmp_path, use_lake):
    lake = use_lake(tmp_path / "lake")
    build_fixture_lake(lake)
    (lake / "gold" / "runs" / RUN_ID / "fct_sales.parquet").unlink()  # e.g. pruned meanwhile

    at = run_app()

    assert not at.exception
    [error] = at.error
    assert "fct_sales.parquet" in error.value


PAGES = {
    "overview": "views/overview.py",
    "temporal": "views/temporal.py",
    "clients": "views/clients.py",
    "products": "views/products.py",
    "geography": "views/geography.py",
    "statistics": "views/statistics.py",
    "data_quality": "views/data_quality.py",
}
# Per page: its title and the titles of the figures it must show.
EXPECTED_FIGURES = {
    "overview": ("Overview", {"Daily revenue"}),
    "temporal": (
        "Temporal",
        {"Daily revenue", "Daily revenue growth", "Daily orders vs customers"},
    ),
    "clients": (
        "Clients",
        {
            "Clients per RFM segment",
            "Purchasing clients by recency (R) and frequency (F) score",
            "Recency: days since last purchase",
            "Frequency: purchases",
            "Monetary: total spent",
            "Retention by first-purchase cohort (% of the cohort buying again)",
        },
    ),
    "products": (
        "Products",
        {
            "Revenue per product",
            "Quantity sold per product",
            "Share of revenue per product",
            "Customers per product",
            "Unit price range per product (min – average – max)",
        },
    ),
    "geography": (
        "Geography",
        {
            "Revenue per country",
            "Share of revenue per country",
            "Customers per country",
            "Average basket per country",
            "Revenue per customer by country",
        },
    ),
    "statistics": (
        "Statistics",
        {
            "Order value: distribution of order lines",
            "Unit price: distribution of order lines",
            "Quantity: distribution of order lines",
        },
    ),
    "data_quality": (
        "Data quality",
        {"Quarantined clients by reason", "Quarantined purchases by reason"},
    ),
}


def open_page(at: AppTest, page: str) -> AppTest:
    at.switch_page(PAGES[page]).run()
    assert not at.exception, f"{page}: {[e.value for e in at.exception]}"
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def figures(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def table(at: AppTest, key: str):
    """The frame of the table whose download button has this key (tables come in pairs)."""
    keys = [button.key for button in at.get("download_button")]
    return at.dataframe[keys.index(f"{key}_download")].value


def test_every_page_renders_its_figures_and_tables(tmp_path, use_lake):
    build_fixture_lake(use_lake(tmp_path / "lake"))
    at = run_app()

    for page, (title, expected) in EXPECTED_FIGURES.items():
        open_page(at, page)
        assert not at.error, page
        assert [t.value for t in at.title] == [title]
        shown = figures(at)
        assert expected <= {f["layout"]["title"]["text"] for f in shown}, page
        for figure in shown:  # every chart has axis titles (or is a box plot with one)
            assert figure["layout"]["yaxis"]["title"]["text"], (page, figure["layout"]["title"])
        # Every table shown can be downloaded as CSV.
        assert len(at.get("download_button")) == len(at.dataframe), page
        for frame in at.dataframe:
            assert frame.value is not None


def test_pages_show_gold_numbers_without_filters(tmp_path, use_lake):
    build_fixture_lake(use_lake(tmp_path / "lake"))
    at = run_app()

    open_page(at, "products")
    assert metrics(at) == {
        "Products sold": "4",
        "Top product": "Laptop",
        "Top product revenue": "€1,000.00",
        "Top product share": "81.00%",
    }
    products = table(at, "products_table")
    assert products["market_share_pct"].tolist() == [81.00, 12.80, 3.28, 2.92]
    assert products["top_countries"].tolist() == ["France", "Germany", "Germany", "France"]

    open_page(at, "geography")
    assert metrics(at) == {
        "Countries with sales": "2",
        "Top country": "France",
        "Top country revenue": "€1,036.00",
        "Top country share": "83.92%",
    }
    countries = table(at, "geography_table")
    assert countries["avg_order_value"].tolist() == [518.00, 99.25]
    assert countries["avg_revenue_per_customer"].tolist() == [1036.00, 198.50]

    open_page(at, "statistics")
    assert metrics(at) == {
        "Total revenue": "€1,234.50",
        "Order lines": "4",
        "Units sold": "8",
        "Customers": "2",
    }
    percentiles = table(at, "statistics_percentiles").set_index("metric")
    assert percentiles.loc["order_value", "p90"] == 747.40
    assert percentiles.loc["unit_price", "std"] == 482.3816
    box = next(f for f in figures(at) if f["data"][0]["type"] == "box")
    assert box["data"][0]["q1"] == [39.375]
    assert box["data"][0]["median"] == [99.25]
    assert box["data"][0]["upperfence"] == [1000.0]

    open_page(at, "clients")
    assert metrics(at) == {
        "Clients": "3",
        "Purchasing clients": "2",
        "Active clients": "2",
        "High-value clients": "1",
        "At-risk clients": "0",
    }
    segments = table(at, "clients_segments_table").set_index("rfm_segment")["clients"]
    assert segments.to_dict() == {"Champions": 1, "Loyal Customers": 1, "No Purchases": 1}
    top = table(at, "clients_top")
    assert top["client_id"].tolist() == [1, 2]
    assert top["email_masked"].tolist() == ["a***@example.com", "b***@example.com"]
    assert table(at, "clients_at_risk").empty
    assert table(at, "clients_cohorts_table")["retention_pct"].tolist() == [100.0]

    open_page(at, "temporal")
    daily = table(at, "temporal_sales")
    assert daily["total_revenue"].tolist() == [1040.50, 36.00, 0.00, 158.00]
    assert daily["revenue_7d_avg"].tolist()[-1] == 308.63
    at.segmented_control(key="temporal_grain").set_value("Weekly").run()
    assert not at.exception
    weekly = table(at, "temporal_sales")
    assert weekly["total_revenue"].tolist() == [1076.50, 158.00]
    assert weekly["revenue_growth_pct"].tolist()[-1] == -85.32

    open_page(at, "data_quality")
    assert {k: v for k, v in metrics(at).items() if k.startswith("Quality")} == {
        "Quality score · clients": "75.00%",
        "Quality score · purchases": "66.67%",
        "Quality score · overall": "70.00%",
    }
    assert metrics(at)["Run id"] == RUN_ID
    reconciliation = table(at, "data_quality_reconciliation")
    assert reconciliation["source_file"].tolist() == ["all", "all", CLIENTS_FILE, PURCHASES_FILE]
    assert reconciliation["reconciles"].all()
    quarantine = table(at, "data_quality_quarantine").set_index("reject_reason")["rows"]
    assert quarantine["invalid_price"] == 1
    refused = table(at, "data_quality_examples_clients")
    shown = refused.astype(str).to_csv()
    assert RAW_EMAIL not in shown
    assert "d***@example.com" in refused["email"].tolist()
    assert "d***@example.com" in refused["_raw_line"].iloc[0]


def test_one_country_filter_recomputes_from_fct_sales(tmp_path, use_lake):
    build_fixture_lake(use_lake(tmp_path / "lake"))
    at = run_app()
    at.multiselect(key="filter_countries").set_value(["France"]).run()
    assert not at.exception

    # France: orders 1 and 3 of client 1, €1,000.00 + €36.00.
    assert metrics(at) == {
        "Total revenue": "€1,036.00",
        "Orders": "2",
        "Clients": "1",
        "Average order value": "€518.00",
    }
    open_page(at, "geography")
    assert metrics(at)["Countries with sales"] == "1"
    assert metrics(at)["Top country share"] == "100.00%"
    open_page(at, "products")
    assert metrics(at)["Top product share"] == "96.53%"  # 1000 / 1036
    assert table(at, "products_table")["product"].tolist() == ["Laptop", "Charger"]
    open_page(at, "statistics")
    assert metrics(at)["Total revenue"] == "€1,036.00"
    assert metrics(at)["Units sold"] == "4"
    open_page(at, "clients")
    assert table(at, "clients_top")["total_spent"].tolist() == [1036.00]
    assert any("pre-aggregated report" in c.value for c in at.caption)
    open_page(at, "temporal")
    daily = table(at, "temporal_sales")
    assert daily["total_revenue"].tolist() == [1000.00, 36.00]
    assert daily["revenue_growth_pct"].tolist()[-1] == -96.40


def test_date_range_filter(tmp_path, use_lake):
    build_fixture_lake(use_lake(tmp_path / "lake"))
    at = run_app()
    at.date_input(key="filter_dates").set_value((date(2024, 3, 2), date(2024, 3, 4))).run()
    assert not at.exception

    # Orders 3 and 4: €36.00 + €158.00 from both clients.
    assert metrics(at) == {
        "Total revenue": "€194.00",
        "Orders": "2",
        "Clients": "2",
        "Average order value": "€97.00",
    }

    # The full range again is no filter: the gold numbers.
    at.date_input(key="filter_dates").set_value((date(2024, 3, 1), date(2024, 3, 4))).run()
    assert metrics(at)["Total revenue"] == "€1,234.50"


@pytest.mark.parametrize("page", list(PAGES))
def test_no_export_shows_how_to_get_data_on_every_page(tmp_path, use_lake, page):
    use_lake(tmp_path / "empty-lake")
    at = run_app()

    at.switch_page(PAGES[page]).run()

    assert not at.exception
    assert "No data yet" in all_text(at)
    assert not at.metric
    assert not at.get("plotly_chart")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("1234.5"), "€1,234.50"),
        (Decimal("308.625"), "€308.63"),  # half away from zero
        (Decimal("-308.625"), "-€308.63"),
        (2.675, "€2.68"),  # the float's shortest repr, not its binary value (2.67499…)
        (0, "€0.00"),
        (1234567, "€1,234,567.00"),
        (None, "—"),
    ],
)
def test_format_currency(value, expected):
    assert formatting.format_currency(value) == expected


def test_format_count_percent_and_timestamp():
    assert formatting.format_count(1234567) == "1,234,567"
    assert formatting.format_count(None) == "—"
    assert formatting.format_percent(12.345) == "12.35%"
    assert formatting.format_percent(Decimal("-96.5449")) == "-96.54%"
    assert formatting.format_percent(None) == "—"
    assert formatting.format_timestamp("2024-03-05T08:00:00Z") == "2024-03-05 08:00:00 UTC"
    assert formatting.format_timestamp("2024-03-05T09:30:00+01:00") == "2024-03-05 08:30:00 UTC"
    assert formatting.format_timestamp("yesterday") == "yesterday"


def test_card_money_is_exact_below_a_million_and_short_above():
    from decimal import Decimal

    from dashboard.formatting import format_currency_short

    assert format_currency_short(Decimal("999999.99")) == "€999,999.99"
    assert format_currency_short(Decimal("10173372.67")) == "€10.17M"
    assert format_currency_short(Decimal("1005000")) == "€1.01M"  # 1.005 → half away from zero
    assert format_currency_short(None) == "—"
