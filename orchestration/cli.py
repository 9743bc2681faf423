"""`lakehouse`: the command line of the project (see README.md for the whole tour)."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from orchestration.bench_cli import bench_app
from orchestration.settings import get_settings, reload_settings

app = typer.Typer(
    help="Retail lakehouse: object store → dbt/DuckDB → Parquet marts → dashboard.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
store_app = typer.Typer(help="The embedded S3 object store (SeaweedFS).", no_args_is_help=True)
app.add_typer(store_app, name="objectstore")
app.add_typer(bench_app, name="bench")
console = Console(stderr=True)
out = Console()


QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress and no tables; errors only.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]


def _target_option(value: str | None) -> str | None:
    if value is None:
        return None
    if value not in ("lake", "spark", "spark_cluster"):
        raise typer.BadParameter(
            f"--target must be 'lake', 'spark' or 'spark_cluster', got {value!r}"
        )
    os.environ["DBT_TARGET"] = value
    reload_settings()
    return value


TargetOption = Annotated[
    str | None,
    typer.Option(
        callback=_target_option,
        help="dbt target: 'lake' (DuckDB), 'spark' (local PySpark, needs LAKE_DIR) or "
        "'spark_cluster'. Default: DBT_TARGET.",
    ),
]


class _Failed(typer.Exit):
    """What `_fail` raises: typer's exit, with the message it printed and, for a run whose flow
    started, the flow's summary so far."""

    def __init__(self, message: str, code: int, summary: dict | None = None):
        super().__init__(code)
        self.message = message
        self.summary = summary


def _fail(message: str, code: int = 1, summary: dict | None = None) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise _Failed(message, code, summary)


def _iso_date(value: str | None) -> str | None:
    """A date option (--as-of, --end-date): YYYY-MM-DD."""
    if value is not None:
        try:
            date.fromisoformat(value)
        except ValueError:
            raise typer.BadParameter(f"must be YYYY-MM-DD, got {value!r}") from None
    return value


def _refuse_cluster_target(command: str) -> None:
    """`run` and `serve` end by publishing from the warehouse, which the export reads locally:
    on spark_cluster they would ingest and build, then fail. Refuse before anything starts."""
    if get_settings().dbt_target == "spark_cluster":
        _fail(
            f"`lakehouse {command}` publishes from a local warehouse (target lake or spark), and "
            "the target is spark_cluster (--target or DBT_TARGET). On a cluster, land the files "
            "with `lakehouse ingest` and build with `dbt build --target spark_cluster` (README, "
            "'A real cluster')."
        )


@contextlib.contextmanager
def _progress(description: str, total: float | None, enabled: bool):
    """A progress bar on stderr for a long step; yields `advance(amount=1)`."""
    if not enabled:
        yield lambda *_: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn()]
    columns += [MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda amount=1: bar.advance(task, amount if isinstance(amount, int) else 1)


@contextlib.contextmanager
def _writer_lock(command: str, refused: str = ""):
    """The warehouse's run lock for `command`; `refused` prefixes the message when another
    process holds it."""
    from orchestration.runlock import RunLocked, run_lock

    try:
        with run_lock(command):
            yield
    except RunLocked as exc:
        _fail(f"{refused}{exc}")


def _prefect_environment(quiet_console: bool = True) -> Callable[[], None]:
    """Prefect keeps its local state in the project's state folder, with analytics off.

    `quiet_console`: Prefect's console shows warnings only (the command prints its own summary);
    its loggers stay at INFO, so a Prefect server still gets every log of the run.

    Without PREFECT_API_URL, a temporary local API server serves the command (prefect_api.py);
    it boots in the background, and the function returned waits for it: call it after the
    imports, before the first use of Prefect.
    """
    settings = get_settings()
    home = Path(os.environ.setdefault("PREFECT_HOME", str(settings.state_dir / "prefect")))
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_UI_ENABLED", "false")
    if quiet_console:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    timeout = os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    if os.environ.get("PREFECT_API_URL"):
        return lambda: None
    # The temporary API lives only as long as the command: logs shipped to it at exit would find
    # it gone.
    os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")
    from orchestration.prefect_api import LocalApi, PrefectApiError

    api = LocalApi(float(timeout))
    os.environ["PREFECT_API_URL"] = api.api_url

    def wait() -> None:
        try:
            api.wait()
        except PrefectApiError as exc:
            _fail(str(exc))

    return wait


def _ensure_store(quiet: bool = False) -> None:
    """Start the embedded object store when the lake lives in it and it is not running."""
    settings = get_settings()
    if not settings.uses_object_store:
        return
    from orchestration.objectstore import EmbeddedStore
    from orchestration.storage import StorageError

    try:
        status = EmbeddedStore(settings).start()
    except StorageError as exc:
        _fail(str(exc))
    if not quiet:
        console.print(f"object store: {status.describe()}")


# --- object store --------------------------------------------------------------------------


@store_app.command("start")
def store_start() -> None:
    """Start the embedded SeaweedFS on 127.0.0.1 (or check S3_ENDPOINT) and create the buckets."""
    from orchestration.objectstore import EmbeddedStore
    from orchestration.storage import StorageError

    try:
        status = EmbeddedStore().start()
    except StorageError as exc:
        _fail(str(exc))
    out.print(status.describe())


@store_app.command("stop")
def store_stop() -> None:
    """Stop the embedded SeaweedFS (its data stays in the state folder)."""
    from orchestration.objectstore import EmbeddedStore

    stopped = EmbeddedStore().stop()
    out.print("stopped" if stopped else "the embedded object store was not running")


@store_app.command("status")
def store_status() -> None:
    """Say whether the object store answers; exit 1 if it does not."""
    from orchestration.objectstore import EmbeddedStore

    settings = get_settings()
    if not settings.uses_object_store:
        out.print(f"LAKE_DIR is set: the lake is the folder {settings.lake_dir}, no object store")
        return
    status = EmbeddedStore().status()
    out.print(status.describe())
    if not status.running:
        raise typer.Exit(1)


# --- data ----------------------------------------------------------------------------------


def _parse_range(text: str) -> tuple[int, int]:
    try:
        low, high = (int(part) for part in text.split("-", 1))
    except ValueError:
        raise typer.BadParameter(
            f"--purchases-per-client must be MIN-MAX such as 2-8, got {text!r}"
        ) from None
    if not 1 <= low <= high:
        raise typer.BadParameter(
            f"--purchases-per-client must be MIN-MAX with 1 <= MIN <= MAX, got {text!r}"
        )
    return low, high


@app.command()
def generate(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the CSV files to.")],
    clients: Annotated[int, typer.Option(min=1, help="Number of clients.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed → same files).")] = 42,
    end_date: Annotated[
        str | None,
        typer.Option(
            callback=_iso_date, help="Last business date, YYYY-MM-DD (default today, UTC)."
        ),
    ] = None,
    dirty_rate: Annotated[
        float, typer.Option(min=0.0, max=0.5, help="Share of rows given a defect.")
    ] = 0.0,
    batches: Annotated[int, typer.Option(min=1, help="Number of batches (file pairs).")] = 1,
    purchases_per_client: Annotated[
        str, typer.Option(help="Purchases per client, MIN-MAX.")
    ] = "2-8",
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Generate a retail data set (clients and purchases CSV files, one pair per batch)."""
    from orchestration.generator import generate as run_generator

    end = date.fromisoformat(end_date) if end_date else None
    per_client = _parse_range(purchases_per_client)
    _refuse_a_data_set_in(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    with _progress("generating clients", clients, not (quiet or as_json)) as advance:
        manifest = run_generator(
            out_dir,
            clients=clients,
            seed=seed,
            end_date=end,
            purchases_per_client=per_client,
            batches=batches,
            dirty_rate=dirty_rate,
            progress=advance,
        )
    seconds = (datetime.now(UTC) - started).total_seconds()
    files = manifest.get("files", {})
    if as_json:
        out.print_json(json.dumps({"out": str(out_dir), "seconds": seconds, "files": files}))
    elif not quiet:
        out.print(f"generated {len(files)} files in {out_dir} in {seconds:.1f} s")


def _refuse_a_data_set_in(out_dir: Path) -> None:
    """A new data set never lands on another: overwriting some of its files and leaving the
    others (a run of 10 batches, then one of 2) would mix two data sets under one manifest."""
    if out_dir.exists() and not out_dir.is_dir():
        _fail(f"--out {out_dir} is a file; give a folder")
    if not out_dir.is_dir():
        return
    found = sorted(
        path.name
        for pattern in ("generation_manifest.json", "clients_*.csv", "purchases_*.csv")
        for path in out_dir.glob(pattern)
    )
    if found:
        _fail(
            f"--out {out_dir} already holds a data set ({', '.join(found[:3])}"
            f"{', …' if len(found) > 3 else ''}): give an empty or new folder, or remove those "
            "files first"
        )


@app.command("ingest")
def ingest_command(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="CSV files or folders (default: the landing area).")
    ] = None,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Land CSV files in bronze: upload to `sources`, then copy new content into bronze."""
    from orchestration.ingest import ingest
    from orchestration.storage import Lake, StorageError

    _ensure_store(quiet or as_json)
    lake = Lake()
    with _writer_lock("lakehouse ingest"):
        try:
            lake.wait_until_reachable(log=None if quiet else console.print)
            with _progress("landing files", None, not (quiet or as_json)) as advance:
                report = ingest(lake, paths or None, progress=advance)
        except (StorageError, FileNotFoundError) as exc:
            _fail(str(exc))
    if as_json:
        out.print_json(json.dumps(report.as_dict()))
    elif not quiet:
        _print_ingest(report)


def _print_ingest(report) -> None:
    if not (report.landed or report.skipped or report.refused):
        out.print(
            "no files to ingest: give CSV files, or folders holding `*.csv` files (default: the "
            "landing area)"
        )
        return
    table = Table(title="Ingestion", show_lines=False)
    table.add_column("file")
    table.add_column("outcome")
    table.add_column("detail")
    for item in report.landed:
        detail = (
            f"{item.entity}, {item.rows:,} rows ({item.malformed:,} malformed) → {item.bronze_key}"
        )
        table.add_row(item.source, "[green]landed[/]", detail)
    for name, why in report.skipped:
        table.add_row(name, "[yellow]skipped[/]", why)
    for name, why in report.refused:
        table.add_row(name, "[red]refused[/]", why)
    out.print(table)


@app.command("export")
def export_command(
    as_of: Annotated[
        str | None,
        typer.Option(
            callback=_iso_date,
            help="The business date the warehouse was built for (default: the one it records; "
            "another date is refused).",
        ),
    ] = None,
    target: TargetOption = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Publish even when the last dbt build did not pass every test, or the quality "
            "score is under QUALITY_THRESHOLD.",
        ),
    ] = False,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Publish the warehouse's marts as Parquet and switch latest.json to them.

    The checks of `lakehouse run` apply: nothing is published when the last dbt build did not
    pass every test or the quality score is under QUALITY_THRESHOLD, unless --force is given.
    """
    from orchestration.export import ExportError, export
    from orchestration.storage import StorageError
    from orchestration.warehouse import WarehouseError

    _ensure_store(quiet or as_json)
    with _writer_lock("lakehouse export"):
        try:
            with _progress("exporting models", None, not (quiet or as_json)) as advance:
                result = export(as_of, progress=advance, force=force)
        except (ExportError, StorageError, WarehouseError) as exc:
            _fail(str(exc))
    if as_json:
        out.print_json(json.dumps(vars(result), default=str))
    elif not quiet:
        table = Table(title=f"Published run {result.run_id} in {result.seconds:.1f} s")
        table.add_column("model")
        table.add_column("rows", justify="right")
        table.add_column("file")
        for model, rows in sorted({**result.gold, **result.silver}.items()):
            made = "copied (unchanged)" if model in result.reused else "written"
            table.add_row(model, f"{rows:,}", made)
        out.print(table)


def _dbt_tasks_option(value: str | None) -> str | None:
    if value not in (None, "build", "node"):
        raise typer.BadParameter(f"--dbt-tasks must be 'build' or 'node', got {value!r}")
    return value


DbtTasksOption = Annotated[
    str | None,
    typer.Option(
        callback=_dbt_tasks_option,
        help="Prefect tasks for dbt: 'build' (one, fast) or 'node' (one per model and test). "
        "Default: DBT_TASK_GRANULARITY.",
    ),
]


@app.command()
def run(
    sources: Annotated[
        Path | None, typer.Option(help="Folder (or file) of CSV files to ingest first.")
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", callback=_iso_date, help="Business date YYYY-MM-DD (default today, UTC)."
        ),
    ] = None,
    dbt_tasks: DbtTasksOption = None,
    target: TargetOption = None,
    full_refresh: Annotated[
        bool,
        typer.Option(
            "--full-refresh",
            help="Rebuild silver and the sales fact from all of bronze (after an upgrade that "
            "changed their logic or columns); default: only new bronze files.",
        ),
    ] = False,
    quiet: QuietOption = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print the run's summary as JSON on stdout, a failed or refused run's too.",
        ),
    ] = False,
) -> None:
    """Run the whole pipeline as a Prefect flow: ingest → dbt build → quality gate → docs → export.

    Nothing is published when a step fails or the quality score is under QUALITY_THRESHOLD.
    """
    try:
        summary = _run_pipeline(sources, as_of, dbt_tasks, full_refresh, quiet or as_json)
    except (_Failed, ValidationError) as exc:  # `main` prints a bad setting on stderr
        if as_json:  # a script gets JSON either way: the flow's summary, or why it never started
            out.print_json(json.dumps(_unfinished_run(exc), default=str))
        raise
    if as_json:
        out.print_json(json.dumps(summary, default=str))
    elif not quiet:
        _print_run(summary)


def _unfinished_run(exc: _Failed | ValidationError) -> dict:
    """`run --json`'s document for a run that did not succeed: the summary of a flow that
    started and failed, else a refusal saying why the run never started."""
    if isinstance(exc, ValidationError):
        return {"status": "refused", "error": " ".join(_settings_errors(exc))}
    return exc.summary or {"status": "refused", "error": exc.message}


def _run_pipeline(
    sources: Path | None, as_of: str | None, dbt_tasks: str | None, full_refresh: bool, quiet: bool
) -> dict:
    """`lakehouse run` up to the flow's summary; `_fail`s when the run is refused or fails."""
    if sources is not None and not sources.exists():
        _fail(f"--sources {sources}: no such file or folder")
    _refuse_cluster_target("run")
    # The lock before anything else: a second run is refused at once, before Prefect boots and
    # dbt parses (the flow takes the same lock again, for served runs).
    with _writer_lock("lakehouse run", refused="the run did not start, nothing was published: "):
        # The store first: it picks its ports, and the API server would otherwise hold one it was
        # just given back while booting.
        _ensure_store(quiet)
        temporary_api = not os.environ.get("PREFECT_API_URL")
        prefect_ready = _prefect_environment()
        from orchestration import dbt_runner
        from orchestration.flow import pipeline  # Prefect and dbt load while the API boots

        as_of = as_of or datetime.now(UTC).strftime("%Y-%m-%d")
        if (dbt_tasks or get_settings().dbt_task_granularity) == "build":
            dbt_runner.parse_ahead(as_of)  # prefect-dbt's runner (one task per node) parses itself
        prefect_ready()
        progress = contextlib.nullcontext() if quiet else console.status("running the pipeline…")
        with _flow_settings(temporary_api), progress:
            try:
                return pipeline(
                    sources=str(sources.resolve()) if sources else None,
                    as_of_date=as_of,
                    dbt_tasks=dbt_tasks,
                    full_refresh=full_refresh,
                )
            except Exception as exc:  # the flow logged the details and wrote its artifact
                _fail(f"the run failed, nothing was published: {exc}", 1, _flow_summary(exc))
            except KeyboardInterrupt as exc:
                message = "interrupted: nothing was published, the previous export stays in place"
                _fail(message, 130, _flow_summary(exc))


def _flow_summary(exc: BaseException) -> dict:
    """The summary a failed or interrupted flow attached to its exception (its status, error
    and the stages that ran); a minimal one when the exception carries none (raised by Prefect
    before the flow's body ran)."""
    failed = "failed" if isinstance(exc, Exception) else "interrupted"
    return getattr(exc, "run_summary", None) or {"status": failed, "error": str(exc)}


def _flow_settings(temporary_api: bool) -> contextlib.AbstractContextManager:
    """Prefect settings for the flow this command runs.

    On the temporary API the flow run sends no heartbeats: they let a server tell a crashed run
    from a running one, and this server ends with the run. Prefect's heartbeat thread sleeps in
    whole seconds, so stopping it held the end of every run for up to a second (0.8 s
    measured). The environment cannot turn them off (PREFECT_FLOWS_HEARTBEAT_FREQUENCY takes a
    number of seconds only).
    """
    if not temporary_api:
        return contextlib.nullcontext()
    from prefect.settings import temporary_settings

    return temporary_settings(updates={"flows.heartbeat_frequency": None})


def _skipped_lines(skipped: list[dict], shown: int = 3) -> list[str]:
    """Why files were skipped, one line per reason with the first few names."""
    from orchestration.run_report import skipped_by_reason

    return [f"  skipped ({reason}): {names}" for reason, names in skipped_by_reason(skipped, shown)]


def _print_run(summary: dict) -> None:
    """The final summary: files, rows per layer and quality, tests, what was published."""
    ingest_part = summary["ingest"]
    out.print(
        f"files: {len(ingest_part['landed'])} landed, {len(ingest_part['skipped'])} skipped, "
        f"{len(ingest_part['refused'])} refused"
    )
    for refused in ingest_part["refused"]:
        out.print(f"  [red]refused[/] {refused['reason']}")
    for line in _skipped_lines(ingest_part["skipped"]):
        out.print(line, highlight=False)

    quality = summary.get("quality", {})
    table = Table(title=f"Run {summary['run_id']} (as of {summary['as_of_date']})")
    for column in ("entity", "bronze", "silver", "quarantined", "quality score"):
        table.add_column(column, justify="left" if column == "entity" else "right")
    parts = {**quality.get("entities", {}), "overall": quality.get("overall", {})}
    for entity, part in parts.items():
        counts = [f"{part.get(f'{layer}_rows', 0):,}" for layer in ("bronze", "silver")]
        counts.append(f"{part.get('quarantined_rows', 0):,}")
        table.add_row(entity, *counts, str(part.get("quality_score")))
    out.print(table)

    stages = Table(title="Stages")
    stages.add_column("stage")
    stages.add_column("seconds", justify="right")
    for stage, seconds in summary["durations"].items():
        stages.add_row(stage, f"{seconds:.1f}")
    out.print(stages)
    tests = ", ".join(f"{count} {status}" for status, count in sorted(summary["dbt"].items()))
    out.print(f"dbt: {tests}")
    if summary.get("silver"):
        out.print(f"silver: {summary['silver']}")
    if summary.get("unit_tests"):
        out.print(f"dbt unit tests: {summary['unit_tests']}")
    export_part = summary["export"]
    out.print(
        f"published {export_part['run_id']}: {len(export_part['gold'])} gold and "
        f"{len(export_part['silver'])} silver models{_reused_note(export_part['reused'])}"
    )


def _reused_note(reused: list[str]) -> str:
    """The files an export copied from the previous run (their tables unchanged since)."""
    if not reused:
        return ""
    return f" ({len(reused)} unchanged since the previous run, copied: {', '.join(sorted(reused))})"


@app.command()
def serve(
    cron: Annotated[
        str | None, typer.Option(help="Cron schedule, UTC (default: SCHEDULE_CRON, daily).")
    ] = None,
    name: Annotated[str, typer.Option(help="Deployment name.")] = "scheduled",
    dbt_tasks: DbtTasksOption = "node",
    target: TargetOption = None,
) -> None:
    """Serve the pipeline as a Prefect deployment on a cron schedule (needs PREFECT_API_URL).

    Runs are visible in the Prefect UI of that server, with one task per dbt node by default.
    Trigger one at once with `prefect deployment run lakehouse-pipeline/<name>`.
    """
    settings = get_settings()
    _refuse_cluster_target("serve")
    if not os.environ.get("PREFECT_API_URL"):
        _fail(
            "PREFECT_API_URL is not set: a served deployment needs a Prefect server. Start one "
            "with `.venv/bin/prefect server start --host 127.0.0.1` and set "
            "PREFECT_API_URL=http://127.0.0.1:4200/api (docker compose sets it for you)."
        )
    from orchestration.prefect_api import healthy

    url = os.environ["PREFECT_API_URL"]
    if not healthy(url):
        _fail(
            f"PREFECT_API_URL={url} does not answer ({url}/health): start the Prefect server "
            "(`.venv/bin/prefect server start --host 127.0.0.1`, or `docker compose up -d`) or "
            "fix the URL."
        )
    _prefect_environment(quiet_console=False)  # a served run's logs: in the console and the UI
    from prefect.client.schemas.schedules import CronSchedule

    schedule = cron or settings.schedule_cron
    try:
        CronSchedule(cron=schedule, timezone="UTC")
    except ValueError:
        _fail(f"SCHEDULE_CRON / --cron {schedule!r} is not a valid cron expression")
    _ensure_store()
    from orchestration.flow import pipeline

    console.print(
        f"serving lakehouse-pipeline/{name} on {schedule!r} (UTC) against "
        f"{os.environ['PREFECT_API_URL']}; Ctrl+C to stop"
    )
    pipeline.serve(
        name=name,
        cron=schedule,
        parameters={"dbt_tasks": dbt_tasks},
        description="Daily lakehouse run: ingest the landing area, build, gate, publish.",
        print_starting_message=False,
        limit=1,  # one run at a time per server process; the run lock covers the rest
    )


@app.command()
def dashboard(
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8501).")] = None,
) -> None:
    """Serve the Streamlit dashboard over the latest export."""
    from dashboard import streamlit_command

    settings = get_settings()
    args = streamlit_command(host or settings.dashboard_host, port or settings.dashboard_port)
    raise typer.Exit(subprocess.call(args))


@app.command()
def docs(
    port: Annotated[int, typer.Option(help="Port for the docs site.")] = 8080,
    serve: Annotated[bool, typer.Option(help="Serve after generating.")] = True,
    target: TargetOption = None,
) -> None:
    """Generate the dbt docs (lineage site) and serve them on 127.0.0.1."""
    from orchestration import dbt_runner
    from orchestration.export import recorded_as_of

    with _writer_lock("lakehouse docs"):  # dbt opens the warehouse to read its catalog
        # The business date the warehouse was built for: the docs show what was built, and the
        # build's vars let dbt reuse its parse.
        as_of = recorded_as_of(get_settings()) or datetime.now(UTC).strftime("%Y-%m-%d")
        try:
            outcome = dbt_runner.run_dbt(["docs", "generate", "--vars", dbt_runner.dbt_vars(as_of)])
        except dbt_runner.DbtError as exc:
            _fail(str(exc))
    if not outcome.success:
        _fail(f"dbt docs generate failed; see {dbt_runner.log_file(get_settings())}")
    if serve:
        console.print(f"dbt docs on http://127.0.0.1:{port} (Ctrl+C to stop)")
        dbt_runner.run_dbt(
            ["docs", "serve", "--host", "127.0.0.1", "--port", str(port), "--no-browser"],
            quiet=False,
        )


@app.command()
def where(target: TargetOption = None) -> None:
    """Print where the dashboard, the dbt docs and the data are."""
    from orchestration.dbt_runner import target_path
    from orchestration.export import read_latest
    from orchestration.storage import Lake, StorageError

    settings = get_settings()
    lake = Lake(settings)
    table = Table(title="Where things are", show_header=False)
    table.add_column("what")
    table.add_column("where")
    table.add_row("dashboard", f"http://{settings.dashboard_host}:{settings.dashboard_port}")
    docs_index = target_path(settings) / "index.html"
    table.add_row("dbt docs", f"{docs_index}  (served by `make docs` on http://127.0.0.1:8080)")
    if settings.uses_object_store:
        table.add_row("object store", f"{settings.endpoint} (S3, path style)")
    for layer in ("sources", "bronze", "silver", "gold"):
        table.add_row(layer, lake.root(layer))
    table.add_row("dbt target", settings.dbt_target)
    if settings.dbt_target == "spark_cluster":
        table.add_row("warehouse", "the Spark cluster's metastore (SPARK_HOST, profiles.yml)")
    elif settings.engine == "spark":
        table.add_row("warehouse", f"{settings.spark_warehouse_path} (Spark tables, Parquet)")
    else:
        table.add_row("warehouse", str(settings.warehouse_path))
    try:
        latest = read_latest(lake)
    except StorageError as exc:
        latest = None
        table.add_row("latest export", f"unreadable: {exc}")
    if latest:
        table.add_row("latest export", f"{latest['run_uri']} (as of {latest['as_of_date']})")
    out.print(table)


def main() -> None:
    """Entry point of `.venv/bin/lakehouse`.

    prefect-dbt leaves one daemon thread per dbt node behind; at interpreter finalization Python
    force-exits daemon threads, and unwinding through native frames aborts the process
    ("FATAL: exception not rethrown", exit 134) after a run that succeeded. So once the command
    is done, the exit handlers run (the temporary Prefect API stops, logs are flushed) and the
    process ends with the command's own exit code, without the finalization step.
    """
    # A stop signal ends the command as Ctrl+C does, through the exit handlers below (the
    # temporary Prefect API server stops with it), not in the middle of everything.
    signal.signal(signal.SIGTERM, _stop_on_signal)
    # A command that seems stuck: `kill -USR1 <pid>` prints every thread's stack on stderr and
    # lets it go on.
    signal.signal(signal.SIGUSR1, _print_stacks)
    code: int | str | None = 0
    try:
        app()
    except SystemExit as exit_:
        code = exit_.code
    except ValidationError as exc:  # a setting from the environment or .env
        for line in _settings_errors(exc):
            console.print(f"[bold red]error:[/] {line}", highlight=False)
        code = 1
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    _drain_prefect_workers()
    atexit._run_exitfuncs()
    _stop_children()
    os._exit(code or 0)


def _stop_on_signal(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"stopped by signal {signum}")


def _print_stacks(_signum: int, interrupted: FrameType | None) -> None:
    """Every thread's Python stack on stderr, most recent call first; the command goes on.

    Not `faulthandler.register`: its C handler walks the other threads' frames without the GIL
    and crashed a run (SIGSEGV) whose dbt and Prefect threads were starting and ending
    (python/cpython#116008). This handler runs in the main thread with the GIL held, and writes
    with `os.write`: the main thread may be inside a write to `sys.stderr` when the signal comes.
    """
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    report = []
    for ident, frame in sys._current_frames().items():
        if ident == threading.get_ident():  # this handler's frame: start where it came in
            frame = interrupted
        report.append(f"\nThread {ident:#x} {names.get(ident, '')} (most recent call first):\n")
        report.extend(reversed(traceback.format_stack(frame)))
    data = "".join(report).encode(errors="replace")
    while data:
        data = data[os.write(2, data) :]


def _settings_errors(exc: ValidationError) -> list[str]:
    """One line per setting the environment or `.env` gives a value the settings refuse."""
    lines = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"]).upper()  # the alias, or LAKE_DIR
        reason = error["msg"].removeprefix("Value error, ")
        lines.append(
            f"{name}={error['input']!r}: {reason}. Fix it in the environment or .env "
            "(see .env.example)."
        )
    return lines


def _drain_prefect_workers() -> None:
    """Deliver Prefect's queued events and logs while its API server is still up.

    A normal exit drains them from threading's exit hooks, before the atexit handler that stops
    the temporary API server; a worker left undrained would find the server gone.
    """
    if "prefect" not in sys.modules:
        return
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (EventsWorker, APILogWorker):
        with contextlib.suppress(Exception):
            worker.drain_all(timeout=10)


def _stop_children() -> None:
    """Terminate child processes a library forgot to stop (a Prefect API server of its own).

    Only children in our own process group: servers the project starts on purpose (the embedded
    object store) run in a session of their own and outlive the command. Python's
    multiprocessing resource tracker is left alone: it ignores SIGTERM and exits when this
    process does (it waits for its pipe to close).
    """
    import time

    me, group = str(os.getpid()), str(os.getpgrp())
    signalled: set[int] = set()
    # A late starter may appear while we look: look again after stopping one, and stop looking
    # once a look finds no child left to stop (a pause on every exit cost each command 0.6 s).
    for _ in range(3):
        found = set(_children(me, group)) - signalled
        if not found:
            return
        for pid in found:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        signalled |= found
        time.sleep(0.2)


def _children(parent_pid: str, group: str) -> Iterator[int]:
    """Live children of `parent_pid` in process group `group`, but the resource tracker."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            state, parent, process_group = fields[0], fields[1], fields[2]
            if parent != parent_pid or process_group != group or state == "Z":
                continue
            command = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if b"multiprocessing.resource_tracker" not in command:
            yield int(stat.parent.name)


if __name__ == "__main__":
    main()
