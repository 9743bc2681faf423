"""Which models have anything to do? New bronze files that reach them, or a new as_of_date.

Silver, the client history, the sales fact, the dimensions and the gold reports (the dbt models
tagged `bronze_driven`: every model but rpt_gold_summary, which names the run) change only when
bronze gets new files or as_of_date changes (a change of code or seeds is handled apart:
`code_change_selection`). After a build in
which nothing failed, dbt records for each of them that it built which bronze files and which
as_of_date it reflects, which bronze entities (source tables) are upstream of it and its
bronze_driven parents (table `incremental_state`, written by the on-run-end hook in
macros/incremental.sql). Before the next build the flow asks `silver_status()`, and the build
leaves out (with their tests) the models that are up to date: no new file of an entity upstream
of them, the same as_of_date, and every bronze_driven parent up to date too. A batch of purchases
alone leaves the clients models out (and the dimensions read from seeds); no new file at all
leaves out every one of them, and the build is rpt_gold_summary and its tests.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import duckdb

from orchestration import dbt_runner
from orchestration.layout import PARSED_PREFIX
from orchestration.settings import Settings, get_settings
from orchestration.storage import Lake
from orchestration.unit_tests import project_fingerprint

STATE_TABLE = "main.incremental_state"


@dataclass(frozen=True)
class ModelState:
    """What a bronze_driven model reflected when it was last built (one row of the state)."""

    bronze_entities: frozenset[str]  # sources upstream of it (`retail.clients`, …)
    parents: frozenset[str]  # the bronze_driven models it reads
    source_files: frozenset[str]  # bronze keys held by the base_ models when it was built
    as_of_date: str
    code: str  # the project's fingerprint it was built with ("": a build by hand)


@dataclass
class SilverStatus:
    as_of_date: str
    built_as_of: str | None  # as_of_date(s) of the recorded models; None: none recorded
    new_files: list[str] = field(default_factory=list)  # bronze keys no model has seen yet
    up_to_date_models: list[str] = field(default_factory=list)  # left out of the build
    unchanged_sources: list[str] = field(default_factory=list)  # sources with no new file
    stale_models: list[str] = field(default_factory=list)  # recorded models to build again
    full_rebuild: bool = False  # a target without incremental models (Spark): always built

    @property
    def up_to_date(self) -> bool:
        """Every recorded bronze_driven model is up to date: no dbt work on silver at all."""
        return not self.full_rebuild and bool(self.up_to_date_models) and not self.stale_models

    def describe(self) -> str:
        if self.full_rebuild:
            return "Spark target: silver and fct_sales rebuilt in full (no incremental models)"
        if self.up_to_date:
            return (
                f"no new bronze files and as_of_date unchanged ({self.as_of_date}): silver, "
                "fct_sales and the gold reports skipped (no dbt work on them), rpt_gold_summary "
                "rebuilt"
            )
        if self.built_as_of is None:
            return "no complete silver build recorded: silver and fct_sales built"
        reasons = []
        if self.new_files:
            entities = sorted({entity_of(key) for key in self.new_files})
            reasons.append(f"{len(self.new_files)} new bronze file(s) ({', '.join(entities)})")
        if self.built_as_of != self.as_of_date:
            reasons.append(f"as_of_date {self.built_as_of} -> {self.as_of_date}")
        reasons = reasons or ["a model not built since the last new file"]
        message = f"{' and '.join(reasons)}: silver and fct_sales built incrementally"
        if self.up_to_date_models:
            message += f"; up to date, skipped: {', '.join(self.up_to_date_models)}"
        return message

    def dbt_args(self) -> list[str]:
        """Extra `dbt build` arguments: leave out the models that are up to date, and the tests
        that read only them and unchanged bronze. `cautious`: a test that also reads a model
        being built (fct_sales → dim_clients) still runs; dbt's default drops it."""
        if not self.up_to_date_models:
            return []
        sources = [f"source:{source}" for source in self.unchanged_sources]
        return ["--exclude", *self.up_to_date_models, *sources, "--indirect-selection", "cautious"]


def entity_of(bronze: str) -> str:
    """The entity (source table) of a bronze key: `purchases/ingest_date=…/….csv` → purchases."""
    return bronze.split("/", 1)[0]


def source_entity(source: str) -> str:
    """The entity a dbt source reads: `retail.purchases` → purchases."""
    return source.rsplit(".", 1)[-1]


def bronze_files(lake: Lake) -> set[str]:
    """Bronze keys of every landed file that has its line-split twin (what silver reads)."""
    keys = set()
    for key in lake.list("bronze", f"{PARSED_PREFIX}/"):
        if key.endswith(".parquet"):
            keys.add(key[len(PARSED_PREFIX) + 1 : -len(".parquet")] + ".csv")
    return keys


def recorded_state(settings: Settings) -> dict[str, ModelState]:
    """Model name → what it reflected at its last build, from the warehouse."""
    warehouse = settings.warehouse_path
    if not warehouse.exists():
        return {}
    conn = duckdb.connect(str(warehouse), read_only=True)
    try:
        columns = {
            name
            for (name,) in conn.execute(
                "select column_name from information_schema.columns "
                "where table_schema = 'main' and table_name = 'incremental_state'"
            ).fetchall()
        }
        if "code" not in columns:  # none yet, or an earlier layout
            return {}
        rows = conn.execute(
            "select model, bronze_entities, parents, source_files, as_of_date, code "
            f"from {STATE_TABLE}"
        ).fetchall()
    finally:
        conn.close()
    return {
        model: ModelState(
            frozenset(entities), frozenset(parents), frozenset(files), str(as_of), code or ""
        )
        for model, entities, parents, files, as_of, code in rows
    }


def up_to_date_models(
    state: dict[str, ModelState], bronze: set[str], as_of_date: str, code: str
) -> tuple[list[str], list[str]]:
    """(up to date, stale) recorded models. A model is up to date when the flow built it with
    this code (`code`: the project's fingerprint; a build by hand records none) and it reflects
    this as_of_date and every bronze file of the entities upstream of it, and so is every
    bronze_driven parent (a parent that is rebuilt must have its readers rebuilt too)."""

    def fresh(model: str) -> bool:
        recorded = state.get(model)
        if recorded is None or recorded.as_of_date != as_of_date:
            return False
        if not recorded.code or recorded.code != code:
            return False
        entities = {source_entity(source) for source in recorded.bronze_entities}
        return not any(entity_of(key) in entities for key in bronze - recorded.source_files)

    def up_to_date(model: str, path: tuple[str, ...] = ()) -> bool:
        if model in path:  # a cycle cannot happen in dbt's DAG; never loop on bad state
            return False
        return fresh(model) and all(
            up_to_date(parent, (*path, model)) for parent in state[model].parents
        )

    verdicts = {model: up_to_date(model) for model in state}
    return (
        sorted(model for model, ok in verdicts.items() if ok),
        sorted(model for model, ok in verdicts.items() if not ok),
    )


def silver_status(
    as_of_date: str, settings: Settings | None = None, code: str | None = None
) -> SilverStatus:
    """Which bronze_driven models reflect every bronze file reaching them and this as_of_date,
    built with this code (`code`: the project's fingerprint, computed when not given)."""
    settings = settings or get_settings()
    if settings.engine == "spark":
        # Spark has no incremental runs (macros/incremental.sql, incremental_materialization):
        # silver and the fact are rebuilt in full, and the DuckDB warehouse's state (which may
        # exist beside the Spark warehouse in the same lake) says nothing about Spark's tables.
        return SilverStatus(as_of_date, None, [], full_rebuild=True)
    state = recorded_state(settings)
    if not state:
        return SilverStatus(as_of_date, None)
    bronze = bronze_files(Lake(settings))
    seen = frozenset().union(*(recorded.source_files for recorded in state.values()))
    built_as_of = {recorded.as_of_date for recorded in state.values()}
    new_files = sorted(bronze - seen)
    code = code or project_fingerprint(settings.dbt_project_dir, settings.dbt_target)
    up_to_date, stale = up_to_date_models(state, bronze, as_of_date, code)
    sources = set().union(*(recorded.bronze_entities for recorded in state.values()))
    changed = {entity_of(key) for key in new_files}
    return SilverStatus(
        as_of_date,
        built_as_of=" and ".join(sorted(built_as_of)),
        new_files=new_files,
        up_to_date_models=up_to_date,
        unchanged_sources=sorted(s for s in sources if source_entity(s) not in changed),
        stale_models=stale,
    )


FULL_REFRESH = (
    "--full-refresh: silver and fct_sales rebuilt in full from all of bronze (after a change of "
    "model logic or columns)"
)

# Read by `should_full_refresh` (macros/incremental.sql) when a model runs: the incremental
# models to rebuild in full in this build, comma-separated.
FULL_REFRESH_MODELS_VARIABLE = "LAKEHOUSE_FULL_REFRESH_MODELS"

# Read by `record_incremental_state` (macros/incremental.sql) at the end of a build: the
# project's fingerprint (orchestration/unit_tests.py) the flow builds with, recorded per model.
CODE_VARIABLE = "LAKEHOUSE_CODE_FINGERPRINT"

# The incremental models a change of code reaches: changed themselves (their SQL, config, a
# macro they call, a seed or source they read; dbt's `state:modified`), or downstream of a
# changed node (`+`). A change of docs or tests reaches none.
CHANGED_INCREMENTAL_MODELS = "state:modified+,config.materialized:incremental"


NEW_WAREHOUSE = "a new warehouse (no incremental table stored yet): every silver model built"
CODE_CHANGED_ON_SPARK = "the project code changed: on Spark every silver model is built in full"

CODE_CHANGED_ELSEWHERE = (
    "the project code changed, not that of an incremental model or of anything it reads: the "
    "silver models built incrementally"
)


# Read by macros/test_scope.sql when a test compiles: `built_rows` lets the row-level tests of
# the stamped models check the rows this build writes; anything else, every row.
TEST_SCOPE_VARIABLE = "LAKEHOUSE_TEST_SCOPE"

BUILT_ROWS = "built_rows"
ALL_ROWS = "all_rows"

BUILT_ROWS_TESTED = "data tests on the rows this build writes (the last build passed them all)"


class BuildSelection(NamedTuple):
    """A pipeline run's `dbt build`: its arguments, what it does with silver (a line for the
    logs, the CLI output and the run summary), the incremental models it rebuilds in full (the
    flow passes them to dbt in FULL_REFRESH_MODELS_VARIABLE), and which rows the data tests
    check (TEST_SCOPE_VARIABLE)."""

    args: list[str]
    silver: str
    full_refresh_models: tuple[str, ...] = ()
    test_scope: str = ALL_ROWS


def last_build_passed(settings: Settings) -> bool:
    """Whether every row the warehouse stores has passed its data tests: the last `dbt build`
    or `dbt run` on it, by the flow or by hand, tested what it wrote and nothing failed, and so
    had every build before it (table `build_check`, kept by macros/test_scope.sql)."""
    if not settings.warehouse_path.exists():
        return False
    conn = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        found = conn.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = 'main' and table_name = 'build_check'"
        ).fetchone()[0]
        if not found:
            return False
        row = conn.execute("select bool_and(passed) from main.build_check").fetchone()
    finally:
        conn.close()
    return bool(row and row[0])


RETESTED = (
    "the last build did not pass every test: every silver model built, data tests on every row"
)


def incremental_test_scope(settings: Settings, status: SilverStatus) -> str:
    """The data tests of a build that follows new data, the code unchanged: the rows this build
    writes when the setting allows it, the last build passed every test and as_of_date is the
    one the stored rows were checked at (a row-level test may read it), else every row. A
    change of code (a new or changed test) tests every row, whatever the setting."""
    if (
        settings.data_test_scope == BUILT_ROWS
        and status.built_as_of == status.as_of_date
        and last_build_passed(settings)
    ):
        return BUILT_ROWS
    return ALL_ROWS


def built_code_path(settings: Settings) -> Path:
    """Beside the warehouse: dbt's manifest of the last build the flow completed, i.e. the code
    the warehouse's incremental tables were built with (`dbt ls --state` compares with it)."""
    return settings.warehouse_path.parent / "built_with"


def record_built_code(settings: Settings) -> None:
    """After a build in which nothing failed: keep its manifest as the code the tables reflect."""
    manifest = dbt_runner.target_path(settings) / "manifest.json"
    if settings.engine == "spark" or not manifest.is_file():
        return
    folder = built_code_path(settings)
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / "manifest.json.tmp"
    shutil.copyfile(manifest, partial)
    partial.replace(folder / "manifest.json")


def code_change_selection(as_of_date: str, settings: Settings) -> BuildSelection:
    """The build after a change of the project's code (since the unit tests last passed).

    A change of logic or of a seed is not new data: the stored rows of an incremental model
    were computed by the old code, and an incremental build would apply the new code to new
    lines only. So the incremental models the change reaches are rebuilt in full (dbt's
    `state:modified+` against the manifest of the last completed build), the others
    incrementally; with no manifest recorded (a warehouse built before it was kept, or by dbt
    outside the flow), every incremental model is rebuilt in full. Nothing is left out: a model
    is up to date with the data, not with code it was not built with, and the unit tests of a
    model left out would not run."""
    if settings.engine == "spark":
        return BuildSelection(["build"], CODE_CHANGED_ON_SPARK)
    if not settings.warehouse_path.exists():
        return BuildSelection(["build"], NEW_WAREHOUSE)
    manifest = built_code_path(settings) / "manifest.json"
    vars_args = ["--vars", dbt_runner.dbt_vars(as_of_date)]
    models = None
    if manifest.is_file():
        changed = ["--select", CHANGED_INCREMENTAL_MODELS, "--state", str(manifest.parent)]
        why = "their code, or code or a seed they depend on, changed since the last build"
        try:
            models = dbt_runner.list_models([*changed, *vars_args], settings)
        except dbt_runner.DbtError:  # a manifest this dbt cannot read (an older schema)
            why = "the code of the last build could not be compared"
    else:
        why = "the code of the last build is not recorded"
    if models is None:
        every = ["--select", "config.materialized:incremental"]
        models = dbt_runner.list_models([*every, *vars_args], settings)
    if not models:
        return BuildSelection(["build"], CODE_CHANGED_ELSEWHERE)
    message = (
        f"the project code changed: {', '.join(models)} rebuilt in full ({why}); everything "
        "else built as usual"
    )
    return BuildSelection(["build"], message, tuple(models))


def build_selection(
    as_of_date: str,
    settings: Settings | None = None,
    full_refresh: bool = False,
    code_changed: bool = False,
    code: str | None = None,
) -> BuildSelection:
    """`dbt build` and its selection for a pipeline run. `full_refresh` rebuilds the incremental
    models from all of bronze. `code_changed` (the unit tests are due): see
    `code_change_selection`. `code`: the project's fingerprint, if the caller has it."""
    settings = settings or get_settings()
    if full_refresh:
        return BuildSelection(["build", "--full-refresh"], FULL_REFRESH)
    if code_changed:
        return code_change_selection(as_of_date, settings)
    status = silver_status(as_of_date, settings, code)
    if status.full_rebuild:
        return BuildSelection(["build", *status.dbt_args()], status.describe())
    if status.built_as_of is not None and not last_build_passed(settings):
        # Build and test every stamped model once, so that the record says every stored row
        # passed again: later builds can test their own rows (macros/test_scope.sql) and the
        # fact compares only what changed (macro reflected_build), whatever DATA_TEST_SCOPE.
        return BuildSelection(["build"], RETESTED)
    scope = incremental_test_scope(settings, status)
    message = status.describe()
    if scope == BUILT_ROWS:
        message += f"; {BUILT_ROWS_TESTED}"
    return BuildSelection(["build", *status.dbt_args()], message, test_scope=scope)
