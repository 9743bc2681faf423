"""Read access to the warehouse dbt just built, whatever the engine (DuckDB file or Spark tables).

The export and the quality gate read the built models through one DuckDB connection with the
schemas `gold` and `silver`:
- target `lake`: the DuckDB warehouse file itself, read-only;
- target `spark` (local session): an in-memory DuckDB with one view per Spark table over its
  Parquet folder (`<warehouse>/spark/<schema>.db/<table>/*.parquet`), so the export writes the same
  single-file Parquet set from either engine.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from orchestration.settings import Settings, get_settings
from orchestration.storage import duckdb_connection

SCHEMAS = ("gold", "silver")


class WarehouseError(RuntimeError):
    pass


def warehouse_exists(settings: Settings) -> bool:
    if settings.engine == "duckdb":
        return settings.warehouse_path.exists()
    return (settings.spark_warehouse_path / "gold.db").is_dir()


def warehouse_connection(
    settings: Settings | None = None, read_only: bool = True
) -> duckdb.DuckDBPyConnection:
    settings = settings or get_settings()
    if settings.engine == "duckdb":
        return duckdb_connection(settings.warehouse_path, settings, read_only=read_only)
    if settings.dbt_target != "spark":
        raise WarehouseError(
            f"DBT_TARGET={settings.dbt_target}: the export reads a local Spark warehouse only"
        )
    conn = duckdb_connection(settings=settings)
    for schema in SCHEMAS:
        conn.execute(f"create schema if not exists {schema}")
        for table in spark_tables(settings.spark_warehouse_path, schema):
            files = str(table / "*.parquet").replace("'", "''")
            conn.execute(
                f"create view {schema}.\"{table.name}\" as select * from read_parquet('{files}')"
            )
    return conn


def spark_tables(root: Path, schema: str) -> list[Path]:
    """The table folders of one Spark schema that hold data files (a table is a folder)."""
    folder = root / f"{schema}.db"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and any(p.glob("*.parquet")))
