"""dbt-duckdb plugin: connects dbt to the lake exactly as the rest of the project does.

dbt reads no `.env` file and a relative DuckDB path depends on the working directory, so the
plugin resolves both from the project's settings: the absolute warehouse path, the DuckDB limits,
httpfs from the pinned wheel, the S3 secret and the layer-root variables the sources read.

It also sets the run parameters as DuckDB variables, from the environment
(`LAKEHOUSE_AS_OF_DATE`, `LAKEHOUSE_RUN_ID`; see orchestration/dbt_runner.py): the models read them
with `getvariable()` at run time (macros/as_of_date.sql), so they never enter dbt's parse and a
new value does not force a full re-parse of the project the way a changed `--vars` does.
"""

from __future__ import annotations

import os
from datetime import date
from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin

from orchestration.settings import get_settings
from orchestration.storage import configure_duckdb, duckdb_config, set_layer_variables

AS_OF_ENV = "LAKEHOUSE_AS_OF_DATE"
RUN_ID_ENV = "LAKEHOUSE_RUN_ID"


def run_parameters() -> dict[str, str | None]:
    """The run parameters from the environment; an as_of that is not YYYY-MM-DD is an error."""
    as_of = os.environ.get(AS_OF_ENV) or None
    if as_of is not None:
        try:
            date.fromisoformat(as_of)
        except ValueError:
            raise ValueError(f"{AS_OF_ENV} must be YYYY-MM-DD, got {as_of!r}") from None
    return {
        "lakehouse_as_of_date": as_of,
        "lakehouse_run_id": os.environ.get(RUN_ID_ENV) or None,
    }


def set_run_variables(conn) -> None:
    for name, value in run_parameters().items():
        if value is None:
            conn.execute(f"reset variable {name}")
        else:
            conn.execute(f"set variable {name} = ?", [value])


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        settings = get_settings()
        warehouse = settings.warehouse_path
        warehouse.parent.mkdir(parents=True, exist_ok=True)
        if self.creds is not None:
            self.creds.path = str(warehouse)

    def update_connection_config(self, creds, config: dict[str, Any]) -> None:
        for key, value in duckdb_config(get_settings()).items():
            config.setdefault(key, value)

    def configure_connection(self, conn) -> None:
        configure_duckdb(conn, get_settings())
        set_run_variables(conn)

    def configure_cursor(self, cursor) -> None:
        # Each dbt thread works on a cursor: a new DuckDB connection to the same database, which
        # shares the secret but not the connection-level variables.
        set_layer_variables(cursor, get_settings())
        set_run_variables(cursor)
