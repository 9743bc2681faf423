"""`lakehouse bench dashboard`: how long each page takes to draw in a real browser.

The figures are taken the way a user meets them: Chromium (Debian's, driven by Playwright)
opens a page of `streamlit run dashboard/app.py` and the clock runs from the navigation until
the last chart is drawn — the script run has finished, every Plotly chart has its SVG, nothing
is stale, and the page then stays unchanged for a quiet period (not counted).

Per page:
- cold: the page reached from the sidebar right after the export was republished under a new
  run id, so every query result cached for the previous run id is out of reach — the first
  render after a new publish, on a running dashboard;
- warm: the page reached again from the sidebar navigation, as a user moves between pages
  (`repeat` times, the median reported);
- filter: one country chosen in the sidebar, from the click until the page is redrawn.
The very first visit (fresh server, empty browser cache, Overview) is reported on its own.

The data: when `work_dir` holds no export yet, a data set of `clients` clients is generated
into `<work_dir>/sources` (dirty rate 0.02) and the pipeline publishes it into
`<work_dir>/lake` (`LAKE_DIR`), both through the `lakehouse` CLI; later calls reuse it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from dashboard import streamlit_command
from orchestration.settings import PROJECT_ROOT

CHROMIUM = "/usr/bin/chromium"
BIN = Path(sys.executable).parent
# Page title → URL path, in the navigation's order.
PAGES = {
    "Overview": "",
    "Temporal": "temporal",
    "Clients": "clients",
    "Products": "products",
    "Geography": "geography",
    "Statistics": "statistics",
    "Data quality": "data_quality",
}
# The data set: fixed seed and dates, so that two benches of one size read the same numbers.
SEED = "42"
END_DATE = "2025-06-30"
DIRTY_RATE = "0.02"
FILTER_COUNTRY = "France"  # the country chosen for the filter figures
QUIET_SECONDS = 0.5  # a page unchanged this long after its last change is drawn
PAGE_TIMEOUT = 120.0
VIEWPORT = {"width": 1440, "height": 1000}

console = Console()

# Evaluated in the page: what is on screen, as a comparable signature.
PAGE_STATE_JS = """
() => {
  const app = document.querySelector('[data-testid="stApp"]');
  const charts = [...document.querySelectorAll('[data-testid="stPlotlyChart"]')];
  return {
    script: app ? app.getAttribute('data-test-script-state') : null,
    connection: app ? app.getAttribute('data-test-connection-state') : null,
    title: (document.querySelector('[data-testid="stMain"] h1') || {}).textContent || null,
    charts: charts.length,
    drawn: charts.filter(c => c.querySelector('.js-plotly-plot .main-svg')).length,
    stale: document.querySelectorAll('[data-stale="true"]').length,
    busy: document.querySelectorAll(
      '[data-testid="stSpinner"], [data-testid="stSkeleton"], [data-testid="stAppSkeleton"]'
    ).length,
    exceptions: document.querySelectorAll('[data-testid="stException"]').length,
    changes: window.__benchChanges || 0,
    runs: window.__benchRuns || 0,
  };
}
"""
# Counts the changes made to the page's main block (elements arriving, charts drawing), not to
# the sidebar or the pop-up menus, which move on their own after a click; and the script runs
# the app started (a rerun that leaves the main block as it was, as a filter on a page the
# filters do not apply to, changes nothing there).
WATCH_CHANGES_JS = """
(() => {
  window.__benchChanges = 0;
  window.__benchRuns = 0;
  const inMain = (record) => {
    const node = record.target.nodeType === 1 ? record.target : record.target.parentElement;
    return node && node.closest && node.closest('[data-testid="stMain"]');
  };
  const runStarted = (record) => record.attributeName === 'data-test-script-state'
    && record.target.getAttribute('data-test-script-state') === 'running';
  const watch = () => new MutationObserver((records) => {
      if (records.some(inMain)) { window.__benchChanges++; }
      window.__benchRuns += records.filter(runStarted).length;
    }).observe(document.body, {subtree: true, childList: true, attributes: true,
                               characterData: true});
  if (document.body) { watch(); } else { document.addEventListener('DOMContentLoaded', watch); }
})();
"""


class BenchError(RuntimeError):
    """The bench could not run; the message says which step and why."""


@dataclass
class PageTimes:
    page: str
    charts: int = 0
    cold_seconds: float = 0.0
    warm_seconds: list[float] = field(default_factory=list)
    filter_seconds: float = 0.0

    @property
    def warm_median(self) -> float:
        return statistics.median(self.warm_seconds) if self.warm_seconds else 0.0


# --- the data -------------------------------------------------------------------------------
def _cli(args: list[str], env: dict[str, str], log: Path) -> None:
    """Run the `lakehouse` CLI, its output appended to `log` (never to a pipe that could fill)."""
    with log.open("a") as out:
        out.write(f"$ lakehouse {' '.join(args)}\n")
        out.flush()
        code = subprocess.call(
            [str(BIN / "lakehouse"), *args], env=env, cwd=PROJECT_ROOT, stdout=out, stderr=out
        )
    if code != 0:
        tail = log.read_text()[-3000:]
        raise BenchError(f"lakehouse {args[0]} exited {code}; end of {log}:\n{tail}")


def lake_environment(work_dir: Path) -> dict[str, str]:
    """The environment of every process of the bench: the lake and state live in work_dir."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LAKE", "S3_", "OBJECTSTORE", "PREFECT_", "DBT_"))
    }
    state = work_dir / "state"
    env.update(
        LAKE_DIR=str(work_dir / "lake"),
        LAKEHOUSE_STATE_DIR=str(state),
        PREFECT_HOME=str(state / "prefect"),
        DBT_TARGET_PATH=str(work_dir / "dbt-target"),  # not the project's target/
    )
    return env


def prepare_export(work_dir: Path, clients: int) -> dict:
    """Generate and publish a data set unless work_dir already has an export; its manifest."""
    latest = work_dir / "lake" / "gold" / "latest.json"
    if not latest.exists():
        env = lake_environment(work_dir)
        log = work_dir / "bench-pipeline.log"
        sources = work_dir / "sources"
        shutil.rmtree(sources, ignore_errors=True)  # what an interrupted bench left
        console.print(f"generating {clients:,} clients into {sources} …")
        _cli(
            ["generate", "--out", str(sources), "--clients", str(clients), "--seed", SEED]
            + ["--end-date", END_DATE, "--dirty-rate", DIRTY_RATE],
            env,
            log,
        )
        console.print(f"running the pipeline into {work_dir / 'lake'} (log: {log}) …")
        _cli(["run", "--sources", str(sources), "--as-of", END_DATE], env, log)
    return json.loads(latest.read_text())


# --- the servers ----------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def streamlit_server(env: dict[str, str], log: Path, port: int | None = None) -> Iterator[str]:
    """`streamlit run dashboard/app.py` on a loopback port (a free one by default); yields its
    URL, stops it."""
    port = port or _free_port()
    with log.open("ab") as out:
        process = subprocess.Popen(
            streamlit_command("127.0.0.1", port, "--server.fileWatcherType=none"),
            env=env,
            cwd=PROJECT_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, stopped as one below
        )
    url = f"http://127.0.0.1:{port}"
    try:
        yield url
    finally:
        _stop(process)


def wait_until_healthy(url: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise BenchError(f"streamlit did not answer on {url} within {timeout:.0f} s")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


# --- the browser ----------------------------------------------------------------------------
def page_state(page) -> dict:
    return page.evaluate(PAGE_STATE_JS)


def _is_drawn(state: dict, title: str, before: dict) -> bool:
    return (
        state["connection"] == "CONNECTED"
        and state["script"] == "notRunning"
        # the page did change, or the script did run, since the action
        and (state["changes"] > before["changes"] or state["runs"] > before["runs"])
        and state["title"] == title
        and state["charts"] > 0
        and state["drawn"] == state["charts"]
        and state["stale"] == 0
        and state["busy"] == 0
    )


def wait_until_drawn(
    page, title: str, started: float, before: dict | None = None
) -> tuple[float, int]:
    """Seconds from `started` until the page was drawn for good, and its number of charts.

    Polls what is on screen, and how many changes and script runs the page went through since
    `before` (the state when the action was taken; none: a page just loaded); the end is the
    moment of the last change, confirmed by QUIET_SECONDS without any (so a chart arriving late
    restarts the wait)."""
    before = before or {"changes": 0, "runs": 0}
    deadline = started + PAGE_TIMEOUT
    last_state, changed_at = None, time.perf_counter()
    while time.perf_counter() < deadline:
        state = page_state(page)
        now = time.perf_counter()
        if state["exceptions"]:
            raise BenchError(f"{title}: the page shows a Streamlit exception")
        if state != last_state:
            last_state, changed_at = state, now
        elif _is_drawn(state, title, before) and now - changed_at >= QUIET_SECONDS:
            return changed_at - started, state["charts"]
        time.sleep(0.05)
    raise BenchError(f"{title}: not drawn within {PAGE_TIMEOUT:.0f} s (last seen: {last_state})")


def visit(page, url: str, title: str) -> tuple[float, int]:
    """Open a URL (a full page load); seconds until drawn, and the number of charts."""
    started = time.perf_counter()
    page.goto(url, wait_until="commit")
    return wait_until_drawn(page, title, started)


def navigate(page, title: str) -> float:
    """Click a page in the sidebar navigation (no page load, as a user moves between pages);
    seconds until drawn."""
    link = page.locator('[data-testid="stSidebarNav"] a', has_text=title).first
    before = page_state(page)
    started = time.perf_counter()
    link.click()
    return wait_until_drawn(page, title, started, before)[0]


def choose_country(page, title: str, country: str = FILTER_COUNTRY) -> float:
    """Pick one country in the sidebar; seconds until the page is redrawn."""
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.locator('[data-testid="stMultiSelect"]', has_text="Countries").click()
    # Exact text: the menu also offers "Select all", which is no filter at all.
    option = page.get_by_role("option", name=country, exact=True).first
    option.wait_for()
    before = page_state(page)
    started = time.perf_counter()
    option.click()
    seconds, _ = wait_until_drawn(page, title, started, before)
    page.keyboard.press("Escape")
    return seconds


def full_page_screenshot(page, path: Path) -> None:
    """The whole page: Streamlit scrolls inside its main block, so the viewport is first made
    as tall as that block's content (a full_page screenshot alone shows one screen)."""
    height = page.evaluate(
        """() => Math.max(...['stMain', 'stSidebarContent'].map(id => {
             const e = document.querySelector(`[data-testid="${id}"]`);
             return e ? e.scrollHeight : 0; }))"""
    )
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": max(int(height), size["height"])})
    page.wait_for_timeout(500)  # charts re-lay out to the new size
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)
    page.wait_for_timeout(1000)  # and back: let the charts re-lay out before anything else


def launch_chromium(playwright):
    if not Path(CHROMIUM).exists():
        raise BenchError(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])


def new_page(browser):
    """A page in a new browser context (empty HTTP cache) that counts its own changes."""
    page = browser.new_context(viewport=VIEWPORT).new_page()
    page.add_init_script(WATCH_CHANGES_JS)
    return page


@contextmanager
def fresh_run_ids(lake: Path) -> Iterator[Callable[[], str]]:
    """A function that republishes the current export under a new run id (latest.json rewritten
    atomically, pointing at the same run folder), as a new publish does: every result the
    dashboard cached for the previous run id is then out of reach. latest.json is restored on
    exit."""
    latest = lake / "gold" / "latest.json"
    original = latest.read_text()

    def republish() -> str:
        document = json.loads(original)
        document["run_id"] = f"{document['run_id']}-bench-{secrets.token_hex(3)}"
        staged = latest.with_name("latest.json.bench")
        staged.write_text(json.dumps(document))
        staged.replace(latest)
        return document["run_id"]

    try:
        yield republish
    finally:
        staged = latest.with_name("latest.json.bench")
        staged.write_text(original)
        staged.replace(latest)


def measure_pages(
    env: dict[str, str],
    work_dir: Path,
    repeat: int,
    screenshots: Path | None = None,
    pages: dict[str, str] = PAGES,
) -> tuple[float, list[PageTimes]]:
    """The first visit ever (seconds), then the times of every page.

    One server and one browser tab serve the whole bench, as a user keeps the dashboard open.
    Before each page the export is republished under a new run id, then the page is reached
    from the sidebar: its first render finds every cache keyed on the run id empty (cold), as
    after a new publish. The first visit (fresh server, empty browser cache, a full page load)
    is measured on its own."""
    from playwright.sync_api import sync_playwright

    logs = work_dir / "bench-servers"
    logs.mkdir(parents=True, exist_ok=True)
    results = []
    with sync_playwright() as playwright, ExitStack() as stack:
        browser = launch_chromium(playwright)
        stack.callback(browser.close)
        page = new_page(browser)
        url = stack.enter_context(streamlit_server(env, logs / "server.log"))
        wait_until_healthy(url)
        republish = stack.enter_context(fresh_run_ids(Path(env["LAKE_DIR"])))
        republish()
        first_visit, _ = visit(page, url, "Overview")  # nothing cached anywhere
        console.print(f"  first visit (fresh server, empty browser cache): {first_visit:.2f} s")
        for title, path in pages.items():
            name = path or "overview"
            elsewhere = "Data quality" if title != "Data quality" else "Overview"
            if page_state(page)["title"] != elsewhere:  # (a click on the page shown may do nothing)
                navigate(page, elsewhere)
            republish()
            times = PageTimes(title)
            times.cold_seconds = navigate(page, title)
            times.charts = page_state(page)["charts"]
            for _ in range(repeat):
                navigate(page, elsewhere)
                times.warm_seconds.append(navigate(page, title))
            if screenshots is not None:
                full_page_screenshot(page, screenshots / f"{name}.png")
            times.filter_seconds = choose_country(page, title)
            visit(page, url, "Overview")  # a new session: no filter chosen any more
            results.append(times)
            console.print(
                f"  {title}: cold {times.cold_seconds:.2f} s, warm {times.warm_median:.2f} s, "
                f"filter {times.filter_seconds:.2f} s"
            )
    return first_visit, results


# --- the report -----------------------------------------------------------------------------
def print_report(results: list[PageTimes], summary: dict) -> None:
    table = Table(
        title=(
            f"Dashboard render times — {summary['clients']:,} clients, "
            f"{summary['purchases']:,} purchases (run {summary['run_id']})"
        )
    )
    table.add_column("page")
    table.add_column("charts", justify="right")
    table.add_column("cold (s)", justify="right")
    table.add_column("warm, median (s)", justify="right")
    table.add_column("filter change (s)", justify="right")
    for times in results:
        table.add_row(
            times.page,
            str(times.charts),
            f"{times.cold_seconds:.2f}",
            f"{times.warm_median:.2f}",
            f"{times.filter_seconds:.2f}",
        )
    console.print(table)
    console.print(
        "Seconds from navigation (or the filter click) until the last chart is drawn, in "
        "Chromium. cold: the page reached from the sidebar right after a new publish (a new "
        "run id: every cached query result out of reach); warm: the page reached again "
        "from the sidebar; filter: one country chosen. First visit ever (fresh server, empty "
        f"browser cache, Overview): {summary['first_visit_seconds']:.2f} s. "
        f"{summary['cpus']} CPUs; load "
        f"average (1, 5, 15 min) before {_loads(summary['load_average_before'])}, after "
        f"{_loads(summary['load_average_after'])}."
    )


def _loads(loads: tuple[float, float, float]) -> str:
    return " / ".join(f"{load:.1f}" for load in loads)


def chosen_pages(titles: list[str] | None) -> dict[str, str]:
    """The pages to time, in the navigation's order: every page, or those titled `titles`."""
    if not titles:
        return PAGES
    unknown = [title for title in titles if title not in PAGES]
    if unknown:
        raise BenchError(
            f"no dashboard page titled {', '.join(map(repr, unknown))}: --page takes one of "
            f"{', '.join(map(repr, PAGES))}"
        )
    return {title: path for title, path in PAGES.items() if title in titles}


def run_dashboard_bench(
    *,
    clients: int,
    work_dir: Path | None,
    repeat: int,
    json_out: Path | None,
    pages: list[str] | None = None,
) -> dict:
    """Prepare (or reuse) an export, time every page (or those titled `pages`), print the
    figures, write them as JSON."""
    # A SIGTERM (timeout, Ctrl+C from a parent) unwinds like an exception: servers get stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        timed = chosen_pages(pages)
    except BenchError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise SystemExit(2) from exc
    temporary = work_dir is None
    work = Path(work_dir or tempfile.mkdtemp(prefix="bench-dashboard-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    try:
        latest = prepare_export(work, clients)
        env = lake_environment(work)
        counts = latest.get("row_counts", {})
        summary = {
            "clients": counts.get("rpt_client_kpis", clients),
            "purchases": counts.get("fct_sales", 0),
            "run_id": latest["run_id"],
            "work_dir": str(work),
            "cpus": os.cpu_count(),
            "repeat": repeat,
            "load_average_before": os.getloadavg(),
        }
        console.print(f"timing {len(timed)} page(s) in Chromium …")
        first_visit, results = measure_pages(
            env, work, repeat, screenshots=work / "screenshots", pages=timed
        )
        summary["first_visit_seconds"] = first_visit
        summary["load_average_after"] = os.getloadavg()
    except BenchError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise SystemExit(1) from exc
    finally:
        if temporary:
            shutil.rmtree(work, ignore_errors=True)
    print_report(results, summary)
    report = {
        **summary,
        "pages": [{**asdict(times), "warm_median_seconds": times.warm_median} for times in results],
    }
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report, indent=2))
        console.print(f"figures written to {json_out}")
    return report
