"""The Prefect flow: ingest → dbt build (one Prefect task per dbt node) → dbt docs → export.

The flow runs on Prefect's ephemeral local API unless PREFECT_API_URL points at a server. It
fails, and publishes nothing, as soon as a step fails: the dashboard keeps the previous export.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from orchestration import dbt_runner
from orchestration.export import export, new_run_id
from orchestration.ingest import IngestReport, ingest
from orchestration.settings import PROJECT_ROOT, get_settings
from orchestration.storage import Lake


@task(name="ingest", retries=2, retry_delay_seconds=[2, 5])
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
def dbt_build_task(as_of_date: str, run_id: str) -> dbt_runner.DbtOutcome:
    """`dbt build` as one Prefect task: no per-node overhead (the default)."""
    outcome = dbt_runner.run_dbt(
        ["build", "--vars", dbt_runner.dbt_vars(as_of_date, {"run_id": run_id})], get_settings()
    )
    if not outcome.success:
        failed = ", ".join(outcome.failures[:10]) or "see logs/dbt.log"
        raise dbt_runner.DbtError(f"dbt build failed: {failed}")
    return outcome


def dbt_build(as_of_date: str, run_id: str, per_node: bool) -> dbt_runner.DbtOutcome:
    """`dbt build`: one Prefect task, or one per model, seed and test (prefect-dbt)."""
    if not per_node:
        return dbt_build_task(as_of_date, run_id)
    from dbt_common.events.base_types import EventLevel
    from prefect_dbt import PrefectDbtRunner, PrefectDbtSettings

    settings = get_settings()
    dbt_runner.dbt_environment()
    runner = PrefectDbtRunner(
        settings=PrefectDbtSettings(
            project_dir=settings.dbt_project_dir,
            profiles_dir=PROJECT_ROOT,
            log_level=EventLevel.WARN,
        ),
        raise_on_failure=True,
        disable_assets=True,
    )
    started = time.monotonic()
    try:
        result = runner.invoke(
            ["build", "--vars", dbt_runner.dbt_vars(as_of_date, {"run_id": run_id})]
        )
    finally:
        dbt_runner.release_dbt_connections()
    nodes, timing = dbt_runner.node_results(result.result)
    return dbt_runner.DbtOutcome(
        "build", bool(result.success), nodes, time.monotonic() - started, timing
    )


@task(name="dbt docs generate")
def docs_task(as_of_date: str) -> dbt_runner.DbtOutcome:
    outcome = dbt_runner.run_dbt(
        ["docs", "generate", "--static", "--vars", dbt_runner.dbt_vars(as_of_date)],
        get_settings(),
    )
    if not outcome.success:
        raise dbt_runner.DbtError("dbt docs generate failed; see logs/dbt.log")
    return outcome


@task(name="export", retries=1, retry_delay_seconds=3)
def export_task(as_of_date: str, run_id: str) -> dict:
    result = export(as_of_date, get_settings(), run_id=run_id)
    return {
        "run_id": result.run_id,
        "run_folder": result.run_folder,
        "gold": result.gold,
        "silver": result.silver,
        "pruned": result.pruned,
        "seconds": round(result.seconds, 2),
    }


def _summary_markdown(summary: dict) -> str:
    ingest_part = summary["ingest"]
    lines = [
        f"# Lakehouse run {summary.get('export', {}).get('run_id', '(not published)')}",
        "",
        f"as_of_date: **{summary['as_of_date']}**",
        "",
        "| stage | seconds |",
        "|---|---:|",
        *[f"| {k} | {v:.1f} |" for k, v in summary["durations"].items()],
        "",
        f"Files landed: {len(ingest_part['landed'])}, skipped: {len(ingest_part['skipped'])}, "
        f"refused: {len(ingest_part['refused'])}",
        "",
        "| dbt status | nodes |",
        "|---|---:|",
        *[f"| {k} | {v} |" for k, v in summary["dbt"].items()],
    ]
    if "export" in summary:
        lines += ["", "| exported model | rows |", "|---|---:|"]
        exported = {**summary["export"]["gold"], **summary["export"]["silver"]}
        lines += [f"| {model} | {rows} |" for model, rows in sorted(exported.items())]
    return "\n".join(lines)


@flow(name="lakehouse-pipeline")
def pipeline(
    sources: str | None = None, as_of_date: str | None = None, dbt_tasks: str | None = None
) -> dict:
    """Ingest the landing area (and `sources`, if given), build, document and publish."""
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

    with stage("ingest"):
        summary["ingest"] = ingest_task(sources).as_dict()

    with stage("dbt build"):
        per_node = (dbt_tasks or get_settings().dbt_task_granularity) == "node"
        build = dbt_build(as_of_date, run_id, per_node)
        summary["dbt"] = build.counts()
        summary["dbt_timing"] = build.timing

    with stage("dbt docs"):
        docs_task(as_of_date)

    with stage("export"):
        summary["export"] = export_task(as_of_date, run_id)

    create_markdown_artifact(
        key="lakehouse-run", markdown=_summary_markdown(summary), description="Lakehouse run"
    )
    return summary
