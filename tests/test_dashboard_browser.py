"""The dashboard in a real browser: Debian's Chromium, driven by Playwright, against
`streamlit run dashboard/app.py` on a free port, over the session's real export (the LAKE_DIR
run of conftest).

Every page is opened and waited for until its charts are drawn (a cold Streamlit screenshots
blank otherwise); a country is chosen in the sidebar; no Streamlit exception may show. A
full-page screenshot of each page goes to artifacts/screenshots/ (git-ignored), for a person to
look at.
"""

from __future__ import annotations

import re

import pytest

from dashboard import bench
from dashboard.formatting import format_currency_short
from tests.conftest import ROOT
from tests.test_dashboard import EXPECTED_FIGURES, Gold

SCREENSHOTS = ROOT / "artifacts" / "screenshots"
# Any character but the mask's `*` right before the @: an e-mail shown in clear.
UNMASKED_EMAIL = re.compile(r"[A-Za-z0-9._%+-]@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# Page title → its views/ file stem (the screenshot's name).
STEMS = {title: stem for stem, (title, _) in EXPECTED_FIGURES.items()}


@pytest.fixture(scope="module")
def dashboard_url(lake_dir_run, tmp_path_factory):
    _, env, _ = lake_dir_run
    log = tmp_path_factory.mktemp("streamlit") / "server.log"
    with bench.streamlit_server(env, log) as url:
        bench.wait_until_healthy(url)
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = bench.launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    page = bench.new_page(browser)
    yield page
    page.context.close()


def metric_value(page, label: str) -> str:
    card = page.locator('[data-testid="stMetric"]', has_text=label).first
    return card.locator('[data-testid="stMetricValue"]').inner_text().strip()


@pytest.mark.parametrize("title", list(bench.PAGES))
def test_every_page_draws_its_charts(page, dashboard_url, title):
    _, charts = bench.visit(page, f"{dashboard_url}/{bench.PAGES[title]}", title)

    page.wait_for_selector('[data-testid="stMetric"]')
    page.wait_for_selector(".js-plotly-plot .main-svg")
    assert page.locator('[data-testid="stException"]').count() == 0
    stem = STEMS[title]
    assert page.locator(".js-plotly-plot").count() == charts
    drawn_titles = set(page.locator(".js-plotly-plot .gtitle").all_text_contents())
    expected = EXPECTED_FIGURES[stem][1]
    if stem == "data_quality":  # an entity without refused rows gets a note, not a chart
        assert "Bronze rows: kept in silver or quarantined" in drawn_titles
        assert drawn_titles <= expected
    else:
        assert expected <= drawn_titles
    assert not UNMASKED_EMAIL.search(page.inner_text("body"))
    bench.full_page_screenshot(page, SCREENSHOTS / f"{stem}.png")
    assert (SCREENSHOTS / f"{stem}.png").stat().st_size > 50_000  # not a blank page


def test_a_country_filter_redraws_every_page(page, dashboard_url, lake_dir_run):
    lake, _, _ = lake_dir_run
    gold = Gold(lake)
    [[france]] = gold.rows("select sum(total) from fct_sales where country = 'France'")
    [[everything]] = gold.rows("select sum(total) from fct_sales")
    bench.visit(page, dashboard_url, "Overview")
    assert metric_value(page, "Total revenue") == format_currency_short(everything)

    bench.choose_country(page, "Overview", "France")

    assert metric_value(page, "Total revenue") == format_currency_short(france)
    assert page.locator('[data-testid="stException"]').count() == 0
    bench.full_page_screenshot(page, SCREENSHOTS / "overview-france.png")
    for title in [title for title in bench.PAGES if title != "Overview"]:  # the filter stays
        bench.navigate(page, title)
        assert page.locator('[data-testid="stException"]').count() == 0, title
        assert "France" in page.locator('[data-testid="stSidebar"]').inner_text()
