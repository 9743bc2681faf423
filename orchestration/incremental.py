"""Does silver have anything to do? New bronze files, or a new as_of_date.

Silver, the client history and the sales fact (the dbt models tagged `bronze_driven`) change only
when bronze gets new files or as_of_date changes. After a build in which all of them were built
and nothing failed, dbt records which bronze files and which as_of_date they reflect (table
`incremental_state`, written by the on-run-end hook in macros/incremental.sql). Before the next
build the flow asks `silver_status()`: when there is no new file and the same as_of_date, the
build excludes those models (and their tests) and the run says so; gold is still rebuilt from
them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from orchestration.layout import PARSED_PREFIX
from orchestration.settings import Settings, get_settings
from orchestration.storage import Lake

BRONZE_DRIVEN = "tag:bronze_driven"
STATE_TABLE = "main.incremental_state"


@dataclass
class SilverStatus:
    as_of_date: str
    built_as_of: str | None  # as_of_date of the last complete silver build; None: none recorded
    new_files: list[str] = field(default_factory=list)  # bronze keys not in that build
    full_rebuild: bool = False  # a target without incremental models (Spark): always built

    @property
    def up_to_date(self) -> bool:
        return not self.full_rebuild and self.built_as_of == self.as_of_date and not self.new_files

    def describe(self) -> str:
        if self.full_rebuild:
            return "Spark target: silver and fct_sales rebuilt in full (no incremental models)"
        if self.up_to_date:
            return (
                f"no new bronze files and as_of_date unchanged ({self.as_of_date}): silver and "
                "fct_sales skipped (no dbt work on them), gold rebuilt from them"
            )
        if self.built_as_of is None:
            return "no complete silver build recorded: silver and fct_sales built"
        reasons = []
        if self.new_files:
            reasons.append(f"{len(self.new_files)} new bronze file(s)")
        if self.built_as_of != self.as_of_date:
            reasons.append(f"as_of_date {self.built_as_of} -> {self.as_of_date}")
        return f"{' and '.join(reasons)}: silver and fct_sales built incrementally"

    def dbt_args(self) -> list[str]:
        """Extra `dbt build` arguments: exclude silver and the fact when they are up to date."""
        return ["--exclude", BRONZE_DRIVEN] if self.up_to_date else []


def bronze_files(lake: Lake) -> set[str]:
    """Bronze keys of every landed file that has its line-split twin (what silver reads)."""
    keys = set()
    for key in lake.list("bronze", f"{PARSED_PREFIX}/"):
        if key.endswith(".parquet"):
            keys.add(key[len(PARSED_PREFIX) + 1 : -len(".parquet")] + ".csv")
    return keys


def recorded_state(settings: Settings) -> tuple[str | None, set[str]]:
    """(as_of_date, bronze keys) of the last complete silver build, from the warehouse."""
    warehouse = settings.warehouse_path
    if not warehouse.exists():
        return None, set()
    conn = duckdb.connect(str(warehouse), read_only=True)
    try:
        exists = conn.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = 'main' and table_name = 'incremental_state'"
        ).fetchone()[0]
        if not exists:
            return None, set()
        rows = conn.execute(f"select source_file, as_of_date from {STATE_TABLE}").fetchall()
    finally:
        conn.close()
    if not rows:
        return None, set()
    as_of = {str(as_of_date) for _, as_of_date in rows}
    return (as_of.pop() if len(as_of) == 1 else None), {source for source, _ in rows}


def silver_status(as_of_date: str, settings: Settings | None = None) -> SilverStatus:
    """Whether silver and the sales fact reflect every bronze file and this as_of_date."""
    settings = settings or get_settings()
    if settings.engine == "spark":
        # Spark has no incremental runs (macros/incremental.sql, incremental_materialization):
        # silver and the fact are rebuilt in full, and the DuckDB warehouse's state (which may
        # exist beside the Spark warehouse in the same lake) says nothing about Spark's tables.
        return SilverStatus(as_of_date, None, [], full_rebuild=True)
    built_as_of, built_files = recorded_state(settings)
    new_files = sorted(bronze_files(Lake(settings)) - built_files)
    return SilverStatus(as_of_date, built_as_of, new_files)


FULL_REFRESH = (
    "--full-refresh: silver and fct_sales rebuilt in full from all of bronze (after a change of "
    "model logic or columns)"
)


def build_selection(
    as_of_date: str, settings: Settings | None = None, full_refresh: bool = False
) -> tuple[list[str], str]:
    """`dbt build` and its selection for a pipeline run, and what it does with silver (a line
    for the logs, the CLI output and the run summary). `full_refresh` rebuilds the incremental
    models from all of bronze: a change of their logic or columns is not new data."""
    if full_refresh:
        return ["build", "--full-refresh"], FULL_REFRESH
    status = silver_status(as_of_date, settings)
    return ["build", *status.dbt_args()], status.describe()
