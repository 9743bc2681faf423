"""The published export honours SPEC §5: names, keys, columns, documents, no e-mails."""

from __future__ import annotations

import json

import duckdb
import pytest

pytestmark = pytest.mark.e2e

# SPEC §5: model → (key columns, columns named at least).
CONTRACT = {
    "stg_retail__clients": (
        ["client_id"],
        "name email subscription_date country is_subscription_date_capped has_invalid_email "
        "has_shared_email has_unknown_country",
    ),
    "stg_retail__purchases": (
        ["purchase_id"],
        "client_id product price quantity purchase_date total is_total_recalculated",
    ),
    "fct_sales": (
        ["purchase_id"],
        "client_id product country price quantity total purchase_date year_month "
        "week_start_date customer_tenure_days",
    ),
    "rpt_client_kpis": (
        ["client_id"],
        "total_purchases total_spent avg_order_value days_since_last_purchase is_active "
        "is_high_value is_at_risk r_score f_score m_score rfm_segment",
    ),
    "rpt_product_analytics": (
        ["product"],
        "total_quantity_sold total_revenue total_orders unique_customers avg_price "
        "market_share_pct top_countries",
    ),
    "rpt_country_analytics": (
        ["country"],
        "total_revenue unique_customers total_orders total_quantity avg_order_value "
        "avg_revenue_per_customer market_share_pct",
    ),
    "rpt_sales_daily": (
        ["sale_date"],
        "total_revenue total_orders unique_customers total_quantity avg_order_value "
        "revenue_growth_pct orders_growth_pct revenue_7d_avg orders_7d_avg revenue_28d_avg "
        "orders_28d_avg is_partial_period",
    ),
    "rpt_sales_weekly": (
        ["week_start_date"],
        "iso_year_week total_revenue total_orders unique_customers total_quantity "
        "avg_order_value revenue_growth_pct orders_growth_pct customers_growth_pct",
    ),
    "rpt_sales_monthly": (
        ["year_month"],
        "month_start_date avg_revenue_per_customer customers_growth_pct total_revenue "
        "total_orders unique_customers total_quantity avg_order_value revenue_growth_pct",
    ),
    "rpt_distribution_statistics": (["metric", "statistic"], "value"),
    "rpt_cohort_retention": (
        ["cohort_month", "months_since_first_purchase"],
        "cohort_size active_clients revenue retention_pct",
    ),
    "rpt_sales_anomalies": (
        ["sale_date"],
        "total_revenue trailing_mean trailing_std z_score direction",
    ),
}


@pytest.fixture(scope="module")
def published(lake_dir_run):
    lake, _, _ = lake_dir_run
    latest = json.loads((lake / "gold" / "latest.json").read_text())
    return lake, latest


def model_path(lake, latest, model):
    layer = "silver" if model.startswith("stg_") else "gold"
    return lake / layer / latest["run_folder"] / f"{model}.parquet"


def test_the_published_documents_are_as_readable_as_the_parquet_files(published):
    """latest.json and the JSON documents are written through a temporary file (mkstemp makes
    it owner-only): they keep the mode a plain write gives, as the Parquet files do, so a
    dashboard running as another user can read the run it is shown."""
    lake, latest = published
    mode = model_path(lake, latest, "fct_sales").stat().st_mode & 0o777
    run_folder = lake / "gold" / latest["run_folder"]
    documents = [lake / "gold" / "latest.json", *run_folder.glob("*.json")]
    assert len(documents) >= 3
    modes = {path.name: path.stat().st_mode & 0o777 for path in documents}
    assert modes == dict.fromkeys(modes, mode)


@pytest.mark.parametrize("model", sorted(CONTRACT))
def test_model_has_its_key_and_columns(published, model):
    lake, latest = published
    keys, columns = CONTRACT[model]
    path = model_path(lake, latest, model)
    assert path.exists(), f"{model} was not exported"
    conn = duckdb.connect()
    present = {
        name for (name,) in conn.execute(f"select name from parquet_schema('{path}')").fetchall()
    }
    missing = (set(keys) | set(columns.split())) - present
    assert not missing, f"{model} lacks {sorted(missing)}"
    key = ", ".join(keys)
    duplicates = conn.execute(
        f"select count(*) from (select {key} from read_parquet('{path}') "
        f"group by {key} having count(*) > 1)"
    ).fetchone()[0]
    assert duplicates == 0


def test_quarantine_models_keep_raw_columns_and_reasons(published):
    lake, latest = published
    for entity, raw in (("clients", "id_client"), ("purchases", "id_purchase")):
        path = model_path(lake, latest, f"stg_retail__{entity}_quarantine")
        present = {
            name
            for (name,) in duckdb.connect()
            .execute(f"select name from parquet_schema('{path}')")
            .fetchall()
        }
        assert {raw, "reject_reason", "reject_reasons", "_source_file", "_row_number"} <= present


def test_json_documents_are_published(published):
    lake, latest = published
    folder = lake / "gold" / latest["run_folder"]
    for name in ("quality_report.json", "statistical_distributions.json", "gold_summary.json"):
        document = json.loads((folder / name).read_text())
        assert document["run_id"] == latest["run_id"]
    summary = json.loads((folder / "gold_summary.json").read_text())["summary"]
    assert summary["run_id"] == latest["run_id"]
    assert summary["as_of_date"] == latest["as_of_date"]
    stats = json.loads((folder / "statistical_distributions.json").read_text())["metrics"]
    assert {"order_value", "unit_price", "quantity"} <= set(stats)
    assert (folder / "docs" / "index.html").exists()


def test_no_raw_email_in_any_gold_file(published):
    lake, latest = published
    conn = duckdb.connect()
    pattern = r"[A-Za-z0-9._%+-]*[A-Za-z0-9._%+-]@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
    for path in sorted((lake / "gold" / latest["run_folder"]).glob("*.parquet")):
        columns = [
            name
            for name, kind in conn.execute(
                f"select name, type from parquet_schema('{path}') where type = 'BYTE_ARRAY'"
            ).fetchall()
        ]
        for column in columns:
            leaked = conn.execute(
                f"select count(*) from read_parquet('{path}') "
                f"where regexp_matches(\"{column}\", '{pattern}') "
                f"and not regexp_matches(\"{column}\", '\\*\\*\\*@')"
            ).fetchone()[0]
            assert leaked == 0, f"{path.name}.{column} holds e-mail addresses"
    for path in (lake / "gold" / latest["run_folder"]).glob("*.json"):
        assert "@example.com" not in path.read_text()
