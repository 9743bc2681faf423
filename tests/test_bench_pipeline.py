"""`lakehouse bench pipeline` and its pandas baseline.

The baseline's rules are checked on small hand-written files whose outcomes were worked out by
hand from SPEC §3 (not by running any code); the bench itself runs once at a small scale and is
checked for sane, consistent figures only — never for timings.
"""

from __future__ import annotations

import json
import os
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from orchestration import baseline as bl
from orchestration.bench_pipeline import (
    Measured,
    RssSampler,
    folder_bytes,
    print_verdicts,
    shift_purchase_ids,
    stage_figures,
    tree_rss,
)
from tests.conftest import clean_env, lakehouse

AS_OF = date(2025, 6, 30)

CLIENTS_1 = b"""id_client,name,email,subscription_date,country
1,Ann,ANN@Example.com ,2024-01-15,france
2,Bob,bob@example.com,15/02/2024, United  Kingdom
3,Cy,not-an-email,2024/03/01,Atlantis
abc,Dee,dee@example.com,2024-01-01,Spain
5,Eve,eve@example.com,2024-02-30,Spain
6,"Fay, Jr",shared@example.com,2024-01-01T10:00:00,US
7,Gus,Shared@example.com,2026-01-01,deutschland
8,Hal,hal@example.com,2024-01-01
6,Fay2,fay2@example.com,2024-01-02,Italy
9,"Ivy,ivy@example.com,2024-01-01,Spain
NULL,Jo,jo@example.com,2024-01-01,Spain
10,Kim,kim@example.com,2024-13-01,Spain,extra
"""
CLIENTS_2 = b"""id_client,name,email,subscription_date,country
1,Ann B,ann@example.com,2024-01-15,Italia
5,Eve,eve@example.com,2024-02-28,Spain
11,Lou,lou@example.com,n/a,Spain
"""
PURCHASES_1 = b"""id_purchase,id_client,product,price,quantity,purchase_date,total
1,1,Laptop,1000.00,2,2025-01-10,2000.00
2,2, phone ,300.005,1,2025/01/11,300.01
3,3,Toaster,10.00,1,2025-01-12,10.00
4,1,Mouse,-5.00,1,2025-01-12,-5.00
5,1,Mouse,20.00,2.5,2025-01-12,50.00
6,1,Mouse,20.00,2.0,12/01/2025,40.00
7,1,Mouse,20.00,1,2025-02-30,20.00
8,1,Mouse,20.00,1,2025-07-01,20.00
9,99,Mouse,20.00,1,2025-01-12,20.00
10,5,Mouse,20.00,1,2025-01-12,20.00
1.0,1,Mouse,20.00,1,2025-01-12,20.00
11,+5,Mouse,20.00,1,2025-01-12,20.00
12,1,Mouse,20.00,3,2025-01-12,99.99
13,1,Mouse,20.00,3,2025-01-12,60.01
14,1,Mouse,20.00,3,2025-01-12,abc
1,1,Laptop,1000.00,2,2025-01-10,2000.00
15,1,Mouse,20.00,0,2025-01-12,0.00
16,1,Mouse,0.00,1,2025-01-12,0.00
17,1,Mouse,20.00
19,1,Mouse,NULL,1,2025-01-12,
"""
PURCHASES_2 = (
    b"id_purchase,id_client,product,price,quantity,purchase_date,total\r\n"
    b"1,1,Laptop,999.00,1,2025-01-10,999.00\r\n"
    b"18,1,Mouse,20.00,1,2025-01-12,20.00\r\n"
    b"7,1,Mouse,20.00,1,2025-01-13,20.00\r\n"
    b"20,1,Mo\xffuse,20.00,1,2025-01-12,20.00\r\n"
    b"\r\n"
)


@pytest.fixture(scope="module")
def hand_made(tmp_path_factory) -> tuple[Path, bl.BaselineResult]:
    """Two batches per entity, run through the whole baseline once."""
    folder = tmp_path_factory.mktemp("hand-made")
    for name, content in {
        "clients_001.csv": CLIENTS_1,
        "clients_002.csv": CLIENTS_2,
        "purchases_001.csv": PURCHASES_1,
        "purchases_002.csv": PURCHASES_2,
        "notes.txt": b"not data",
    }.items():
        (folder / name).write_bytes(content)
    out = folder / "out"
    # Both batches "landed" on 2025-01-11: versions start that day (SCD2).
    return out, bl.run_baseline(folder, out, AS_OF, ingested_on=date(2025, 1, 11))


def _read(out: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(out / f"{name}.parquet")


def test_every_bronze_line_lands_once(hand_made):
    _out, result = hand_made
    # clients: 12 + 3 lines; purchases: 20 + 4 (the blank line is not a row).
    assert result.bronze_rows == {"clients": 15, "purchases": 24}
    assert result.silver_rows == {"clients": 6, "purchases": 10}
    for entity in ("clients", "purchases"):
        quarantined = sum(result.quarantine[entity].values())
        assert result.silver_rows[entity] + quarantined == result.bronze_rows[entity]


def test_client_rules_in_order(hand_made):
    out, result = hand_made
    assert result.quarantine["clients"] == {
        "malformed_line": 3,  # too few fields, unterminated quote, too many fields
        "invalid_client_id": 2,  # abc, NULL
        "invalid_subscription_date": 2,  # 2024-02-30, n/a
        "duplicate_client": 2,  # client 1 of batch 1 (batch 2 is newer), second line of 6
    }
    quarantine = _read(out, "stg_clients_quarantine").set_index(["_source_file", "_row_number"])
    eve = quarantine.loc[("clients_001.csv", 6)]
    # A bad first copy of 5 never hides the good one of batch 2, and it lists the duplicate.
    assert eve["reject_reason"] == "invalid_subscription_date"
    assert eve["reject_reasons"] == "invalid_subscription_date,duplicate_client"
    assert quarantine.loc[("clients_001.csv", 10), "reject_reason"] == "duplicate_client"
    assert quarantine.loc[("clients_001.csv", 9), "reject_reason"] == "malformed_line"
    assert quarantine.loc[("clients_001.csv", 13), "reject_reasons"] == "malformed_line"


def test_client_fixes_and_normalisation(hand_made):
    out, _result = hand_made
    clients = _read(out, "stg_clients").set_index("client_id")
    assert sorted(clients.index) == [1, 2, 3, 5, 6, 7]
    assert clients.loc[1, "name"] == "Ann B"  # newest batch wins
    assert clients.loc[1, "country"] == "Italy"  # alias
    assert clients.loc[2, "country"] == "UK"  # trimmed, inner blanks collapsed, alias
    assert clients.loc[2, "subscription_date"] == pd.Timestamp("2024-02-15")
    assert clients.loc[3, "country"] == "Unknown" and clients.loc[3, "has_unknown_country"]
    assert pd.isna(clients.loc[3, "email"]) and clients.loc[3, "has_invalid_email"]
    assert clients.loc[6, "name"] == "Fay, Jr"  # a quoted comma, first line of the batch
    assert clients.loc[6, "subscription_date"] == pd.Timestamp("2024-01-01")
    assert clients.loc[7, "subscription_date"] == pd.Timestamp("2025-06-30")  # capped
    assert clients.loc[7, "is_subscription_date_capped"]
    assert clients.loc[7, "country"] == "Germany"
    shared = clients["has_shared_email"].to_dict()
    assert shared == {1: False, 2: False, 3: False, 5: False, 6: True, 7: True}


def test_purchase_rules_in_order(hand_made):
    out, result = hand_made
    assert result.quarantine["purchases"] == {
        "malformed_line": 2,  # too few fields, invalid UTF-8
        "invalid_purchase_id": 1,  # 1.0
        "invalid_client_id": 1,  # +5
        "unknown_product": 1,  # Toaster
        "invalid_price": 2,  # -5.00, NULL
        "invalid_quantity": 2,  # 2.5, 0
        "invalid_purchase_date": 1,  # 2025-02-30
        "future_purchase_date": 1,  # 2025-07-01
        "orphan_purchase": 1,  # client 99
        "duplicate_purchase": 2,  # 1 again in batch 1, and in batch 2 (the oldest wins)
    }
    quarantine = _read(out, "stg_purchases_quarantine").set_index(["_source_file", "_row_number"])
    first_seven = quarantine.loc[("purchases_001.csv", 8)]
    assert first_seven["reject_reasons"] == "invalid_purchase_date,duplicate_purchase"
    assert quarantine.loc[("purchases_002.csv", 2), "reject_reason"] == "duplicate_purchase"
    assert quarantine.loc[("purchases_002.csv", 5), "reject_reason"] == "malformed_line"


def test_purchase_values_and_totals(hand_made):
    out, _result = hand_made
    purchases = _read(out, "stg_purchases").set_index("purchase_id")
    assert sorted(purchases.index) == [1, 2, 6, 7, 10, 12, 13, 14, 16, 18]
    assert purchases.loc[1, "price"] == Decimal("1000.00")  # the batch-1 copy
    assert purchases.loc[2, "product"] == "Phone"
    assert purchases.loc[2, "price"] == Decimal("300.01")  # half away from zero
    assert not purchases.loc[2, "is_total_recalculated"]
    assert purchases.loc[6, "quantity"] == 2
    assert purchases.loc[6, "purchase_date"] == pd.Timestamp("2025-01-12")
    assert purchases.loc[7, "purchase_date"] == pd.Timestamp("2025-01-13")  # batch 2's copy
    assert purchases.loc[10, "client_id"] == 5  # a late client is no orphan
    assert (purchases.loc[12, "total"], purchases.loc[12, "is_total_recalculated"]) == (
        Decimal("60.00"),
        True,
    )
    assert (purchases.loc[13, "total"], purchases.loc[13, "is_total_recalculated"]) == (
        Decimal("60.01"),
        False,
    )
    assert purchases.loc[14, "total"] == Decimal("60.00")  # non-numeric total is missing
    assert purchases.loc[16, "price"] == Decimal("0.00")  # a zero price is valid


def test_sales_take_the_country_valid_on_the_purchase_date(hand_made):
    out, _result = hand_made
    sales = _read(out, "fct_sales").set_index("purchase_id")
    # Client 1: France in batch 1, Italy in batch 2, both versions from 2025-01-11.
    assert sales.loc[1, "country"] == "France"  # 2025-01-10: before every version → the first
    assert sales.loc[12, "country"] == "Italy"  # 2025-01-12: the latest version
    assert sales.loc[6, "week_start_date"] == pd.Timestamp("2025-01-06")
    assert sales.loc[6, "customer_tenure_days"] == (date(2025, 1, 12) - date(2024, 1, 15)).days


def test_exact_ratio_rounds_half_away_from_zero():
    ratios = bl.exact_ratio(np.array([1, -1, 2, 5]), np.array([8, 8, 0, 3]))
    values = [None if pd.isna(value) else value for value in ratios]
    assert values == [Decimal("0.13"), Decimal("-0.13"), None, Decimal("1.67")]
    assert bl.money_avg(np.array([1001]), np.array([2])).tolist() == [Decimal("5.01")]


def test_year_zero_is_no_date_as_in_the_sql():
    text = pd.Series(["0000-01-31", "31/01/0000", "0001-01-01", "2024-02-29", "2023-02-29"])
    parsed = bl.parse_dates(text.astype("str"))
    assert [str(day) for day in parsed] == ["NaT", "NaT", "0001-01-01", "2024-02-29", "NaT"]


def test_rfm_scores_share_the_highest_rank_on_ties():
    # k = 1, 3, 3, 4 of N = 4 → ceil(5k/4) = 2, 4, 4, 5
    scores = bl._score(pd.Series([10, 20, 20, 30]), higher_is_better=True, purchasing=4)
    assert scores.tolist() == [2, 4, 4, 5]


def test_shift_purchase_ids_keeps_every_line_fate(tmp_path):
    source, target = tmp_path / "p.csv", tmp_path / "q.csv"
    source.write_bytes(
        b"id_purchase,id_client\n5,1\n0,1\nabc,1\n1234567890123456789,1\n 7,1\n8\n\xff,1\n"
    )
    shift_purchase_ids(source, target, 1000)
    assert target.read_bytes() == (
        b"id_purchase,id_client\n1005,1\n0,1\nabc,1\n1234567890123456789,1\n 7,1\n8\n\xff,1\n"
    )


def test_tree_rss_and_stage_windows(tmp_path):
    assert tree_rss(os.getpid()) > 10 * 1024 * 1024
    measured = Measured(
        "run", 0, 100.0, 10.0, [(100.0, 5), (101.0, 50), (105.0, 7)], tmp_path, tmp_path
    )
    stages = {"a": {"started_at": 100.5, "seconds": 1.0}, "b": {"started_at": 104.0, "seconds": 2}}
    a, b, outside = stage_figures(measured, stages, {"a": 30})
    assert (a.peak_rss_bytes, a.rows, a.rows_per_second) == (50, 30, 30.0)
    assert b.peak_rss_bytes == 7
    assert outside.seconds == pytest.approx(7.0)


def test_folder_bytes_and_spill_sampling(tmp_path):
    spill = tmp_path / "spill"
    (spill / "nested").mkdir(parents=True)
    (spill / "a.tmp").write_bytes(b"x" * 1000)
    (spill / "nested" / "b.tmp").write_bytes(b"y" * 234)
    assert folder_bytes(spill) == 1234
    assert folder_bytes(tmp_path / "absent") == 0
    with RssSampler(os.getpid(), spill) as sampler:
        while not sampler.samples:
            time.sleep(0.01)
    (spill / "a.tmp").unlink()
    assert sampler.peak_spill == 1234  # sampled while the files were there, kept as the peak
    assert folder_bytes(spill) == 234


# --- the bench itself, at a small scale --------------------------------------------------------


@pytest.fixture(scope="module")
def bench(tmp_path_factory, prefect_api) -> tuple[dict, str]:
    work = tmp_path_factory.mktemp("bench-pipeline")
    env = clean_env(PREFECT_API_URL=prefect_api)
    result = lakehouse(
        "bench",
        "pipeline",
        "--clients",
        "400",
        "--batches",
        "2",
        "--work-dir",
        str(work),
        "--json-out",
        str(work / "b.json"),
        env=env,
        timeout=1800,
    )
    return json.loads((work / "b.json").read_text()), result.stdout


GIB = 1024**3


def _sane(figure: dict) -> None:
    assert figure["seconds"] is not None and figure["seconds"] > 0, figure
    if figure["peak_rss_bytes"] is not None:
        assert 0 < figure["peak_rss_bytes"] < 24 * GIB, figure


def test_bench_reports_every_stage(bench):
    report, stdout = bench
    assert "lakehouse bench pipeline" in stdout and "pandas baseline" in stdout
    _sane(report["generate"])
    _sane(report["host_reference"])
    assert report["host_reference"]["full_run_multiple"] == pytest.approx(
        report["full_run"]["total"]["seconds"] / report["host_reference"]["seconds"]
    )
    assert "× the DuckDB count of the CSV records" in stdout
    for run in ("full_run", "incremental_run"):
        names = [stage["name"] for stage in report[run]["stages"]]
        for expected in ("ingest", "dbt build", "export", "outside stages"):
            assert expected in names, (run, names)
        assert any(name.startswith("  dbt model") for name in names)
        assert any(name.startswith("  dbt test") for name in names)
        _sane(report[run]["total"])
        for stage in report[run]["stages"]:
            if not stage["name"].startswith("  dbt"):  # thread time may round to 0 at this size
                assert stage["seconds"] >= 0, stage
            assert stage["peak_rss_bytes"] is None or stage["peak_rss_bytes"] < 24 * GIB
        assert report[run]["total"]["peak_rss_bytes"] >= max(
            stage["peak_rss_bytes"] or 0 for stage in report[run]["stages"]
        )
    _sane(report["baseline"]["total"])
    assert report["baseline"]["ratio_to_full_run"] > 0
    disk = report["full_run"]["disk_bytes"]
    generated = sum(path.stat().st_size for path in Path(report["work_dir"], "sources").iterdir())
    assert disk["sources (generated CSV)"] == generated
    # Bronze keeps each landed CSV byte for byte, plus its line-split Parquet twin.
    generated_csv = sum(
        path.stat().st_size for path in Path(report["work_dir"], "sources").glob("*.csv")
    )
    assert disk["lake/bronze"] > generated_csv > 0
    assert disk["lake/gold"] > 0 and disk["lake/warehouse"] > 0
    assert "disk after the full run" in stdout
    machine = report["machine"]
    assert machine["cpu_count"] >= 1 and machine["memory_bytes"] > 0
    assert machine["duckdb_memory_limit"]


def test_bench_rows_are_consistent(bench):
    report, _stdout = bench
    scale, files = report["scale"], report["generate"]["files"]
    assert (
        report["generate"]["rows"]
        == scale["bronze_rows"]
        == sum(item["rows"] for item in files.values())
        == report["host_reference"]["rows"]  # DuckDB's CSV reader agrees with the line count
    )
    assert sorted(files) == [
        "clients_001.csv",
        "clients_002.csv",
        "purchases_001.csv",
        "purchases_002.csv",
    ]

    def rows(run: str, stage: str) -> int:
        return next(s["rows"] for s in report[run]["stages"] if s["name"] == stage)

    assert rows("full_run", "ingest") == scale["bronze_rows"]
    assert rows("full_run", "dbt build") == scale["bronze_rows"]
    assert rows("full_run", "export") > scale["bronze_rows"] // 2
    added = scale["increment_rows"]
    purchases = sum(v["rows"] for k, v in files.items() if k.startswith("purchases"))
    assert 0 < added < purchases // 20  # about 1 %
    assert rows("incremental_run", "ingest") == added
    assert rows("incremental_run", "dbt build") == scale["bronze_rows"] + added
    full, incremental = report["full_run"]["total"], report["incremental_run"]["total"]
    assert report["incremental_run"]["percent_of_full"] == pytest.approx(
        100 * incremental["seconds"] / full["seconds"]
    )


def test_verdicts_without_an_incremental_run(bench, capsys):
    report, _stdout = bench
    full_only = {key: value for key, value in report.items() if key != "incremental_run"}
    print_verdicts(full_only)
    printed = capsys.readouterr().out
    assert "full run:" in printed and "disk after the full run" in printed
    assert "incremental run" not in printed


def test_baseline_silver_equals_the_pipeline(bench):
    report, _stdout = bench
    comparison = report["baseline"]["comparison"]
    for entity, counts in comparison["silver_rows"].items():
        assert counts["pipeline"] > 0 and counts["difference"] == 0, (entity, counts)
        assert comparison["quarantine"][entity]["equal"], comparison["quarantine"][entity]
    for name, item in comparison["gold"].items():
        assert item["equal"], (name, item)
    assert comparison["all_equal"]
