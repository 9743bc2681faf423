"""An export copies the previous run's file of a model no dbt command has changed since, and
writes every other file (orchestration/export.py, macros/model_builds.sql).

One small lake, built by hand (`dbt build`), exported three times: first with no previous run
(every file written); again with no dbt command in between (every file copied); then after a new
client file and a new purchase file, and a `dbt build` of the client models and of the purchases'
base table only (those written, and the view stg_retail__purchases over the base table, which
that build did not select; the rest copied). Each published file must hold exactly its warehouse
relation's rows: a stale copy would miss the new client or the new purchase. On the same lake,
a retried export of one run, and what a model built by hand does to the next run's selection.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from orchestration.export import SILVER_MODELS, export_source
from orchestration.incremental import CODE_VARIABLE
from tests.conftest import build_selection, flow_build_env, lakehouse
from tests.test_data_test_scope import (
    AS_OF,
    NEW_PURCHASE,
    STORED_LINES,
    build,
    built_lake,
    ingest_lines,
)
from tests.test_incremental import excluded

pytestmark = pytest.mark.e2e

NEW_CLIENT = 990_000_001
# What the partial build changes: `+dim_clients` (dim_clients and the models it reads), the
# purchases' base table, and the view over it.
CHANGED = {"stg_retail__clients", "dim_clients", "stg_retail__purchases"}


def export(env: dict[str, str], *options: str) -> dict:
    result = lakehouse("export", "--as-of", AS_OF, "--json", *options, env=env)
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
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        (like,) = conn.execute(STORED_LINES.format(limit=1)).fetchall()
    ingest_lines(env, base / "late" / "purchases_002.csv", (NEW_PURCHASE, *like[1:]))
    build(env, target, "--select", "+dim_clients", "base_retail__purchases")
    # That partial build leaves rpt_client_kpis a client short (its row-count test fails): an
    # export refuses such a warehouse unless forced, and here the files it writes are the point.
    third = export(env, "--force")
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
    files = published(base / "lake", third)
    new_rows = [
        duckdb.sql(f"select count(*) from '{files[relation]}' where {key} = {value}").fetchone()[0]
        for relation, key, value in (
            ("gold.dim_clients", "client_id", NEW_CLIENT),
            ("silver.stg_retail__purchases", "purchase_id", NEW_PURCHASE),
        )
    ]
    return base / "lake", first, second, third, tables, differing, new_rows


def test_first_export_writes_every_file(exports):
    _, first, *_ = exports
    assert first["reused"] == []
    assert len(first["gold"]) >= 15 and set(first["silver"]) == set(SILVER_MODELS)


def test_export_after_no_dbt_command_copies_every_file(exports):
    lake, first, second, _, tables, *_ = exports
    exported = published(lake, second)
    assert sorted(second["reused"]) == sorted(model.split(".")[1] for model in exported)
    assert "silver.stg_retail__purchases" in set(exported) - tables  # a view
    before = published(lake, first)
    for relation, file in exported.items():
        assert file.read_bytes() == before[relation].read_bytes(), relation
    assert {**second["gold"], **second["silver"]} == {**first["gold"], **first["silver"]}


def test_export_after_a_partial_build_writes_what_it_changed(exports):
    _, _, second, third, *_ = exports
    assert sorted(CHANGED) == sorted({**third["gold"], **third["silver"]}.keys() - third["reused"])
    assert third["gold"]["dim_clients"] == second["gold"]["dim_clients"] + 1
    purchases = third["silver"]["stg_retail__purchases"]
    assert purchases == second["silver"]["stg_retail__purchases"] + 1


def test_every_published_file_holds_its_relation(exports):
    *_, differing, new_rows = exports
    assert differing and set(differing.values()) == {0}, differing
    assert new_rows == [1, 1]  # the new client, the new purchase


def test_a_retried_export_of_the_same_run_writes_its_files_again(exports, monkeypatch):
    """The flow retries a failed export under the same run id: latest.json may already point at
    that run, whose files must not be copied onto themselves."""
    lake, *_, third, _, _, _ = exports
    monkeypatch.setenv("LAKE_DIR", str(lake))
    monkeypatch.setenv("LAKEHOUSE_STATE_DIR", str(lake.parent / "state"))
    from orchestration.export import export as export_in_process
    from orchestration.settings import Settings

    # The warehouse of the partial build `third` published, forced as it was.
    again = export_in_process(AS_OF, Settings(), run_id=third["run_id"], force=True)
    assert again.reused == []
    with duckdb.connect(str(lake / "warehouse" / "lakehouse.duckdb"), read_only=True) as conn:
        for relation, file in published(lake, vars(again)).items():
            assert rows_differing(conn, relation, file) == 0, relation


def test_a_model_built_by_hand_is_built_again_by_the_next_run(exports):
    """A `dbt build` by hand records no code fingerprint (it may build code since reverted): the
    next `lakehouse run` leaves out the dimensions read from seeds that the flow built, not the
    one built by hand (orchestration/incremental.py)."""
    lake, *_ = exports
    env = flow_build_env(
        LAKE_DIR=str(lake),
        LAKEHOUSE_STATE_DIR=str(lake.parent / "state"),
        DBT_TARGET_PATH=str(lake.parent / "target"),
    )
    build(env, lake.parent / "target")  # as the flow builds, every node: the build passes
    flow_built = excluded(build_selection(env, AS_OF)[0])
    assert {"dim_countries", "dim_products"} <= set(flow_built)
    build({**env, CODE_VARIABLE: ""}, lake.parent / "target", "--select", "dim_countries")
    after_hand_build = excluded(build_selection(env, AS_OF)[0])
    assert "dim_products" in after_hand_build and "dim_countries" not in after_hand_build


def test_export_source_changes_with_what_makes_the_file():
    query = "select * from gold.dim_clients order by client_id"
    source = export_source("invocation-1", query)
    assert source == export_source("invocation-1", query)
    assert source != export_source("invocation-2", query)
    assert source != export_source("invocation-1", query.replace("client_id", "all"))
    assert export_source(None, query) is None


def test_an_export_takes_the_as_of_date_the_warehouse_was_built_for(exports):
    """`lakehouse export` publishes under the date the marts were computed for (the build's
    `as_of_date`, which gold.rpt_gold_summary records), not today's; another date is refused
    and publishes nothing."""
    lake, *_ = exports
    env = flow_build_env(LAKE_DIR=str(lake), LAKEHOUSE_STATE_DIR=str(lake.parent / "state"))
    result = json.loads(lakehouse("export", "--json", env=env).stdout)
    assert result["as_of_date"] == AS_OF
    latest = json.loads((lake / "gold" / "latest.json").read_text())
    assert (latest["run_id"], latest["as_of_date"]) == (result["run_id"], AS_OF)
    summary = json.loads((lake / "gold" / latest["run_folder"] / "gold_summary.json").read_text())
    assert summary["as_of_date"] == summary["summary"]["as_of_date"] == AS_OF

    other = "2025-07-01"
    assert other != AS_OF
    refused = lakehouse("export", "--as-of", other, env={**env, "COLUMNS": "250"}, check=False)
    assert refused.returncode == 1
    assert f"the warehouse was built as of {AS_OF}, not {other}" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert json.loads((lake / "gold" / "latest.json").read_text()) == latest


def test_an_export_of_a_build_that_did_not_pass_is_refused_unless_forced(exports):
    """A standalone export publishes only a warehouse whose last build passed every test (as
    `lakehouse run` does); `--force` publishes it anyway."""
    lake, *_ = exports
    env = flow_build_env(LAKE_DIR=str(lake), LAKEHOUSE_STATE_DIR=str(lake.parent / "state"))
    warehouse = lake / "warehouse" / "lakehouse.duckdb"
    before = (lake / "gold" / "latest.json").read_bytes()
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("update main.build_check set passed = false")  # as after a failed test
    try:
        refused = lakehouse("export", env={**env, "COLUMNS": "250"}, check=False)
        message = " ".join(refused.stderr.split())
        assert refused.returncode == 1, message
        assert "the last dbt build (or dbt test) on this warehouse did not pass" in message
        assert (lake / "gold" / "latest.json").read_bytes() == before
        forced = json.loads(lakehouse("export", "--force", "--json", env=env).stdout)
        latest = json.loads((lake / "gold" / "latest.json").read_text())
        assert latest["run_id"] == forced["run_id"]
    finally:
        with duckdb.connect(str(warehouse)) as conn:
            conn.execute("update main.build_check set passed = true")
