"""Dashboard tests: the real entry point rendered by Streamlit's AppTest over a tiny fixture lake.

The fixture numbers are computed by hand (see FACT_SALES): four orders from two clients over
2024-03-01..04, with a day without sales, revenue €1,234.50 and an average order value of
exactly €308.625, which must show as €308.63 (half away from zero, not banker's rounding).
Every other gold model a page reads is written from the same four orders, by hand (the
comments say how each number follows), plus a third client without purchases.
"""

from __future__ import annotations

import base64
import json
import socket
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import data, formatting
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
# The bins of rpt_distribution_histograms: bin = least(floor((x - min) / width), bins - 1).
# Order totals 36, 40.50, 158, 1000: width (1000 - 36) / 30; 36 and 40.50 in bin 0, 158 in
# bin 3 (122 / 32.13 = 3.8), 1000 in the last. Unit prices 12, 20.25, 79, 1000: width 988 / 30;
# 12 and 20.25 in bin 0, 79 in bin 2 (67 / 32.93 = 2.03), 1000 in the last. Quantities 1, 2, 2,
# 3: whole numbers, width 1. Purchasing clients (20 bins): recency 3 and 1 (width 1), frequency
# 2 and 2 (min = max, width 1), spend 1036 and 198.50 (width 837.50 / 20).
HISTOGRAM_COLUMNS = {
    "metric": "varchar",
    "bin_number": "integer",
    "bin_start": "double",
    "bin_end": "double",
    "observations": "bigint",
}


def _bins(metric: str, low: float, width: float, counts: dict[int, int]) -> list[tuple]:
    return [(metric, n, low + n * width, low + (n + 1) * width, c) for n, c in counts.items()]


HISTOGRAMS = (
    _bins("order_value", 36.0, 964 / 30, {0: 2, 3: 1, 29: 1})
    + _bins("unit_price", 12.0, 988 / 30, {0: 2, 2: 1, 29: 1})
    + _bins("quantity", 1.0, 1.0, {0: 1, 1: 2, 2: 1})
    + _bins("recency", 1.0, 1.0, {0: 1, 2: 1})
    + _bins("frequency", 2.0, 1.0, {0: 2})
    + _bins("monetary", 198.5, 837.5 / 20, {0: 1, 19: 1})
)
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


def build_fixture_lake(
    lake: Path,
    run_id: str = RUN_ID,
    sales: list[tuple] = FACT_SALES,
    daily: list[tuple] = SALES_DAILY,
    client_kpis: list[tuple] = CLIENT_KPIS,
) -> None:
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
        "rpt_sales_daily": (SALES_DAILY_COLUMNS, daily),
        "rpt_sales_weekly": (SALES_WEEKLY_COLUMNS, SALES_WEEKLY),
        "rpt_sales_monthly": (SALES_MONTHLY_COLUMNS, SALES_MONTHLY),
        "rpt_sales_anomalies": (ANOMALY_COLUMNS, []),
        "rpt_client_kpis": (CLIENT_KPIS_COLUMNS, client_kpis),
        "rpt_cohort_retention": (COHORT_COLUMNS, COHORTS),
        "rpt_product_analytics": (PRODUCT_COLUMNS, PRODUCTS),
        "rpt_country_analytics": (COUNTRY_COLUMNS, COUNTRIES),
        "rpt_distribution_statistics": (
            {"metric": "varchar", "statistic": "varchar", "value": "decimal(22,4)"},
            distribution,
        ),
        "rpt_distribution_histograms": (HISTOGRAM_COLUMNS, HISTOGRAMS),
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
    manifest["row_counts"] = {"fct_sales": len(sales), "rpt_client_kpis": len(CLIENT_KPIS)}
    (run_folder / "_manifest.json").write_text(json.dumps(manifest))  # as the export does
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
    # No filter: the whole history. Its changes compare the last 30 days up to the last sale
    # (2024-02-04..03-04, every sale) with the 30 days before, which have no sales: no delta.
    assert metrics(at) == {
        "Total revenue": "€1,234.50",
        "Orders": "4",
        "Clients": "2",
        "Average order value": "€308.63",
        # Leaders: Laptop 1000 / 1234.5 = 81.00 %; France and client 1: 1036 / 1234.5.
        "Top product": "Laptop",
        "Top country": "France",
        "Top client": "Ann Arbor",
        "Total revenue (30 days)": "€1,234.50",
        "Orders (30 days)": "4",
        "Clients (30 days)": "2",
        "Average order value (30 days)": "€308.63",
    }
    assert all(not m.delta for m in at.metric if "revenue" in m.label.lower())
    # All-time totals have no period before them: their cards compare nothing (the 30-day ones
    # do), whatever the data's length.
    helps = {m.label: m.help for m in at.metric}
    assert all("Change:" not in helps[label] for label in HEADLINE_CARDS)
    assert "Change:" in helps["Total revenue (30 days)"]
    leaders = {m.label: m.delta for m in at.metric if m.label.startswith("Top")}
    assert leaders == {
        "Top product": "€1,000.00 · 81.00% of revenue",
        "Top country": "€1,036.00 · 83.92% of revenue",
        "Top client": "#1 · €1,036.00 · 83.92% of revenue",
    }
    assert any("2024-02-04 – 2024-03-04 vs the 30 days before" in c.value for c in at.caption)
    sidebar = "\n".join(m.value for m in at.sidebar.markdown)
    assert RUN_ID in sidebar
    assert "2024-03-05" in sidebar
    assert "2024-03-05 08:00:00 UTC" in sidebar
    assert "http://127.0.0.1:8080" in sidebar  # the dbt docs (lineage) link

    shown = {f["layout"]["title"]["text"]: f for f in figures(at)}
    daily = shown["Daily revenue"]
    assert [trace["name"] for trace in daily["data"]] == ["Revenue", "7-day moving average"]
    assert daily["layout"]["yaxis"]["title"]["text"] == "Revenue (€)"
    assert len(daily["data"][0]["x"]) == 4  # the day without sales is a point at zero
    # Clients 1 and 2 bought within 90 days of 2024-03-05; client 3 never bought.
    [activity] = shown["Active vs inactive clients"]["data"]
    assert dict(zip(activity["labels"], decoded(activity["values"]), strict=True)) == {
        "Active": 2,
        "Inactive": 0,
        "No purchases": 1,
    }
    recent = table(at, "overview_recent_table")
    assert len(recent) == 30
    assert recent["total_revenue"].sum() == 1234.50
    assert recent.set_index("sale_date")["total_revenue"].iloc[-4:].tolist() == [
        1040.50,
        36.00,
        0.00,
        158.00,
    ]
    assert recent["previous_revenue"].sum() == 0

    # How tests of later pages reach them: through the entry point's navigation.
    at.switch_page("views/overview.py").run()
    assert not at.exception
    assert at.metric[0].value == "€1,234.50"


def test_overview_deltas_compare_with_the_period_just_before(tmp_path, use_lake):
    build_fixture_lake(use_lake(tmp_path / "lake"))
    at = run_app()
    # 2024-03-03..04 (2 days) against 03-01..02: order 4 (€158.00, client 2) against
    # orders 1-3 (€1,076.50, clients 1 and 2).
    at.date_input(key="filter_dates").set_value((date(2024, 3, 3), date(2024, 3, 4))).run()
    assert not at.exception

    cards = {m.label: (m.value, m.delta) for m in at.metric}
    assert cards["Total revenue"] == ("€158.00", "-85.32%")  # (158 - 1076.5) / 1076.5
    assert cards["Orders"] == ("1", "-66.67%")  # (1 - 3) / 3
    assert cards["Clients"] == ("1", "-50.00%")
    # Exact averages: 158 against 1076.5 / 3 = 358.8333…, so -55.9684… %.
    assert cards["Average order value"] == ("€158.00", "-55.97%")
    assert any(
        "2024-03-03 – 2024-03-04 vs the previous 2 days (2024-03-01 – 2024-03-02)" in c.value
        for c in at.caption
    )
    # The 30-day section ends at the range's end: 2024-02-04..03-04, all four sales.
    assert cards["Total revenue (30 days)"] == ("€1,234.50", "")  # no sales before: no delta


def test_comparison_windows():
    choices = data.FilterChoices(date(2023, 7, 1), date(2025, 6, 30), (), ())

    whole = data.headline_comparison(data.NO_FILTER, choices)
    assert whole.current == data.Window(date(2025, 6, 1), date(2025, 6, 30))
    assert whole.previous == data.Window(date(2025, 5, 2), date(2025, 5, 31))
    assert whole.current.days == whole.previous.days == 30

    # A chosen range: the same number of days just before it (2024 is a leap year).
    ranged = data.headline_comparison(
        data.SalesFilter(date(2024, 3, 1), date(2024, 3, 31)), choices
    )
    assert ranged.previous == data.Window(date(2024, 1, 30), date(2024, 2, 29))
    # Only an end date: the range still starts at the first sale, so the last 30 days.
    ended = data.headline_comparison(data.SalesFilter(end_date=date(2024, 12, 31)), choices)
    assert ended.current == data.Window(date(2024, 12, 2), date(2024, 12, 31))

    assert not whole.partial_base and not ranged.partial_base and not ended.partial_base

    # An earlier window reaching before the first sale (2023-07-01) is a partial base.
    july = data.SalesFilter(date(2023, 7, 10), date(2023, 8, 31))
    early = data.headline_comparison(july, choices)
    assert early.previous.start == date(2023, 5, 18) and early.partial_base
    first = choices.first_date
    assert data.recent_days(date(2023, 7, 20), first).partial_base
    assert not data.recent_days(date(2023, 8, 29), first).partial_base  # 07-01..07-30: whole

    empty = data.FilterChoices(None, None, (), ())
    assert data.headline_comparison(data.NO_FILTER, empty) is None


def test_change_pct_rounds_once_half_away_from_zero():
    assert data.change_pct(Decimal("158.00"), Decimal("1076.50")) == Decimal("-85.32")
    assert data.change_pct(3, 2) == Decimal("50.00")
    assert data.change_pct(Decimal("1.00125"), Decimal("1")) == Decimal("0.13")  # 0.125
    assert data.change_pct(Decimal("0.99875"), Decimal("1")) == Decimal("-0.13")
    assert data.change_pct(5, 0) is None  # a zero base has no growth
    assert data.change_pct(None, 5) is None
    assert formatting.format_change(Decimal("-85.32")) == "-85.32%"
    assert formatting.format_change(Decimal("0")) == "+0.00%"
    assert formatting.format_change(None) is None


def test_a_new_publish_shows_without_restart(tmp_path, use_lake):
    lake = use_lake(tmp_path / "lake")
    build_fixture_lake(lake)
    at = run_app()
    assert at.metric[0].value == "€1,234.50"

    # The next run: client 3 bought a €100.00 webcam on 2024-03-04.
    extra_sale = (5, 3, "Webcam", "Spain", "100.00", 1, "100.00", "2024-03-04")
    march_4th = ("2024-03-04", "258.00", 2, 2, 3, "129.00", None, None)
    march_4th += ("322.13", "1.25", "322.13", "1.25", False)
    client_3 = (3, "Cy Cole", None, "Spain", 1, "100.00", "2024-03-04", 1)
    client_3 += (True, False, False, 5, 1, 1, "New Customers")
    build_fixture_lake(
        lake,
        run_id="20240306T080000Z-next",
        sales=[*FACT_SALES, extra_sale],
        daily=[*SALES_DAILY[:3], march_4th],
        client_kpis=[*CLIENT_KPIS[:2], client_3],
    )
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
    manifest = json.loads(latest.read_text())
    models = [m for m in manifest["models"] if m != "rpt_sales_anomalies"]
    latest.write_text(json.dumps({**manifest, "models": models}))

    at = run_app()
    assert not at.exception and not at.error  # the Overview does not need the anomalies
    at.switch_page(PAGES["temporal"]).run()

    assert not at.exception
    assert len(at.metric) == 4  # what can be shown still is
    [error] = at.error
    assert "rpt_sales_anomalies" in error.value


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
    "overview": (
        "Overview",
        {
            "Daily revenue",
            "Active vs inactive clients",
            "Clients per RFM segment",
            "Daily revenue, last 30 days",
        },
    ),
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
        {
            "Quarantined clients by reason",
            "Quarantined purchases by reason",
            "Bronze rows: kept in silver or quarantined",
        },
    ),
}


def open_page(at: AppTest, page: str) -> AppTest:
    at.switch_page(PAGES[page]).run()
    assert not at.exception, f"{page}: {[e.value for e in at.exception]}"
    return at


HEADLINE_CARDS = ("Total revenue", "Orders", "Clients", "Average order value")


def headline(at: AppTest) -> dict[str, str]:
    """The Overview's four headline cards (label → value)."""
    return {label: metrics(at)[label] for label in HEADLINE_CARDS}


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def decoded(values: list | dict) -> list:
    """A figure's data array: Plotly writes numeric arrays as base64 typed arrays."""
    if isinstance(values, dict) and "bdata" in values:
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]).tolist()
    return values


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
        for figure in shown:  # every chart with axes has axis titles, and hover text
            if figure["data"][0]["type"] != "pie":
                assert figure["layout"]["yaxis"]["title"]["text"], (page, figure["layout"])
            assert all(t.get("hovertemplate") or t["type"] == "box" for t in figure["data"])
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
    published = next(m for m in at.metric if m.label == "Published")
    assert published.delta == "2024-03-05 08:00:00 UTC"
    assert metrics(at)["As-of date"] == "2024-03-05"
    assert metrics(at)["Runs kept"] == "1"
    reconciliation = table(at, "data_quality_reconciliation")
    assert reconciliation["source_file"].tolist() == ["all", "all", CLIENTS_FILE, PURCHASES_FILE]
    assert reconciliation["reconciles"].all()
    [split] = [f for f in figures(at) if f["layout"]["title"]["text"].startswith("Bronze rows")]
    assert [(t["name"], decoded(t["x"])) for t in split["data"]] == [
        ("Silver", [3, 4]),  # clients, purchases
        ("Quarantined", [1, 2]),
    ]
    quarantine = table(at, "data_quality_quarantine").set_index("reject_reason")["rows"]
    assert quarantine["invalid_price"] == 1
    refused = table(at, "data_quality_examples_clients")
    shown = refused.astype(str).to_csv()
    assert RAW_EMAIL not in shown
    assert "d***@example.com" in refused["email"].tolist()
    assert "d***@example.com" in refused["_raw_line"].iloc[0]
    runs = table(at, "data_quality_runs")
    assert runs[["run_id", "orders", "quality_score", "displayed"]].values.tolist() == [
        [RUN_ID, 4, 70.0, True]
    ]


def test_one_country_filter_recomputes_from_fct_sales(tmp_path, use_lake):
    build_fixture_lake(use_lake(tmp_path / "lake"))
    at = run_app()
    at.multiselect(key="filter_countries").set_value(["France"]).run()
    assert not at.exception

    # France: orders 1 and 3 of client 1, €1,000.00 + €36.00.
    assert headline(at) == {
        "Total revenue": "€1,036.00",
        "Orders": "2",
        "Clients": "1",
        "Average order value": "€518.00",
    }
    assert metrics(at)["Top product"] == "Laptop"
    assert metrics(at)["Top country"] == "France"
    leaders = {m.label: (m.value, m.delta) for m in at.metric if m.label.startswith("Top")}
    assert leaders["Top client"] == ("Ann Arbor", "#1 · €1,036.00 · 100.00% of revenue")
    assert leaders["Top product"][1] == "€1,000.00 · 96.53% of revenue"  # 1000 / 1036
    open_page(at, "geography")
    assert metrics(at)["Countries with sales"] == "1"
    assert metrics(at)["Top country share"] == "100.00%"
    # A share of what the filters keep, and the card says so.
    share = next(m for m in at.metric if m.label == "Top country share")
    assert share.help == "Share of the filtered revenue."
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
    assert metrics(at)["Latest day"] == "€36.00"
    assert not daily["is_partial_period"].any()  # a day with a sale is covered whole
    at.segmented_control(key="temporal_grain").set_value("Weekly").run()
    # One ISO week (Mon 2024-02-26) with France's sales on Fri 03-01 and Sat 03-02 only.
    weekly = table(at, "temporal_sales")
    assert weekly[["total_revenue", "is_partial_period"]].values.tolist() == [[1036.00, True]]


def test_every_country_chosen_is_no_filter(tmp_path, use_lake):
    build_fixture_lake(use_lake(tmp_path / "lake"))
    at = run_app()
    unfiltered = metrics(at)
    # The fixture's sales are in France and Germany: both chosen select every sale, so the
    # pages read gold as published instead of re-aggregating fct_sales.
    at.multiselect(key="filter_countries").set_value(["France", "Germany"]).run()
    assert not at.exception
    assert metrics(at) == unfiltered
    assert not any("recomputed" in c.value for c in at.sidebar.caption)
    at.multiselect(key="filter_countries").set_value(["France"]).run()
    assert any("recomputed" in c.value for c in at.sidebar.caption)


def test_date_range_filter(tmp_path, use_lake):
    build_fixture_lake(use_lake(tmp_path / "lake"))
    at = run_app()
    at.date_input(key="filter_dates").set_value((date(2024, 3, 2), date(2024, 3, 4))).run()
    assert not at.exception

    # Orders 3 and 4: €36.00 + €158.00 from both clients. The 3 days before, 2024-02-28..03-01,
    # start before the first sale (03-01): a change against them would measure where the data
    # starts, so none is shown (-81.36 % for revenue otherwise), and the help says why.
    cards = {m.label: (m.value, m.delta) for m in at.metric}
    assert {label: cards[label] for label in HEADLINE_CARDS} == {
        "Total revenue": ("€194.00", ""),
        "Orders": ("2", ""),
        "Clients": ("2", ""),
        "Average order value": ("€97.00", ""),
    }
    revenue_card = next(m for m in at.metric if m.label == "Total revenue")
    assert "starts before the first sale" in revenue_card.help

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


def test_format_age():
    now = datetime(2024, 3, 5, 11, 5, 30, tzinfo=UTC)
    assert formatting.format_age("2024-03-05T11:05:00Z", now) == "just now"
    assert formatting.format_age("2024-03-05T10:23:00Z", now) == "42 min ago"
    assert formatting.format_age("2024-03-05T08:00:00Z", now) == "3 h 05 min ago"
    assert formatting.format_age("2024-03-05T09:00:00+01:00", now) == "3 h 05 min ago"
    assert formatting.format_age("2024-03-01T08:00:00Z", now) == "4 days ago"
    assert formatting.format_age("soon", now) == "soon"


def test_card_money_is_exact_below_a_million_and_short_above():
    from decimal import Decimal

    from dashboard.formatting import format_currency_short

    assert format_currency_short(Decimal("999999.99")) == "€999,999.99"
    assert format_currency_short(Decimal("10173372.67")) == "€10.17M"
    assert format_currency_short(Decimal("1005000")) == "€1.01M"  # 1.005 → half away from zero
    assert format_currency_short(None) == "—"


# --- a real export: with no filter, every number on screen is the gold model's ---------------
class Gold:
    """SQL over the Parquet models of the run `latest.json` points at (views named as models)."""

    def __init__(self, lake: Path):
        latest = json.loads((lake / "gold" / "latest.json").read_text())
        self.folder = lake / "gold" / latest["run_folder"]
        self.report = json.loads((self.folder / "quality_report.json").read_text())
        self.conn = duckdb.connect()
        for parquet in self.folder.glob("*.parquet"):
            self.conn.execute(
                f"create view {parquet.stem} as select * from read_parquet('{parquet}')"
            )

    def rows(self, sql: str) -> list[list]:
        return [list(row) for row in self.conn.execute(sql).fetchall()]

    def one(self, sql: str) -> dict:
        cursor = self.conn.execute(sql)
        names = [d[0] for d in cursor.description]
        return dict(zip(names, cursor.fetchone(), strict=True))


def shown_rows(at: AppTest, key: str, columns: list[str]) -> list[list]:
    frame = table(at, key)[columns]
    return [[None if pd.isna(v) else v for v in row] for row in frame.values.tolist()]


def _numpy_bins(values: np.ndarray, bins: int, whole_numbers: bool) -> dict[int, int]:
    """The binning rule written again with numpy: equal widths from the minimum to the
    maximum, the maximum in the last bin, whole-number widths of at least 1."""
    low, high = values.min(), values.max()
    if whole_numbers:
        width = max(1.0, np.ceil((high - low + 1) / bins))
    else:
        width = (high - low) / bins if high > low else 1.0
    numbers = np.minimum(np.floor((values - low) / width), bins - 1).astype(int)
    found, counts = np.unique(numbers, return_counts=True)
    return dict(zip(found.tolist(), counts.tolist(), strict=True))


def test_published_histograms_equal_a_second_binning(lake_dir_run, monkeypatch):
    """rpt_distribution_histograms (binned by dbt) against numpy on the same rows, and the
    dashboard's filtered binning (every country chosen) against both."""
    lake, _, _ = lake_dir_run
    gold = Gold(lake)
    sources = {
        "order_value": ("select cast(total as double) from fct_sales", 30, False),
        "unit_price": ("select cast(price as double) from fct_sales", 30, False),
        "quantity": ("select cast(quantity as double) from fct_sales", 30, True),
        "recency": (
            "select cast(days_since_last_purchase as double) from rpt_client_kpis "
            "where total_purchases > 0",
            20,
            True,
        ),
        "frequency": (
            "select cast(total_purchases as double) from rpt_client_kpis where total_purchases > 0",
            20,
            True,
        ),
        "monetary": (
            "select cast(total_spent as double) from rpt_client_kpis where total_purchases > 0",
            20,
            False,
        ),
    }
    published = {}
    for metric, (sql, bins, whole_numbers) in sources.items():
        values = np.array([value for (value,) in gold.rows(sql)])
        published[metric] = dict(
            gold.rows(
                "select bin_number, observations from rpt_distribution_histograms "
                f"where metric = '{metric}' order by bin_number"
            )
        )
        assert published[metric] == _numpy_bins(values, bins, whole_numbers), metric
        assert sum(published[metric].values()) == len(values)

    monkeypatch.setenv("LAKE_DIR", str(lake))
    reload_settings()
    try:
        manifest = data.load_manifest()
        countries = data.filter_choices(manifest).countries
        filtered = data.sales_histograms(manifest, data.SalesFilter(countries=countries))
        unfiltered = data.sales_histograms(manifest)
        for metric in ("order_value", "unit_price", "quantity"):
            assert filtered[metric]["orders"].tolist() == unfiltered[metric]["orders"].tolist()
            assert filtered[metric]["bin_start"].tolist() == pytest.approx(
                unfiltered[metric]["bin_start"].tolist()
            )
            assert unfiltered[metric]["orders"].tolist() == list(published[metric].values())
    finally:
        get_settings.cache_clear()


def test_unfiltered_pages_equal_the_gold_models(lake_dir_run, monkeypatch):
    lake, _, _ = lake_dir_run
    monkeypatch.setenv("LAKE_DIR", str(lake))
    reload_settings()
    gold = Gold(lake)
    summary = gold.one("select * from rpt_gold_summary")
    try:
        at = run_app()
        assert not at.exception and not at.error

        # Overview: the headline cards and the leaders are rpt_gold_summary's.
        exact_aov = summary["total_revenue"] / summary["fact_rows"]
        assert headline(at) == {
            "Total revenue": formatting.format_currency_short(summary["total_revenue"]),
            "Orders": formatting.format_count(summary["fact_rows"]),
            "Clients": formatting.format_count(summary["purchasing_clients"]),
            "Average order value": formatting.format_currency(exact_aov),
        }
        assert metrics(at)["Top product"] == summary["top_product"]
        assert metrics(at)["Top country"] == summary["top_country"]
        assert metrics(at)["Top client"] == summary["top_client_name"]
        top_client = next(m for m in at.metric if m.label == "Top client")
        assert top_client.delta.startswith(f"#{summary['top_client_id']} · ")
        recent = table(at, "overview_recent_table")
        assert shown_rows(at, "overview_recent_table", ["total_revenue", "total_orders"]) == (
            gold.rows(
                f"""
                select cast(total_revenue as double), total_orders from rpt_sales_daily
                where sale_date between '{recent["sale_date"].min()}'
                    and '{recent["sale_date"].max()}'
                order by sale_date
                """
            )
        )

        # Temporal: the three period reports, row for row.
        open_page(at, "temporal")
        measures = ["total_revenue", "total_orders", "unique_customers", "revenue_growth_pct"]
        gold_measures = (
            "cast(total_revenue as double), total_orders, unique_customers, "
            "cast(revenue_growth_pct as double)"
        )
        assert shown_rows(at, "temporal_sales", [*measures, "revenue_7d_avg"]) == gold.rows(
            f"select {gold_measures}, cast(revenue_7d_avg as double) "
            "from rpt_sales_daily order by sale_date"
        )
        for grain, model, key in (
            ("Weekly", "rpt_sales_weekly", "week_start_date"),
            ("Monthly", "rpt_sales_monthly", "month_start_date"),
        ):
            at.segmented_control(key="temporal_grain").set_value(grain).run()
            assert shown_rows(at, "temporal_sales", measures) == gold.rows(
                f"select {gold_measures} from {model} order by {key}"
            )

        # Clients: the counts, the top 10, the segments and the cohorts of rpt_client_kpis.
        open_page(at, "clients")
        assert metrics(at) == {
            "Clients": formatting.format_count(summary["clients"]),
            "Purchasing clients": formatting.format_count(summary["purchasing_clients"]),
            "Active clients": formatting.format_count(summary["active_clients"]),
            "High-value clients": formatting.format_count(summary["high_value_clients"]),
            "At-risk clients": formatting.format_count(summary["at_risk_clients"]),
        }
        assert shown_rows(at, "clients_top", ["client_id", "email_masked", "total_spent"]) == (
            gold.rows(
                "select client_id, email_masked, cast(total_spent as double) from "
                "rpt_client_kpis where total_purchases > 0 "
                "order by total_spent desc, client_id limit 10"
            )
        )
        segments = table(at, "clients_segments_table").set_index("rfm_segment")["clients"]
        assert segments.to_dict() == dict(
            gold.rows("select rfm_segment, count(*) from rpt_client_kpis group by all")
        )
        cohorts = ["cohort_size", "active_clients", "retention_pct"]
        assert shown_rows(at, "clients_cohorts_table", cohorts) == gold.rows(
            "select cohort_size, active_clients, cast(retention_pct as double) "
            "from rpt_cohort_retention order by cohort_month, months_since_first_purchase"
        )

        # Products and Geography: the reports, every column shown.
        open_page(at, "products")
        product_columns = ["product", "total_revenue", "market_share_pct", "total_quantity_sold"]
        product_columns += ["total_orders", "unique_customers", "min_price", "avg_price"]
        product_columns += ["max_price", "top_countries"]
        assert shown_rows(at, "products_table", product_columns) == gold.rows(
            "select product, cast(total_revenue as double), cast(market_share_pct as double), "
            "total_quantity_sold, total_orders, unique_customers, cast(min_price as double), "
            "cast(avg_price as double), cast(max_price as double), top_countries "
            "from rpt_product_analytics order by total_revenue desc, product"
        )
        open_page(at, "geography")
        country_columns = ["country", "total_revenue", "market_share_pct", "unique_customers"]
        country_columns += ["total_orders", "avg_order_value", "avg_revenue_per_customer"]
        assert shown_rows(at, "geography_table", country_columns) == gold.rows(
            "select country, cast(total_revenue as double), cast(market_share_pct as double), "
            "unique_customers, total_orders, cast(avg_order_value as double), "
            "cast(avg_revenue_per_customer as double) "
            "from rpt_country_analytics order by total_revenue desc, country"
        )

        # Statistics: rpt_distribution_statistics, statistic by statistic.
        open_page(at, "statistics")
        shown = table(at, "statistics_percentiles").set_index("metric")
        for metric, statistic, value in gold.rows(
            "select metric, statistic, cast(value as double) from rpt_distribution_statistics "
            "where metric != 'overall' and value is not null"
        ):
            assert shown.loc[metric, statistic] == value, (metric, statistic)
        assert metrics(at)["Total revenue"] == formatting.format_currency_short(
            summary["total_revenue"]
        )

        # Data quality: quality_report.json.
        open_page(at, "data_quality")
        report = gold.report
        assert metrics(at)["Quality score · overall"] == formatting.format_percent(
            report["overall"]["quality_score"]
        )
        quarantine = table(at, "data_quality_quarantine")
        assert quarantine["rows"].sum() == report["overall"]["quarantined_rows"]
        assert table(at, "data_quality_reconciliation")["reconciles"].all()
    finally:
        get_settings.cache_clear()


def test_histograms_bin_the_order_lines_on_the_published_range(tmp_path, use_lake):
    build_fixture_lake(use_lake(tmp_path / "lake"))
    at = run_app()
    open_page(at, "statistics")

    def bars(title: str) -> tuple[list, list]:
        [figure] = [f for f in figures(at) if f["layout"]["title"]["text"] == title]
        return figure["data"][0]["customdata"], decoded(figure["data"][0]["y"])

    # Order totals 36, 40.50, 158, 1000 on 30 bins of (1000 - 36) / 30 = 32.1333 from 36:
    # 36 and 40.50 fall in bin 0, 158 in bin 3 (122 / 32.13 = 3.8), 1000 in the last (29).
    ranges, counts = bars("Order value: distribution of order lines")
    assert counts == [2, 1, 1]
    assert ranges[0] == "€36.00 – €68.13"
    assert ranges[-1] == "€967.87 – €1,000.00"
    # Quantities 1, 2, 2, 3 are whole numbers: one bin per value.
    ranges, counts = bars("Quantity: distribution of order lines")
    assert (ranges, counts) == (["1", "2", "3"], [1, 2, 1])

    # France (orders 1 and 3): totals 1000 and 36, quantities 1 and 3, on the same bins.
    at.multiselect(key="filter_countries").set_value(["France"]).run()
    assert not at.exception
    assert bars("Order value: distribution of order lines")[1] == [1, 1]
    assert bars("Quantity: distribution of order lines") == (["1", "3"], [1, 1])
    percentiles = table(at, "statistics_percentiles").set_index("metric")
    assert percentiles.loc["order_value", "median"] == 518.0  # (36 + 1000) / 2
    assert percentiles.loc["quantity", "mode"] == 1.0  # 1 and 3 once each: the smallest


def test_card_money_reads_in_billions_and_tiny_shares_are_not_zero():
    assert formatting.format_currency_short(Decimal("10374458126.86")) == "€10.37B"
    assert formatting.format_currency_short(Decimal("999994999.99")) == "€999.99M"
    assert formatting.format_currency_short(Decimal("999995000")) == "€1.00B"
    assert formatting.format_share(Decimal("0.000344")) == "<0.01%"
    assert formatting.format_share(Decimal("0.005")) == "0.01%"
    assert formatting.format_share(Decimal("0")) == "0.00%"
