"""The Prefect flow: check store → ingest → dbt build → quality gate → dbt docs → export.

The flow runs on the Prefect API that PREFECT_API_URL names; `lakehouse run` starts a temporary
local one when it is unset (orchestration/prefect_api.py), and `lakehouse serve` serves the flow
as a scheduled deployment. It holds the warehouse's run lock
throughout, and fails, publishing nothing, as soon as a step fails or the quality score is under
QUALITY_THRESHOLD: the dashboard keeps the previous export. Every run, failed or not, leaves a
Markdown artifact (orchestration/run_report.py).
"""

from __future__ import annotations

import atexit
import ctypes
import logging
import os
import sys
import threading
import time
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path

import pyarrow
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from orchestration import dbt_runner, run_report, unit_tests
from orchestration.export import ExportError, export, gate_message, new_run_id, quality_gate
from orchestration.incremental import (
    CODE_VARIABLE,
    FULL_REFRESH_MODELS_VARIABLE,
    TEST_SCOPE_VARIABLE,
    build_selection,
    record_built_code,
)
from orchestration.ingest import IngestReport, ingest
from orchestration.runlock import RunLocked, run_lock
from orchestration.settings import PROJECT_ROOT, Settings, get_settings
from orchestration.storage import CredentialsRefused, Lake, StorageError


def _retry_unless_refused(task, task_run, state) -> bool:
    """Retry I/O failures, never refused credentials (retrying them only storms the store)."""
    try:
        state.result()
    except CredentialsRefused:
        return False
    except Exception:
        return True
    return True


@task(
    name="ingest",
    retries=2,
    retry_delay_seconds=[2, 5],
    retry_condition_fn=_retry_unless_refused,
)
def ingest_task(sources: str | None) -> IngestReport:
    lake = Lake(get_settings())
    report = ingest(lake, [Path(sources)] if sources else None)
    logger = get_run_logger()
    for item in report.landed:
        logger.info("landed %s as %s (%d rows)", item.source, item.bronze_key, item.rows)
    for name, why in report.skipped:
        logger.info("skipped %s: %s", name, why)
    for _name, why in report.refused:
        logger.warning("refused %s", why)
    return report


@task(name="dbt build")
def dbt_build_task(
    as_of_date: str, run_id: str, full_refresh: bool = False
) -> dbt_runner.DbtOutcome:
    """`dbt build` as one Prefect task: no per-node overhead (the default). The models that no
    new bronze file reaches (every one but rpt_gold_summary can be) are left out
    (orchestration/incremental.py)."""
    settings = get_settings()
    args, silver, unit_test_plan = _build_args(as_of_date, settings, full_refresh)
    os.environ[dbt_runner.RUN_ID_VARIABLE] = run_id
    outcome = dbt_runner.run_dbt([*args, "--vars", dbt_runner.dbt_vars(as_of_date)], settings)
    outcome.silver, outcome.unit_tests = silver, unit_test_plan.describe()
    if not outcome.success:
        raise dbt_runner.DbtError(dbt_runner.build_failure(outcome))
    _record_build(settings, unit_test_plan, outcome)
    return outcome


def _build_args(
    as_of_date: str, settings: Settings, full_refresh: bool = False
) -> tuple[list[str], str, unit_tests.UnitTestPlan]:
    """`dbt build` and what it leaves out: the models that no new bronze file reaches
    (orchestration/incremental.py), the unit tests when the code is unchanged since they passed
    (orchestration/unit_tests.py); and the incremental models a change of code reaches, which
    it rebuilds in full (named to dbt in the environment, read by macros/incremental.sql)."""
    unit_test_plan = unit_tests.plan(settings)
    selection = build_selection(
        as_of_date, settings, full_refresh, unit_test_plan.code_changed, unit_test_plan.fingerprint
    )
    os.environ[FULL_REFRESH_MODELS_VARIABLE] = ",".join(selection.full_refresh_models)
    os.environ[TEST_SCOPE_VARIABLE] = selection.test_scope
    os.environ[CODE_VARIABLE] = unit_test_plan.fingerprint
    get_run_logger().info("silver: %s; unit tests: %s", selection.silver, unit_test_plan.describe())
    return [*selection.args, *unit_test_plan.dbt_args()], selection.silver, unit_test_plan


def _record_build(
    settings: Settings, unit_test_plan: unit_tests.UnitTestPlan, outcome: dbt_runner.DbtOutcome
) -> None:
    """After a build in which nothing failed: the code the unit tests passed on, and the code
    the incremental tables now reflect."""
    unit_tests.record_pass(settings, unit_test_plan, outcome.passed("unit_test"))
    record_built_code(settings)


def dbt_build(
    as_of_date: str, run_id: str, per_node: bool, full_refresh: bool = False
) -> dbt_runner.DbtOutcome:
    """`dbt build`: one Prefect task, or one per model, seed and test (prefect-dbt)."""
    if not per_node:
        return dbt_build_task(as_of_date, run_id, full_refresh)
    from dbt_common.events.base_types import EventLevel
    from prefect_dbt import PrefectDbtSettings

    settings = get_settings()
    args, silver, unit_test_plan = _build_args(as_of_date, settings, full_refresh)
    dbt_runner.dbt_environment(settings)
    os.environ[dbt_runner.RUN_ID_VARIABLE] = run_id
    started = time.monotonic()
    node_threads: list[threading.Thread] = []
    try:
        with dbt_runner.no_node_starts_after_interrupt() as guard:
            runner = _prefect_dbt_runner_class(guard, node_threads)(
                settings=PrefectDbtSettings(
                    project_dir=settings.dbt_project_dir,
                    profiles_dir=PROJECT_ROOT,
                    log_level=EventLevel.WARN,
                ),
                raise_on_failure=True,
                disable_assets=True,
            )
            try:
                result = runner.invoke([*args, "--vars", dbt_runner.dbt_vars(as_of_date)])
            except ValueError as exc:  # how prefect-dbt reports every exception dbt caught
                if guard.interrupted.is_set():  # an interrupted run, not a failed one
                    raise KeyboardInterrupt(str(exc)) from exc
                raise
    finally:
        dbt_runner.release_dbt_connections()
        _join_node_threads(node_threads)
    nodes, timing = dbt_runner.node_results(result.result)
    outcome = dbt_runner.DbtOutcome(
        "build", bool(result.success), nodes, time.monotonic() - started, timing, silver
    )
    outcome.unit_tests = unit_test_plan.describe()
    if outcome.success:
        _record_build(settings, unit_test_plan, outcome)
    return outcome


def _join_node_threads(threads: list[threading.Thread], stall: float = 120.0) -> None:
    """Wait for the per-node task threads to report their tasks' final states.

    They are daemon threads that may still be sending a task's last state when `invoke` returns;
    a served flow-run process exiting under them loses those events ("can't register atexit
    after shutdown") and the UI shows the tasks unfinished, or not at all. On a busy machine they
    can lag well behind dbt: wait as long as they finish, and give up only once none did for
    `stall` seconds.
    """
    started = progress = time.monotonic()
    pending = [thread for thread in threads if thread.is_alive()]
    while pending and time.monotonic() - progress < stall:
        pending[0].join(max(progress + stall - time.monotonic(), 0))
        still = [thread for thread in pending if thread.is_alive()]
        if len(still) < len(pending):
            progress = time.monotonic()
        pending = still
    if pending:
        get_run_logger().warning(
            "%d of %d Prefect tasks of dbt nodes did not report their end in %.0f s: the UI may "
            "show them unfinished",
            len(pending), len(threads), time.monotonic() - started,
        )  # fmt: skip


def _prefect_dbt_runner_class(guard: dbt_runner.InterruptGuard, node_threads: list):
    """PrefectDbtRunner that gives dbt's events to the interrupt guard's callbacks before its own
    (which log them to Prefect, dbt's report of the stop itself excepted), and runs each node's
    Prefect task in a copy of the flow's context, its thread appended to `node_threads`.

    prefect-dbt runs each node's task in a thread of its own that rebuilds the flow's context
    from a serialized copy, twice: new Prefect settings twice and three new API clients, each
    loading the CA bundle, a third of a second of CPU under the GIL per node. With ~500 nodes
    (most of them tests) their threads lagged two minutes behind a 45-second build, and more on
    a busy CI machine, where the flow ended before them and lost tasks. Prefect's own thread-pool
    task runner shares the submitting thread's context instead (`contextvars.copy_context`),
    and so do these; the serialized `context` prefect-dbt hands them goes unused.
    """
    import contextvars

    from prefect.task_engine import run_task_sync
    from prefect_dbt import PrefectDbtRunner

    class NodeTaskRunner(PrefectDbtRunner):
        def _create_unified_callback(self, task_state, *args, **kwargs):
            # Called once by `invoke`, in the flow's thread, with the run's node task tracker.
            task_state.run_task_in_thread = _node_task_starter(
                task_state, contextvars.copy_context()
            )
            prefect_callback = super()._create_unified_callback(task_state, *args, **kwargs)

            def callback(event) -> None:
                for first in guard.callbacks:
                    first(event)
                if not guard.reports_the_stop(event):
                    prefect_callback(event)

            return callback

    def _node_task_starter(task_state, flow_context: contextvars.Context):
        """`NodeTaskTracker.run_task_in_thread`, in a copy of `flow_context`."""

        def run_task_in_thread(node_id, task, task_run_id, parameters, context) -> None:
            def run_task() -> None:
                upstream = (
                    task_state.get_task_result(upstream_id)
                    for upstream_id in task_state.get_node_dependencies(node_id)
                )
                state = run_task_sync(
                    task,
                    task_run_id=task_run_id,
                    parameters=parameters,
                    wait_for=[state for state in upstream if state],
                    return_type="state",
                )
                task_state.set_task_result(node_id, state)

            thread = threading.Thread(target=flow_context.copy().run, args=(run_task,), daemon=True)
            node_threads.append(thread)
            thread.start()

        return run_task_in_thread

    return NodeTaskRunner


@task(name="dbt docs generate")
def docs_task(as_of_date: str) -> dbt_runner.DbtOutcome:
    """The lineage site and the catalog. `--no-compile`: the build has just compiled and run
    every node (target/compiled, target/run); compiling them all again, incremental models'
    compile-time queries included, would double that cost for pages that show the models'
    code, lineage, columns and tests either way (`lakehouse docs` compiles, for the SQL tab)."""
    outcome = dbt_runner.run_dbt(
        ["docs", "generate", "--static", "--no-compile", "--vars", dbt_runner.dbt_vars(as_of_date)],
        get_settings(),
    )
    if not outcome.success:
        log = dbt_runner.log_file(get_settings())
        raise dbt_runner.DbtError(f"dbt docs generate failed; see {log}")
    return outcome


@task(name="export", retries=1, retry_delay_seconds=3, retry_condition_fn=_retry_unless_refused)
def export_task(as_of_date: str, run_id: str) -> dict:
    result = export(as_of_date, get_settings(), run_id=run_id)
    return {
        "run_id": result.run_id,
        "run_folder": result.run_folder,
        "gold": result.gold,
        "silver": result.silver,
        "reused": result.reused,
        "pruned": result.pruned,
        "seconds": round(result.seconds, 2),
    }


def _exit_cleanly_after_served_run() -> None:
    """In a served deployment's flow-run process, end it with `os._exit(0)` once Prefect is done.

    The same interpreter-finalization abort that `cli.main` avoids (dbt's DuckDB use leaves
    threads that abort the process: "FATAL: exception not rethrown", duckdb/duckdb#13904)
    would otherwise turn a completed run's process into a crash. The handler runs after
    Prefect's own exit hooks (registered with threading, which run first) have delivered the
    final state, events and logs. CLI runs are not served and exit through `cli.main`.
    """
    from prefect.runtime import deployment

    if deployment.id is None:
        return

    def _exit() -> None:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)

    atexit.register(_exit)


class QualityGateFailed(RuntimeError):
    """The build passed its tests but the data is too poor to publish."""


class NothingToBuild(RuntimeError):
    """Bronze lacks an entity: silver reads both, and dbt would fail on a missing folder."""


# The failures the run explains in its own words: the command's error line and the run report
# name the cause (a failed dbt node, the quality score, an unreachable store…), and dbt.log
# holds dbt's details. Anything else is a bug, and keeps its traceback.
EXPLAINED_FAILURES = (
    dbt_runner.DbtError,
    QualityGateFailed,
    NothingToBuild,
    StorageError,
    ExportError,
    RunLocked,
)


class _ExplainedFailuresWithoutTraceback(logging.Filter):
    """Prefect logs a failed task and the failed flow each with the exception's traceback: two
    screens of Prefect's own frames before the command's one-line error, for a failing data test
    or a low quality score. On the console, such a record keeps its line and loses the
    traceback. Prefect's API handler (a served run's server) sees the record first, whole."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], EXPLAINED_FAILURES):
            record.exc_info = record.exc_text = None
        return True


def quiet_explained_failures() -> None:
    """Add the filter to Prefect's console handler (on the root logger), once."""
    from prefect.logging.handlers import PrefectConsoleHandler

    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler) and not any(
            isinstance(existing, _ExplainedFailuresWithoutTraceback) for existing in handler.filters
        ):
            handler.addFilter(_ExplainedFailuresWithoutTraceback())


@task(name="check object store")
def check_store_task() -> str:
    """Fail early, with the endpoint named, when the lake cannot be reached (bounded backoff)."""
    lake = Lake(get_settings())
    lake.wait_until_reachable(log=get_run_logger().warning)
    return lake.root("bronze")


@task(name="quality gate")
def quality_gate_task() -> dict:
    """Read the quality report just built; fail the run before export when the score is low
    (`export.quality_gate`)."""
    return quality_gate(get_settings())


def release_freed_memory() -> None:
    """Hand the memory a stage freed back to the OS before the next one starts.

    Every stage runs in this process, and its peak RSS is what a memory limit is judged by: without
    this, the ingestion's Arrow buffers (kept by pyarrow's pool and by glibc's arenas) stay
    resident, about 150 MB at ten million lines, under DuckDB's whole memory_limit during dbt build.
    """
    pyarrow.default_memory_pool().release_unused()
    with suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


@flow(name="lakehouse-pipeline")
def pipeline(
    sources: str | None = None,
    as_of_date: str | None = None,
    dbt_tasks: str | None = None,
    full_refresh: bool = False,
) -> dict:
    """Ingest the landing area (and `sources`, if given), build, document and publish.
    `full_refresh` rebuilds silver and the sales fact from all of bronze."""
    quiet_explained_failures()
    as_of_date = as_of_date or datetime.now(UTC).strftime("%Y-%m-%d")
    run_id = new_run_id()
    durations: dict[str, float] = {}
    stages: dict[str, dict[str, float]] = {}  # name → started_at (epoch), seconds
    summary: dict = {
        "as_of_date": as_of_date,
        "run_id": run_id,
        "durations": durations,
        "stages": stages,
    }

    @contextmanager
    def stage(name: str):
        started_at, started = time.time(), time.monotonic()
        try:
            yield
        finally:
            durations[name] = time.monotonic() - started
            stages[name] = {"started_at": started_at, "seconds": durations[name]}
            release_freed_memory()

    try:
        with run_lock("lakehouse run"):
            with stage("check object store"):
                check_store_task()

            with stage("ingest"):
                summary["ingest"] = ingest_task(sources).as_dict()
            if missing := summary["ingest"]["missing_entities"]:
                raise NothingToBuild(
                    f"bronze holds no {' and no '.join(missing)} file yet, so there is nothing "
                    "to build: land the CSV files first (lakehouse run --sources FOLDER, "
                    "lakehouse ingest FOLDER, or put them in the landing area)"
                )

            with stage("dbt build"):
                per_node = (dbt_tasks or get_settings().dbt_task_granularity) == "node"
                build = dbt_build(as_of_date, run_id, per_node, full_refresh)
                summary["silver"] = build.silver
                summary["unit_tests"] = build.unit_tests
                summary["dbt_parsed_ahead"] = build.parsed_ahead
                summary["dbt"] = build.counts()
                summary["dbt_timing"] = build.timing

            with stage("quality gate"):
                summary["quality"] = quality_gate_task()
            if not summary["quality"]["passed"]:
                raise QualityGateFailed(gate_message(summary["quality"]))

            with stage("dbt docs"):
                docs_task(as_of_date)

            with stage("export"):
                summary["export"] = export_task(as_of_date, run_id)
    except BaseException as exc:  # a cancelled or interrupted run is no success either
        summary["status"] = "failed" if isinstance(exc, Exception) else "interrupted"
        summary["error"] = str(exc) or type(exc).__name__
        with suppress(AttributeError):  # what `lakehouse run --json` prints of a failed run
            exc.run_summary = summary
        raise
    else:
        summary["status"] = "succeeded"
        _exit_cleanly_after_served_run()
    finally:
        create_markdown_artifact(
            key="lakehouse-run", markdown=run_report.render(summary), description="Lakehouse run"
        )
    return summary
