"""`lakehouse bench dashboard` at a small scale: it runs end to end and writes sane figures.

The export is the session's LAKE_DIR run (300 clients, already built for the end-to-end
tests), copied into the bench's work folder, which the bench then reuses instead of running the
pipeline again. Two pages are timed (`--page`): every page is drawn in Chromium by
tests/test_dashboard_browser.py, and the bench runs the same steps for each page. No timing is
asserted: the machine is shared.
"""

from __future__ import annotations

import json
import shutil

from dashboard.bench import PAGES
from tests.conftest import clean_env, lakehouse

TIMED = ["Geography", "Data quality"]


def test_bench_dashboard_times_the_pages_named(lake_dir_run, tmp_path):
    lake, _, _ = lake_dir_run
    work = tmp_path / "work"
    for layer in ("gold", "silver"):
        shutil.copytree(lake / layer, work / "lake" / layer)
    figures = tmp_path / "b.json"

    result = lakehouse(
        "bench",
        "dashboard",
        "--clients",
        "300",
        "--work-dir",
        str(work),
        "--repeat",
        "1",
        *("--page", "Data quality", "--page", "Geography"),
        "--json-out",
        str(figures),
        env=clean_env(),
        timeout=600,
    )

    report = json.loads(figures.read_text())
    latest = json.loads((lake / "gold" / "latest.json").read_text())
    assert report["run_id"] == latest["run_id"]
    assert report["purchases"] == latest["row_counts"]["fct_sales"] > 0
    assert [page["page"] for page in report["pages"]] == TIMED  # in the navigation's order
    for page in report["pages"]:
        assert page["charts"] >= 1, page
        assert page["cold_seconds"] > 0, page
        assert len(page["warm_seconds"]) == 1 and page["warm_seconds"][0] > 0, page
        assert page["filter_seconds"] > 0, page
    assert "Dashboard render times" in result.stdout
    assert not (work / "sources").exists()  # the export was reused, nothing generated
    # The bench republishes under new run ids to empty the caches; it restores latest.json.
    assert json.loads((work / "lake" / "gold" / "latest.json").read_text()) == latest
    assert not (work / "lake" / "gold" / "latest.json.bench").exists()
    assert sorted(p.name for p in (work / "screenshots").iterdir()) == sorted(
        f"{PAGES[title]}.png" for title in TIMED
    )


def test_an_unknown_page_is_refused_with_the_titles(tmp_path):
    result = lakehouse(
        "bench", "dashboard", "--work-dir", str(tmp_path), "--page", "Sales",
        env={**clean_env(), "COLUMNS": "250"}, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "no dashboard page titled 'Sales'" in result.stdout
    assert all(repr(title) in result.stdout for title in PAGES)
    assert list(tmp_path.iterdir()) == []  # nothing generated or built
