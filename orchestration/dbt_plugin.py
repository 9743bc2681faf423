"""dbt-duckdb plugin: connects dbt to the lake exactly as the rest of the project does.

dbt reads no `.env` file and a relative DuckDB path depends on the working directory, so the
plugin resolves both from the project's settings: the absolute warehouse path, the DuckDB limits,
httpfs from the pinned wheel, the S3 secret and the layer-root variables the sources read.
"""

from __future__ import annotations

from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin

from orchestration.settings import get_settings
from orchestration.storage import configure_duckdb, duckdb_config, set_layer_variables


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

    def configure_cursor(self, cursor) -> None:
        # Each dbt thread works on a cursor: a new DuckDB connection to the same database, which
        # shares the secret but not the connection-level variables.
        set_layer_variables(cursor, get_settings())
