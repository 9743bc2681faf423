"""Dashboard tests: the real entry point rendered by Streamlit's AppTest over a tiny fixture lake.

The fixture numbers are computed by hand (see FACT_SALES): four orders from two clients over
2024-03-01..04, with a day without sales, revenue €1,234.50 and an average order value of
exactly €308.625, which must show as €308.63 (half away from zero, not banker's rounding).
"""

from __future__ import annotations

import json
import socket
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


def write_parquet(target: Path, columns: dict[str, str], rows: list[tuple]) -> None:
    conn = duckdb.connect()
    conn.execute(
        "create table t (" + ", ".join(f"{name} {kind}" for name, kind in columns.items()) + ")"
    )
    conn.executemany("insert into t values (" + ", ".join("?" * len(columns)) + ")", rows)
    conn.execute(f"copy t to '{target}' (format parquet)")
    conn.close()


def build_fixture_lake(lake: Path, run_id: str = RUN_ID, sales: list[tuple] = FACT_SALES) -> None:
    """Write the export layout of SPEC §5 for one run: two Parquet models and latest.json."""
    run_folder = lake / "gold" / "runs" / run_id
    run_folder.mkdir(parents=True)
    write_parquet(run_folder / "fct_sales.parquet", FACT_SALES_COLUMNS, sales)
    write_parquet(run_folder / "rpt_sales_daily.parquet", SALES_DAILY_COLUMNS, SALES_DAILY)
    manifest = {
        "run_id": run_id,
        "as_of_date": "2024-03-05",
        "published_at": "2024-03-05T08:00:00Z",
        "run_folder": f"runs/{run_id}",
        "models": ["fct_sales", "rpt_sales_daily"],
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
