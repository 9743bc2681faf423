"""An export copies the previous run's file of a table no dbt command has written since, and
writes every other file (orchestration/export.py, macros/model_builds.sql).

One small lake, built by hand (`dbt build`), exported three times: first with no previous run
(every file written); again with no dbt command in between (every table's file copied, the
view's written); then after a new client file and a `dbt build` of the client models only (those
written, the rest copied). Each published file must hold exactly its warehouse relation's rows:
a stale copy of a rebuilt table would miss the new client.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from orchestration.export import SILVER_MODELS, export_source
from tests.conftest import lakehouse
from tests.test_data_test_scope import AS_OF, build, built_lake

pytestmark = pytest.mark.e2e

NEW_CLIENT = 990_000_001
# What `dbt build -s +dim_clients` writes (dim_clients and the models it reads).
CLIENT_MODELS = {"base_retail__clients", "stg_retail__clients", "dim_clients"}


def export(env: dict[str, str]) -> dict:
    result = lakehouse("export", "--as-of", AS_OF, "--json", env=env)
    return json.loads(result.stdout)


def published(lake: Path, result: dict) -> dict[str, Path]:
    """The files of an export, by "layer.model"."""
    return {
        f"{layer}.{model}": lake / layer / result["run_folder"] / f"{model}.parquet"
        for layer in ("gold", "silver")
        for model in result[layer]
    }


def rows_differing(conn: duckdb.DuckDBPyConnection, relation: str, file: Path) -> int:
    """Rows in one of the warehouse relation and its Parquet file but not in the other (the
    file has the relation's published columns, in the relation's order)."""
    columns = [column[0] for column in conn.execute(f"select * from '{file}' limit 0").description]
    select = ", ".join(f'"{column}"' for column in columns)
    return conn.execute(
        f"select count(*) from ((select {select} from {relation} except all "
        f"select * from '{file}') union all (select * from '{file}' except all "
        f"select {select} from {relation}))"
    ).fetchone()[0]


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    base = tmp_path_factory.mktemp("export-reuse")
    env, target, warehouse, _ = built_lake(base, clients=150, seed=5)
    first, second = export(env), export(env)

    clients = base / "late" / "clients_002.csv"
    clients.parent.mkdir()
    clients.write_text(
        "id_client,name,email,subscription_date,country\n"
        f"{NEW_CLIENT},Ada Late,ada.late@example.com,2024-01-15,France\n",
        encoding="utf-8",
    )
    lakehouse("ingest", str(clients), env=env)
    build(env, target, "--select", "+dim_clients")
    third = export(env)
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        tables = {
            f"{schema}.{name}"
            for schema, name in conn.execute(
                "select table_schema, table_name from information_schema.tables "
                "where table_type = 'BASE TABLE' and table_schema in ('gold', 'silver')"
            ).fetchall()
        }
        differing = {
            relation: rows_differing(conn, relation, file)
            for relation, file in published(base / "lake", third).items()
        }
        new_client_exported = duckdb.sql(
            f"select count(*) from '{published(base / 'lake', third)['gold.dim_clients']}' "
            f"where client_id = {NEW_CLIENT}"
        ).fetchone()[0]
    return base / "lake", first, second, third, tables, differing, new_client_exported


def test_first_export_writes_every_file(exports):
    _, first, *_ = exports
    assert first["reused"] == []
    assert len(first["gold"]) >= 15 and set(first["silver"]) == set(SILVER_MODELS)


def test_export_after_no_dbt_command_copies_every_table(exports):
    lake, first, second, _, tables, *_ = exports
    exported = set(published(lake, second))
    copied = {f"{'silver' if m in second['silver'] else 'gold'}.{m}" for m in second["reused"]}
    assert copied == exported & tables
    assert "silver.stg_retail__purchases" in exported - tables  # a view: always written
    before, after = published(lake, first), published(lake, second)
    for relation in copied:
        assert after[relation].read_bytes() == before[relation].read_bytes(), relation
    assert {**second["gold"], **second["silver"]} == {**first["gold"], **first["silver"]}


def test_export_after_a_partial_build_writes_what_it_rebuilt(exports):
    lake, _, second, third, *_ = exports
    assert not CLIENT_MODELS & set(third["reused"])
    assert {"fct_sales", "rpt_client_kpis", "stg_retail__clients_quarantine"} <= set(
        third["reused"]
    )
    assert third["gold"]["dim_clients"] == second["gold"]["dim_clients"] + 1


def test_every_published_file_holds_its_relation(exports):
    *_, differing, new_client_exported = exports
    assert differing and set(differing.values()) == {0}, differing
    assert new_client_exported == 1


def test_export_source_changes_with_what_makes_the_file():
    query = "select * from gold.dim_clients order by client_id"
    source = export_source("invocation-1", query)
    assert source == export_source("invocation-1", query)
    assert source != export_source("invocation-2", query)
    assert source != export_source("invocation-1", query.replace("client_id", "all"))
    assert export_source(None, query) is None
