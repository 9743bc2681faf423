"""`lakehouse bench …`: benchmarks that print figures (and write them as JSON), never assert time.

Each command delegates to the module that owns the measurement, imported lazily so that the rest
of the CLI stays quick to start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

bench_app = typer.Typer(help="Benchmarks: print timings and peak memory, write them as JSON.")


def _bench_target(value: str | None) -> str | None:
    if value not in (None, "lake", "spark"):
        raise typer.BadParameter(
            f"--target must be 'lake' or 'spark' (the bench builds a local lake), got {value!r}"
        )
    return value


@bench_app.command("pipeline")
def bench_pipeline(
    clients: Annotated[int, typer.Option(min=10, help="Clients to generate.")] = 20_000,
    batches: Annotated[int, typer.Option(min=1, help="Batches for the full run.")] = 1,
    baseline: Annotated[
        bool, typer.Option(help="Also time the pandas baseline on the same files.")
    ] = True,
    incremental: Annotated[
        bool,
        typer.Option(help="Also time an incremental run adding 1 % more purchases."),
    ] = True,
    work_dir: Annotated[
        Path | None, typer.Option(help="Folder for data and lake (default: a temp folder).")
    ] = None,
    memory_limit: Annotated[
        str | None, typer.Option(help="DuckDB memory_limit for the run (default: settings).")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json-out", help="Write figures here.")] = None,
    target: Annotated[
        str | None,
        typer.Option(
            callback=_bench_target,
            help="dbt target of the timed runs: 'lake' (DuckDB) or 'spark' (local PySpark; "
            "the incremental run is a full rebuild there). Default: DBT_TARGET.",
        ),
    ] = None,
) -> None:
    """Time generate, ingest, dbt build, export, an incremental run and the pandas baseline."""
    from orchestration.bench_pipeline import run_pipeline_bench

    run_pipeline_bench(
        clients=clients,
        batches=batches,
        baseline=baseline,
        incremental=incremental,
        work_dir=work_dir,
        memory_limit=memory_limit,
        json_out=json_out,
        target=target,
    )


@bench_app.command("dashboard")
def bench_dashboard(
    clients: Annotated[int, typer.Option(min=10, help="Clients to generate.")] = 20_000,
    work_dir: Annotated[
        Path | None,
        typer.Option(help="Folder holding (or to receive) data and lake; reused when present."),
    ] = None,
    repeat: Annotated[int, typer.Option(min=1, help="Warm renders per page.")] = 2,
    page: Annotated[
        list[str] | None,
        typer.Option(help="Time this page only (its title; repeat the option for several)."),
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json-out", help="Write figures here.")] = None,
) -> None:
    """Render every dashboard page (or those named) in Chromium: cold, warm and after a filter
    change."""
    from dashboard.bench import run_dashboard_bench

    run_dashboard_bench(
        clients=clients, work_dir=work_dir, repeat=repeat, json_out=json_out, pages=page
    )
