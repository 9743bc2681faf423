"""The Prefect flow: ingest → dbt build (one Prefect task per dbt node) → dbt docs → export.

The flow runs on Prefect's ephemeral local API unless PREFECT_API_URL points at a server. It
fails, and publishes nothing, as soon as a step fails: the dashboard keeps the previous export.
"""

from __future__ import annotations

import time
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


def dbt_build(as_of_date: str, run_id: str) -> dbt_runner.DbtOutcome:
    """`dbt build` with one Prefect task per model, seed and test (prefect-dbt)."""
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
    nodes = {}
    if result.result is not None and hasattr(result.result, "results"):
        nodes = {r.node.unique_id: str(r.status) for r in result.result.results}
    return dbt_runner.DbtOutcome("build", bool(result.success), nodes, time.monotonic() - started)


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
def pipeline(sources: str | None = None, as_of_date: str | None = None) -> dict:
    """Ingest the landing area (and `sources`, if given), build, document and publish."""
    as_of_date = as_of_date or datetime.now(UTC).strftime("%Y-%m-%d")
    durations: dict[str, float] = {}
    run_id = new_run_id()
    summary: dict = {"as_of_date": as_of_date, "run_id": run_id, "durations": durations}

    started = time.monotonic()
    report = ingest_task(sources)
    durations["ingest"] = time.monotonic() - started
    summary["ingest"] = report.as_dict()

    started = time.monotonic()
    build = dbt_build(as_of_date, run_id)
    durations["dbt build"] = time.monotonic() - started
    summary["dbt"] = build.counts()

    started = time.monotonic()
    docs_task(as_of_date)
    durations["dbt docs"] = time.monotonic() - started

    started = time.monotonic()
    summary["export"] = export_task(as_of_date, run_id)
    durations["export"] = time.monotonic() - started

    create_markdown_artifact(
        key="lakehouse-run", markdown=_summary_markdown(summary), description="Lakehouse run"
    )
    return summary
