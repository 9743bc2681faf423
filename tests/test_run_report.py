"""The run report (the Markdown artifact), rendered from hand-made summaries."""

from __future__ import annotations

from orchestration import run_report


def summary(**parts) -> dict:
    return {"run_id": "r1", "as_of_date": "2025-06-30", "durations": {"ingest": 1.0}, **parts}


def test_a_run_without_a_status_is_not_reported_as_a_success():
    text = run_report.render(summary())
    assert text.startswith("# Lakehouse run r1: unknown")
    assert "succeeded" not in text


def test_an_interrupted_run_says_so_and_why():
    text = run_report.render(summary(status="interrupted", error="KeyboardInterrupt"))
    assert text.startswith("# Lakehouse run r1: interrupted")
    assert "- why: KeyboardInterrupt" in text
    assert "nothing (the previous export stays in place)" in text


def test_files_skipped_for_one_reason_take_one_row_however_many():
    already = [
        {"file": f"sources/purchases_{n:03}.csv", "reason": f"already in bronze as bronze/k{n}"}
        for n in range(1, 201)
    ]
    other = [{"file": "sources/notes.txt", "reason": "not a .csv file"}]
    ingest = {"landed": [], "skipped": already + other, "refused": []}
    text = run_report.render(summary(status="succeeded", ingest=ingest))
    rows = [line for line in text.splitlines() if "skipped:" in line]
    assert rows == [
        "| purchases_001.csv, purchases_002.csv, purchases_003.csv and 197 more "
        "| skipped: already in bronze |",
        "| notes.txt | skipped: not a .csv file |",
    ]
