"""Running dbt from Python: the same project, profile and settings as `dbt` on the command line."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from orchestration.settings import PROJECT_ROOT, Settings, get_settings


class DbtError(RuntimeError):
    pass


@dataclass
class DbtOutcome:
    command: str
    success: bool
    nodes: dict[str, str]  # unique_id → status
    seconds: float
    # execution seconds summed per resource type (model, test, unit_test, seed): thread time
    timing: dict[str, float] = field(default_factory=dict)
    # what the build did with silver and the sales fact (orchestration/incremental.py)
    silver: str = ""
    # whether the build ran the unit tests (orchestration/unit_tests.py)
    unit_tests: str = ""
    # whether the command took the manifest `parse_ahead` made instead of parsing
    parsed_ahead: bool = False

    @property
    def failures(self) -> list[str]:
        return [n for n, s in self.nodes.items() if s in ("error", "fail", "runtime error")]

    def passed(self, resource_type: str) -> int:
        """Nodes of one resource type (`unit_test`, `test`, `model`…) that passed or succeeded."""
        return sum(
            1
            for unique_id, status in self.nodes.items()
            if unique_id.startswith(f"{resource_type}.") and status in ("pass", "success")
        )

    def counts(self) -> dict[str, int]:
        result: dict[str, int] = {}
        for status in self.nodes.values():
            result[status] = result.get(status, 0) + 1
        return result


def build_failure(outcome: DbtOutcome) -> str:
    """The error of a failed `dbt build`: the failed nodes, and for a failed model the likely
    cause after an upgrade (an incremental table whose columns the new code changed)."""
    log = log_file(get_settings())
    failed = ", ".join(outcome.failures[:10]) or f"see {log}"
    message = f"dbt build failed: {failed}"
    if any(node.startswith("model.") for node in outcome.failures):
        message += (
            f" (details in {log}; if it says the schemas of an incremental model are out of "
            "sync, the project changed that model's columns: rebuild once with "
            "`lakehouse run --full-refresh`)"
        )
    return message


# The export run a build feeds (rpt_gold_summary.run_id). An environment variable, not a dbt
# var: dbt re-parses the whole project when its vars differ from the last parse's (~3-5 s here),
# while a changed environment variable re-parses only the files that read it.
RUN_ID_VARIABLE = "LAKEHOUSE_RUN_ID"


def dbt_vars(as_of_date: str) -> str:
    """The vars of every dbt command of a run: the same for the build and the docs, so that the
    docs reuse the build's parse, and for every run of one business date."""
    return json.dumps({"as_of_date": as_of_date})


# Read by the project's macros rather than profiles.yml, and documented as `.env` settings.
READ_BY_MACROS = frozenset({"SPARK_BRONZE_ROOT"})  # macros/bronze.sql


def export_profile_variables(
    env_file: Path, profiles: Path = PROJECT_ROOT / "profiles.yml"
) -> None:
    """Export the values `.env` gives to the variables profiles.yml reads (DBT_THREADS, SPARK_…)
    and to READ_BY_MACROS.

    The settings read `.env` without exporting it, and dbt's `env_var()` sees the process
    environment only: without this, `DBT_THREADS=4` in `.env` would not reach dbt. A variable
    already in the environment wins, as it does for the settings.
    """
    if not env_file.is_file():
        return
    from dotenv import dotenv_values

    read_by_dbt = READ_BY_MACROS | set(
        re.findall(r"env_var\(\s*['\"]([A-Za-z_][A-Za-z0-9_]*)", profiles.read_text())
    )
    for name, value in dotenv_values(env_file).items():
        if name in read_by_dbt and value is not None:
            os.environ.setdefault(name, value)


def dbt_environment(settings: Settings | None = None) -> None:
    """dbt runs in-process: no usage statistics, and the project's own profiles.yml.

    The profile reads the target and the Spark paths from the environment: set them from the
    settings, absolute, so that dbt and the rest of the project agree; the other variables it
    reads come from the environment or `.env`.
    """
    settings = settings or get_settings()
    export_profile_variables(Path(settings.model_config["env_file"]))
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    os.environ.setdefault("DBT_PROFILES_DIR", str(PROJECT_ROOT))
    # At dbt's default (debug), logs/dbt.log takes every statement of every node: ~15 MB and
    # over a second of the build's Python time per run. Info keeps each node's result and every
    # error; DBT_LOG_LEVEL_FILE=debug brings the statements back.
    os.environ.setdefault("DBT_LOG_LEVEL_FILE", "info")
    os.environ["DBT_TARGET"] = settings.dbt_target
    if settings.dbt_target == "spark":
        if settings.lake_dir is None:
            raise DbtError(
                "DBT_TARGET=spark reads bronze from local folders: set LAKE_DIR (the PyPI "
                "PySpark has no S3 connector); use spark_cluster for a cluster"
            )
        settings.spark_warehouse_path.mkdir(parents=True, exist_ok=True)
        os.environ["SPARK_WAREHOUSE_DIR"] = str(settings.spark_warehouse_path)
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


def project_args(settings: Settings) -> list[str]:
    return [
        "--project-dir",
        str(settings.dbt_project_dir),
        "--profiles-dir",
        str(PROJECT_ROOT),
        "--log-path",
        str(settings.dbt_project_dir / os.environ.get("DBT_LOG_PATH", "logs")),
    ]


def release_dbt_connections() -> None:
    """Close the DuckDB database dbt-duckdb keeps open in this process.

    A DuckDB connection still alive at interpreter shutdown, after dbt's worker threads used it,
    can abort the process ("FATAL: exception not rethrown", duckdb/duckdb#13904); closing it
    right after each dbt command also frees the warehouse file for the export.
    """
    import gc

    from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    from dbt.adapters.factory import cleanup_connections

    cleanup_connections()
    environment = DuckDBConnectionManager._ENV
    if environment is not None:
        environment.close()
    DuckDBConnectionManager.close_all_connections()
    gc.collect()


# The commands of a run that take a manifest parsed ahead, in their order: the build, then the
# docs of what it built.
PARSED_AHEAD_FOR = ("build", "docs")


@dataclass
class _ParsedAhead:
    key: tuple[str, ...]
    manifest: object  # dbt's Manifest
    commands: list[str]  # the commands still to take it, in order


_parsed_ahead: list[_ParsedAhead] = []  # one at most


def _parse_key(settings: Settings, dbt_vars_json: str) -> tuple[str, ...]:
    """What a parse depends on besides the project's files: the project, target and vars."""
    return (
        str(settings.dbt_project_dir),
        settings.dbt_target,
        os.environ.get("DBT_TARGET_PATH", ""),
        dbt_vars_json,
    )


def parse_ahead(as_of_date: str, settings: Settings | None = None) -> None:
    """Import dbt and parse the project now, for the next `dbt build` of `as_of_date` in this
    process, and the `dbt docs generate` after it, to start without parsing (~1.4 s of imports
    and 1.7 s of partial parsing at every run; 4.5 s of full parsing on a new checkout).

    `lakehouse run` calls it while Prefect's temporary API server boots (~5 s during which the
    command would only wait). The parse reads the project's files only, not bronze or the
    warehouse, so it may precede the ingestion; what a build reads at run time (its vars' values,
    the environment variables its SQL and macros read) is rendered by the build itself. A parse
    that fails is not kept: the build parses again and reports the error.
    """
    from dbt.cli.main import dbtRunner

    settings = settings or get_settings()
    _parsed_ahead.clear()
    try:
        dbt_environment(settings)
    except DbtError:  # a setting the build will report, in the flow's words
        return
    dbt_vars_json = dbt_vars(as_of_date)
    # --no-write-json: the build writes target/manifest.json when it ends (0.4 s saved here; the
    # partial-parse file is written either way).
    args = ["parse", "--vars", dbt_vars_json, "--no-write-json", *project_args(settings), "--quiet"]
    try:
        result = dbtRunner().invoke(args)
    finally:
        release_dbt_connections()
    if result.success and result.result is not None:
        key = _parse_key(settings, dbt_vars_json)
        _parsed_ahead.append(_ParsedAhead(key, result.result, list(PARSED_AHEAD_FOR)))


def _take_parsed(args: list[str], settings: Settings) -> object | None:
    """The manifest parsed ahead, for the next command of PARSED_AHEAD_FOR with the same key:
    one build, then the docs (given the manifest the build compiled). Any other command, or
    another key, drops it."""
    if not _parsed_ahead:
        return None
    parsed = _parsed_ahead[0]
    vars_json = args[args.index("--vars") + 1] if "--vars" in args else ""
    if args[0] != parsed.commands[0] or _parse_key(settings, vars_json) != parsed.key:
        _parsed_ahead.clear()
        return None
    parsed.commands.pop(0)
    if not parsed.commands:
        _parsed_ahead.clear()
    return parsed.manifest


class NodeAfterInterrupt(Exception):
    """Raised in a dbt worker thread by a node about to start after Ctrl+C (or SIGTERM)."""


# How dbt reports the KeyboardInterrupt it re-raises: "Encountered an error:" and a traceback
# whose last frame is the stop handler below. The run says "interrupted" itself.
_STOP_REPORT = frozenset({"MainEncounteredError", "MainStackTrace"})


@dataclass
class InterruptGuard:
    callbacks: list  # for dbtRunner(callbacks=…)
    interrupted: threading.Event  # set by Ctrl+C or SIGTERM while the guard is on

    def reports_the_stop(self, event) -> bool:
        """Whether a dbt event is dbt's error report of the stop itself (kept off the logs)."""
        return self.interrupted.is_set() and event.info.name in _STOP_REPORT


def _keep_the_stop_report_off_dbt_console() -> None:
    """From now on dbt's console skips its report of the stop; its log file still gets it."""
    from dbt_common.events.event_manager_client import get_event_manager

    for logger in get_event_manager().loggers:
        if logger.name == "stdout_log":
            shown = logger.filter
            logger.filter = lambda event, shown=shown: (
                event.info.name not in _STOP_REPORT and shown(event)
            )


@contextmanager
def no_node_starts_after_interrupt() -> Iterator[InterruptGuard]:
    """dbt callbacks that keep a stop signal from waiting on nodes not yet started.

    On Ctrl+C dbt cancels the running queries, then waits for its worker threads, which went on
    with the nodes already handed to its pool and, in a build, through a model's remaining unit
    tests and the model itself (one worker call): 4-6 s on the test data set, a model's whole
    build at scale, more with many tests queued. While the command runs, a stop signal also
    sets a flag, and a node starting after it raises at once.
    """
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread():  # signals need the main one
        yield InterruptGuard([], interrupted)
        return
    previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}

    def note_the_stop(number, frame):
        interrupted.set()
        _keep_the_stop_report_off_dbt_console()
        previous[number](number, frame)  # raises KeyboardInterrupt where the command is

    def refuse_new_nodes(event) -> None:
        if event.info.name == "NodeStart" and interrupted.is_set():
            raise NodeAfterInterrupt("interrupted: this node did not start")

    wrapped = [number for number, handler in previous.items() if callable(handler)]
    for number in wrapped:
        signal.signal(number, note_the_stop)
    try:
        yield InterruptGuard([refuse_new_nodes], interrupted)
    finally:
        for number in wrapped:
            signal.signal(number, previous[number])


def run_dbt(args: list[str], settings: Settings | None = None, quiet: bool = True) -> DbtOutcome:
    """Run a dbt command with dbt's own runner (no Prefect tasks); never raises on dbt failures.
    A `dbt build`, and the `dbt docs` after it, take the manifest `parse_ahead` made, if any."""
    from dbt.cli.main import dbtRunner

    settings = settings or get_settings()
    dbt_environment(settings)
    flags = ["--quiet"] if quiet else []
    manifest = _take_parsed(args, settings)
    try:
        with no_node_starts_after_interrupt() as guard:
            runner = dbtRunner(manifest=manifest, callbacks=guard.callbacks)
            result = runner.invoke([*args, *project_args(settings), *flags])
    finally:
        release_dbt_connections()
    if isinstance(result.exception, KeyboardInterrupt | SystemExit):
        raise result.exception  # dbt caught Ctrl+C or a stop signal: the command stops, too
    nodes, timing = node_results(result.result)
    if result.exception is not None and not nodes:
        why = str(result.exception) or type(result.exception).__name__
        raise DbtError(f"dbt {args[0]} could not run: {why}")
    outcome = DbtOutcome(args[0], bool(result.success), nodes, sum(timing.values()), timing)
    outcome.parsed_ahead = manifest is not None
    return outcome


def list_models(selection: list[str], settings: Settings | None = None) -> list[str]:
    """The names of the models `dbt ls` selects (`selection`: its `--select`, `--state`… args),
    printing nothing (the output of `lakehouse run --json` is the run summary alone)."""
    from dbt.cli.main import dbtRunner

    settings = settings or get_settings()
    dbt_environment(settings)
    args = ["ls", "--resource-type", "model", "--output", "name", *selection]
    try:
        result = dbtRunner().invoke([*args, *project_args(settings), "--log-level", "none"])
    finally:
        release_dbt_connections()
    if not result.success:
        why = result.exception or f"see {log_file(settings)}"
        raise DbtError(f"dbt {' '.join(args)} failed: {why}")
    return sorted(result.result or [])


def target_path(settings: Settings) -> Path:
    """Where dbt writes its artifacts (manifest.json, run_results.json, the docs site):
    DBT_TARGET_PATH, relative to the project as dbt resolves it, else the project's `target`."""
    return settings.dbt_project_dir / os.environ.get("DBT_TARGET_PATH", "target")


def log_file(settings: Settings) -> Path:
    """dbt's log file: under DBT_LOG_PATH, relative to the project as dbt resolves it."""
    return settings.dbt_project_dir / os.environ.get("DBT_LOG_PATH", "logs") / "dbt.log"


def node_results(results: object) -> tuple[dict[str, str], dict[str, float]]:
    """Status per node, and execution seconds summed per resource type, from dbt's results."""
    nodes: dict[str, str] = {}
    timing: dict[str, float] = {}
    for node in getattr(results, "results", None) or []:
        nodes[node.node.unique_id] = str(node.status)
        kind = node.node.unique_id.split(".", 1)[0]
        timing[kind] = timing.get(kind, 0.0) + (node.execution_time or 0.0)
    return nodes, {kind: round(seconds, 3) for kind, seconds in timing.items()}
