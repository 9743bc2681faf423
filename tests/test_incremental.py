"""Incremental builds equal a full rebuild, model by model (silver and fct_sales are incremental).

Five generated batches (re-sent clients that moved, purchases repeated in later batches, late
purchases for old dates, future dates, every defect) plus hand-made files for what the generator
does not produce: orphan purchases whose client arrives three batches later (the older orphan copy
then wins over a newer valid copy of the same id), a line without a valid purchase id for that
client (it loses its orphan reason), a late client with a future subscription date and another
client's e-mail, a purchase dated after as_of_date, and one whose newer copy in a later batch wins
until a later as_of_date makes the older copy valid. Lake A lands and builds them one
batch at a time; lake B holds the same bronze files and is built with `--full-refresh`; their
exports must be identical (run ids aside, SPEC §5). Then a run with no new file skips silver and
the fact and publishes the same data, a new as_of_date with no new file is still exact, and a
purchases file alone leaves out the models that read only clients bronze.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import duckdb
import pytest

from tests.conftest import (
    BIN,
    ROOT,
    build_selection,
    clean_env,
    flow_build_env,
    lakehouse,
    published_models,
)

pytestmark = pytest.mark.e2e

AS_OF = "2025-06-30"
LATER_AS_OF = "2025-07-31"  # after the future purchase and the future subscription below
ORPHAN_CLIENT = 880_000_001  # a client that arrives in batch 4
RESCUED = 900_000_001  # orphan copy (batch 1) then a valid copy for another client (batch 3)
OLD_ORPHAN = 900_000_002  # orphan with an old date (batch 1), rescued in batch 4
FUTURE = 900_000_003  # dated after AS_OF, before LATER_AS_OF
# dated after AS_OF (batch 1), then a valid copy (batch 3): the newer copy survives at AS_OF,
# the older one at LATER_AS_OF
SWITCHED = 900_000_004
NO_ID = "n/a-7"  # an invalid purchase id, for the orphan client (batch 1)
RUN_ID_COLUMNS = frozenset({"run_id"})
PURCHASE_HEADER = "id_purchase,id_client,product,price,quantity,purchase_date,total"
CLIENT_HEADER = "id_client,name,email,subscription_date,country"
EMAIL = re.compile(r"^[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}$")


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    with tempfile.TemporaryFile("w+") as out:
        done = subprocess.run(
            command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, text=True
        )
        out.seek(0)
        text = out.read()
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(command)} exited {done.returncode}\n{text[-6000:]}")
    return subprocess.CompletedProcess(command, 0, text)


def clean_clients(path: Path, count: int) -> list[dict]:
    """The first clients of a generated file whose line is clean (they survive in silver)."""
    found = []
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if (
                row["id_client"].isdigit()
                and EMAIL.match(row["email"])
                and re.fullmatch(r"20\d\d-\d\d-\d\d", row["subscription_date"])
                and row["country"] in ("France", "Germany", "Spain", "Italy", "UK")
            ):
                found.append(row)
            if len(found) == count:
                return found
    raise AssertionError(f"not {count} clean clients in {path}")


def write_extra_batches(src: Path, extra: Path) -> dict[int, list[Path]]:
    """Hand-made files, by the step (batch) they land with."""
    first, second = clean_clients(src / "clients_001.csv", 2)
    known = first["id_client"]
    moved_to = "Germany" if first["country"] != "Germany" else "France"
    files = {
        1: (
            "x1_purchases.csv",
            f"{PURCHASE_HEADER}\n"
            f"{RESCUED},{ORPHAN_CLIENT},Laptop,1000.00,1,2024-05-01,1000.00\n"
            f"{OLD_ORPHAN},{ORPHAN_CLIENT},Mouse,20.00,2,2023-11-15,40.00\n"
            f"{FUTURE},{known},Phone,500.00,1,2025-07-15,500.00\n"
            f"{SWITCHED},{known},Monitor,200.00,1,2025-07-20,200.00\n"
            f"{NO_ID},{ORPHAN_CLIENT},Mouse,20.00,1,2024-01-10,20.00\n",
        ),
        3: (
            "x3_purchases.csv",
            f"{PURCHASE_HEADER}\n"
            f"{RESCUED},{known},Tablet,300.00,1,2024-06-01,300.00\n"
            f"{SWITCHED},{known},Keyboard,50.00,1,2024-06-03,50.00\n",
        ),
        4: (
            "x4_clients.csv",
            f"{CLIENT_HEADER}\n"
            f"{ORPHAN_CLIENT},Late Client,{second['email']},2025-07-10,Spain\n"
            f"{known},{first['name']},{first['email']},{first['subscription_date']},{moved_to}\n",
        ),
    }
    placed: dict[int, list[Path]] = {}
    for step, (name, text) in files.items():
        path = extra / name
        path.write_text(text, encoding="utf-8")
        placed.setdefault(step, []).append(path)
    return placed


class Lake:
    """One lake: ingest, dbt build (as `lakehouse run` builds), export, read the published run."""

    def __init__(self, root: Path, state: Path, target: Path):
        self.root = root
        self.env = flow_build_env(
            LAKE_DIR=str(root), LAKEHOUSE_STATE_DIR=str(state), DBT_TARGET_PATH=str(target)
        )
        self.target = target
        self.tested = True  # whether the last build ran the data tests

    def ingest(self, files: list[Path]) -> None:
        lakehouse("ingest", *map(str, files), env=self.env)

    def build(self, as_of: str, *args: str) -> list[dict]:
        command = [str(BIN / "dbt"), "build", "--exclude-resource-type", "unit_test", *args]
        run([*command, "--vars", f"{{as_of_date: '{as_of}'}}", "--quiet"], self.env)
        self.tested = "test" not in args
        return json.loads((self.target / "run_results.json").read_text())["results"]

    def reference_build(self, as_of: str) -> list[dict]:
        """A full rebuild to compare with: models and seeds only. Its data tests would check
        the same invariants on the same rows as lake A's incremental builds, which run them."""
        return self.build(as_of, "--full-refresh", "--exclude-resource-type", "test")

    def selection(self, as_of: str) -> tuple[list[str], str]:
        args, message, *_ = build_selection(self.env, as_of)
        return args, message

    def export(self, as_of: str) -> dict:
        # A standalone export refuses a warehouse whose last build tested nothing, as the
        # reference builds do on purpose: theirs is forced.
        force = [] if self.tested else ["--force"]
        lakehouse("export", "--as-of", as_of, *force, env=self.env)
        return json.loads((self.root / "gold" / "latest.json").read_text())

    def published(self, latest: dict) -> dict[str, object]:
        """Every exported model (rows sorted, run ids left out) and JSON document."""
        content: dict[str, object] = dict(published_models(self.root, latest, RUN_ID_COLUMNS))
        for name in latest["documents"]:
            document = json.loads((self.root / "gold" / latest["run_folder"] / name).read_text())
            document.pop("run_id", None)
            document.get("summary", {}).pop("run_id", None)
            content[f"gold/{name}"] = document
        return content

    def silver_rows(self, latest: dict, model: str, columns: str, where: str) -> list[tuple]:
        path = self.root / "silver" / latest["run_folder"] / f"{model}.parquet"
        query = f"select {columns} from read_parquet('{path}') where {where}"
        return duckdb.connect().execute(query).fetchall()


# The models tagged bronze_driven, by the bronze they read: clients alone, or purchases too.
CLIENT_MODELS = (
    "base_retail__clients",
    "stg_retail__clients",
    "stg_retail__clients_quarantine",
    "int_client_versions_tracked",
    "dim_clients",
)
PURCHASE_MODELS = (
    "base_retail__purchases",
    "stg_retail__purchases",
    "stg_retail__purchases_quarantine",
    "fct_sales",
)
# The dimensions read from seeds alone: up to date whenever as_of_date is.
SEED_MODELS = ("dim_countries", "dim_products")
# The gold models that read both entities (every report but rpt_gold_summary, which names the
# run and is built on every run).
REPORTS = (
    "dim_dates",
    "rpt_client_kpis",
    "rpt_cohort_retention",
    "rpt_country_analytics",
    "rpt_data_quality",
    "rpt_distribution_histograms",
    "rpt_distribution_statistics",
    "rpt_product_analytics",
    "rpt_sales_anomalies",
    "rpt_sales_daily",
    "rpt_sales_monthly",
    "rpt_sales_weekly",
)
SOURCES = ("source:retail.clients", "source:retail.purchases")
EVERY_MODEL = {*CLIENT_MODELS, *PURCHASE_MODELS, *SEED_MODELS, *REPORTS}


def excluded(args: list[str]) -> list[str]:
    """What `dbt build` arguments leave out (`--exclude` up to the next option)."""
    if "--exclude" not in args:
        return []
    names = []
    for arg in args[args.index("--exclude") + 1 :]:
        if arg.startswith("--"):
            break
        names.append(arg)
    return names


def assert_same_exports(left: dict, right: dict) -> None:
    assert sorted(left) == sorted(right)
    different = [name for name in sorted(left) if left[name] != right[name]]
    assert not different, f"exports differ: {different}"


def survivor_of(lake: Lake, latest: dict, purchase_id: int) -> list[tuple]:
    """The product of the purchase's silver copy, and the reasons its other copies are refused."""
    (product,) = lake.silver_rows(
        latest, "stg_retail__purchases", "product", f"purchase_id = {purchase_id}"
    )
    refused = lake.silver_rows(
        latest,
        "stg_retail__purchases_quarantine",
        "string_agg(reject_reasons, ';' order by reject_reasons)",
        f"id_purchase = '{purchase_id}'",
    )
    return [(*product, *refused[0])]


@pytest.fixture(scope="module")
def lakes(tmp_path_factory):
    base = tmp_path_factory.mktemp("incremental")
    src, extra = base / "src", base / "extra"
    extra.mkdir()
    env = clean_env(LAKE_DIR=str(base / "unused"))
    lakehouse(
        "generate", "--out", str(src), "--clients", "600", "--seed", "5", "--end-date", AS_OF,
        "--dirty-rate", "0.05", "--batches", "5", env=env,
    )  # fmt: skip
    extras = write_extra_batches(src, extra)
    target = base / "target"  # one dbt target: partial parsing carries over between builds
    a = Lake(base / "lake-a", base / "state", target)
    b = Lake(base / "lake-b", base / "state", target)
    return src, extras, a, b


@pytest.fixture(scope="module")
def incremental_builds(lakes):
    """Lake A: batches 1..5 (and the hand-made files) landed and built one at a time, each
    build's data tests on the rows it writes as `lakehouse run` has them after a passing build
    (macros/test_scope.sql)."""
    src, extras, a, _ = lakes
    a.env["LAKEHOUSE_TEST_SCOPE"] = "built_rows"
    for step in range(1, 6):
        files = sorted(src.glob(f"*_{step:03d}.csv")) + extras.get(step, [])
        a.ingest(files)
        a.build(AS_OF)
    return a.export(AS_OF)


def test_the_batches_hold_what_incremental_runs_must_get_right(lakes, incremental_builds):
    src, _, a, _ = lakes
    injected = json.loads((src / "generation_manifest.json").read_text())["injected"]
    assert injected["clients"]["resent_moved"] > 0  # re-sent clients, moved
    assert injected["purchases"]["repeated_purchase"] > 0  # duplicates in a later batch
    latest = incremental_builds
    # the late client rescued both orphans; the older (orphan) copy of RESCUED now wins
    purchases, quarantine = "stg_retail__purchases", "stg_retail__purchases_quarantine"
    rescued = a.silver_rows(latest, purchases, "client_id", f"purchase_id = {RESCUED}")
    assert rescued == [(ORPHAN_CLIENT,)]
    assert a.silver_rows(latest, purchases, "client_id", f"purchase_id = {OLD_ORPHAN}")
    later_copy = a.silver_rows(latest, quarantine, "reject_reason", f"id_purchase = '{RESCUED}'")
    assert later_copy == [("duplicate_purchase",)]
    future = a.silver_rows(latest, quarantine, "reject_reason", f"id_purchase = '{FUTURE}'")
    assert future == [("future_purchase_date",)]
    # the client's arrival took the orphan reason from the line without a valid id
    no_id = a.silver_rows(latest, quarantine, "reject_reasons", f"id_purchase = '{NO_ID}'")
    assert no_id == [("invalid_purchase_id",)]
    # SPEC §3: a refused copy also lists duplicate_purchase when another copy survives
    assert survivor_of(a, latest, SWITCHED) == [
        ("Keyboard", "future_purchase_date,duplicate_purchase")
    ]


def test_incremental_builds_equal_a_full_refresh(lakes, incremental_builds):
    _, _, a, b = lakes
    shutil.copytree(a.root / "bronze", b.root / "bronze")
    b.reference_build(AS_OF)
    assert_same_exports(a.published(incremental_builds), b.published(b.export(AS_OF)))


def test_a_run_without_new_files_builds_only_the_summary_and_publishes_the_same(
    lakes, incremental_builds
):
    _, _, a, _ = lakes
    args, message = a.selection(AS_OF)
    assert set(excluded(args)) == {*EVERY_MODEL, *SOURCES}
    assert "no new bronze files" in message and "skipped" in message
    results = a.build(AS_OF, *args[1:])
    built = {r["unique_id"].split(".")[-1] for r in results if r["unique_id"].startswith("model.")}
    assert built == {"rpt_gold_summary"}
    assert_same_exports(a.published(incremental_builds), a.published(a.export(AS_OF)))


def test_a_new_as_of_date_without_new_files_is_still_exact(lakes, incremental_builds):
    _, _, a, b = lakes
    if not (b.root / "bronze").exists():
        shutil.copytree(a.root / "bronze", b.root / "bronze")
    args, message = a.selection(LATER_AS_OF)
    assert "--exclude" not in args
    assert f"as_of_date {AS_OF} -> {LATER_AS_OF}" in message
    a.build(LATER_AS_OF)
    latest = a.export(LATER_AS_OF)
    assert a.silver_rows(latest, "stg_retail__purchases", "*", f"purchase_id = {FUTURE}")
    late = a.silver_rows(
        latest,
        "stg_retail__clients",
        "cast(subscription_date as varchar), is_subscription_date_capped, has_shared_email",
        f"client_id = {ORPHAN_CLIENT}",
    )
    assert late == [("2025-07-10", False, True)]  # no longer capped; shares an e-mail
    # the older copy is no longer in the future: it wins, the newer one is now the duplicate
    assert survivor_of(a, latest, SWITCHED) == [("Monitor", "duplicate_purchase")]
    b.reference_build(LATER_AS_OF)
    assert_same_exports(a.published(latest), b.published(b.export(LATER_AS_OF)))


def test_an_earlier_as_of_date_takes_back_what_became_valid(lakes, incremental_builds):
    """After the later as_of_date (previous test), going back to AS_OF with no new file makes the
    purchase dated in between future again: it leaves silver and the fact (the fact's post-hook
    deletes it), and everything still equals a full rebuild."""
    _, _, a, b = lakes
    if not (b.root / "bronze").exists():
        shutil.copytree(a.root / "bronze", b.root / "bronze")
    a.build(AS_OF)
    latest = a.export(AS_OF)
    assert not a.silver_rows(latest, "stg_retail__purchases", "*", f"purchase_id = {FUTURE}")
    fact = a.root / "gold" / latest["run_folder"] / "fct_sales.parquet"
    query = f"select count(*) from read_parquet('{fact}') where purchase_id = {FUTURE}"
    assert duckdb.connect().execute(query).fetchone() == (0,)
    # and the newer copy of the other purchase dated in between wins again
    assert survivor_of(a, latest, SWITCHED) == [
        ("Keyboard", "future_purchase_date,duplicate_purchase")
    ]
    b.reference_build(AS_OF)
    assert_same_exports(a.published(latest), b.published(b.export(AS_OF)))


def test_the_line_by_line_check_names_lost_doubled_and_unknown_lines(
    lakes, incremental_builds, tmp_path
):
    """The reconciliation test (tests/reconciliation/, SPEC §3) passes on a consistent build and
    names each broken line on a doctored copy of it: a silver line deleted, a silver line also put
    in quarantine, and a quarantine line from a file bronze never had."""
    _, _, a, _ = lakes
    check = (
        a.target
        / "compiled/lakehouse/tests/reconciliation/assert_purchases_bronze_lines_land_once.sql"
    ).read_text()
    warehouse = tmp_path / "lakehouse.duckdb"  # the catalog name the compiled SQL uses
    shutil.copy(a.root / "warehouse" / "lakehouse.duckdb", warehouse)
    conn = duckdb.connect(str(warehouse))
    conn.execute(f"set variable lakehouse_bronze_root = '{a.root / 'bronze'}'")
    assert conn.execute(check).fetchall() == []

    lost, doubled = conn.execute(
        "select _source_file, _row_number from silver.stg_retail__purchases "
        "order by _source_file, _row_number limit 2"
    ).fetchall()
    # Silver purchases are a view over the base model's passing lines: losing the base line
    # loses the silver line.
    conn.execute(
        "delete from silver.base_retail__purchases where _source_file = ? and _row_number = ?",
        list(lost),
    )
    for source_file, row_number in (doubled, ("purchases/nowhere.csv", 1)):
        conn.execute(
            "insert into silver.stg_retail__purchases_quarantine by name "
            "select ? as _source_file, ? as _row_number",
            [source_file, row_number],
        )
    found = conn.execute(f"select * from ({check}) order by all").fetchall()
    assert sorted(found) == sorted(
        [(*lost, True, 0), (*doubled, True, 2), ("purchases/nowhere.csv", 1, False, 1)]
    )


def test_a_batch_of_purchases_alone_leaves_the_clients_models_out(lakes, incremental_builds):
    """A purchases file and no clients file: the models that read only clients bronze, and the
    tests that read only them and clients bronze, are left out of the build; a test that also
    reads a model being built (the fact against the client dimension) still runs. The result
    equals a full rebuild, and the state then says everything is up to date."""
    src, _, a, b = lakes
    (known,) = clean_clients(src / "clients_001.csv", 1)
    batch = a.root.parent / "extra" / "x6_purchases.csv"
    batch.write_text(
        f"{PURCHASE_HEADER}\n"
        f"900000010,{known['id_client']},Laptop,999.99,1,2025-06-01,999.99\n"  # new
        f"{RESCUED},{known['id_client']},Mouse,25.00,2,2025-06-02,50.00\n"  # a later copy
        f"900000011,880000999,Phone,400.00,1,2025-06-03,400.00\n",  # an orphan
        encoding="utf-8",
    )
    a.ingest([batch])
    args, message = a.selection(AS_OF)
    assert set(excluded(args)) == {*CLIENT_MODELS, *SEED_MODELS, "source:retail.clients"}
    assert args[-2:] == ["--indirect-selection", "cautious"]
    assert message.startswith("1 new bronze file(s) (purchases): silver and fct_sales built")

    results = a.build(AS_OF, *args[1:])
    ran = {r["unique_id"].split(".")[2] for r in results}
    assert ran.isdisjoint(CLIENT_MODELS) and set(PURCHASE_MODELS) <= ran
    assert "relationships_fct_sales_client_id__client_id__ref_dim_clients_" in ran
    assert "assert_purchases_bronze_lines_land_once" in ran
    assert "assert_clients_bronze_lines_land_once" not in ran
    assert "matches_pattern_stg_retail__clients_email___a_z0_9___a_z0_9_a_z_2_" not in ran

    assert set(excluded(a.selection(AS_OF)[0])) == {*EVERY_MODEL, *SOURCES}
    shutil.copytree(a.root / "bronze", b.root / "bronze", dirs_exist_ok=True)
    b.reference_build(AS_OF)
    latest = a.export(AS_OF)
    assert a.silver_rows(latest, "stg_retail__purchases", "client_id", "purchase_id = 900000010")
    assert_same_exports(a.published(latest), b.published(b.export(AS_OF)))
