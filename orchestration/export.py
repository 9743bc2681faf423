"""Export: publish the built marts as Parquet, atomically (SPEC §5).

Every gold model and the silver models go into a fresh run folder
(`gold/runs/<run_id>/`, `silver/runs/<run_id>/`); only when all files are written is
`gold/latest.json` replaced, in one write. Readers resolve `latest.json`, so they see the previous
complete run or the new one, never a half-written set. Old runs are pruned to the last N.

A model that no dbt command has written since the previous run was exported is not written
again: its file is copied from that run (`export_source`: the command that last wrote the model
or, for a view, what it reads, recorded by macros/model_builds.sql, and the query, options and
DuckDB that make the file; the manifest keeps each file's value). In an incremental run that
brought only purchases, the client models and the dimensions read from seeds are copied; in a
run that brought no file, every model but rpt_gold_summary.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from orchestration.dbt_runner import target_path
from orchestration.layout import LATEST, RUNS_PREFIX, run_folder
from orchestration.settings import Settings, get_settings
from orchestration.storage import Lake, sql_string
from orchestration.warehouse import WarehouseError, warehouse_connection, warehouse_exists

# Silver models published beside gold (the final staging models, SPEC §5).
SILVER_MODELS = (
    "stg_retail__clients",
    "stg_retail__purchases",
    "stg_retail__clients_quarantine",
    "stg_retail__purchases_quarantine",
)


class ExportError(RuntimeError):
    pass


@dataclass
class ExportResult:
    run_id: str
    run_folder: str
    as_of_date: str
    published_at: str
    gold: dict[str, int] = field(default_factory=dict)  # model → rows
    silver: dict[str, int] = field(default_factory=dict)
    documents: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)  # files copied from the previous run
    sources: dict[str, str] = field(default_factory=dict)  # "layer.model" → export_source
    pruned: list[str] = field(default_factory=list)
    seconds: float = 0.0


def new_run_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def _models_in(conn: duckdb.DuckDBPyConnection, schema: str) -> list[str]:
    rows = conn.execute(
        "select table_name from information_schema.tables "
        "where table_schema = ? and table_type in ('BASE TABLE', 'VIEW') order by table_name",
        [schema],
    ).fetchall()
    return [name for (name,) in rows]


# Bookkeeping of the incremental models, not part of what they publish: fct_sales's change
# fingerprint, the purchases quarantine's key and the build that wrote each row
# (models/docs.md, "incremental_processing").
INTERNAL_COLUMNS = ("_row_state", "_line_id", "_build_id")

# Row order of the sales fact: by the dashboard's filters first, so a reader filtering on a
# country or a product skips the row groups whose min/max statistics exclude it (a one-country
# page reads about a tenth of the file), then by the key, so the order is total. The large models
# with a unique key (a dbt test proves it) are sorted on that key alone, every other model on all
# its columns. Either way two runs over the same inputs write the same files, however the table
# was built (incrementally or not).
EXPORT_ORDER = {
    "fct_sales": "country, product, purchase_date, purchase_id",
    "stg_retail__purchases": "purchase_id",
    "stg_retail__clients": "client_id",
    "dim_clients": "client_id",
    "rpt_client_kpis": "client_id",
}


def _sales_fact_in_export_order(relation: str, columns: list[str]) -> str:
    """fct_sales in its EXPORT_ORDER (country, product, purchase_date, purchase_id), sorted on
    integers: sorting ten million rows on two text columns takes half as long again (8.6 s
    against 5.8 s at 2M clients).

    The (country, product) pairs are ranked in a small table (NULLs last, as in EXPORT_ORDER);
    the sort key is that rank and the day number packed in one BIGINT, then the id. A day number
    (DuckDB dates are int32 days; 2^31 stands for a NULL date, last as in EXPORT_ORDER) lies in
    [-2^31, 2^31], and pairs are 2^33 apart, so two pairs' keys never meet: the rows come out in
    the same order and the file is the same to the byte.
    """
    select = ", ".join(f'sales."{column}"' for column in columns)
    return f"""
        with pairs as (
            select
                country,
                product,
                row_number() over (order by country, product) as pair_rank
            from (select distinct country, product from {relation})
        )
        select {select}
        from {relation} as sales
        left join pairs
            on
                sales.country is not distinct from pairs.country
                and sales.product is not distinct from pairs.product
        order by
            pairs.pair_rank * 8589934592
            + coalesce(sales.purchase_date - date '1970-01-01', 2147483648),
            sales.purchase_id
    """


def _in_export_order(relation: str, name: str, columns: list[str]) -> str:
    if name == "fct_sales":
        return _sales_fact_in_export_order(relation, columns)
    select = ", ".join(f'"{column}"' for column in columns)
    return f"select {select} from {relation} order by {EXPORT_ORDER.get(name, 'all')}"


# zstd level 1, not DuckDB's default 3: at 2M clients fct_sales is written faster (4.5 s against
# 5.2 s, sorted) and smaller (127 MB against 133 MB) on these sorted columns.
PARQUET_OPTIONS = "format parquet, compression zstd, compression_level 1"


def _export_query(conn: duckdb.DuckDBPyConnection, relation: str) -> str:
    """The query whose rows a model's Parquet file holds: its published columns, in order."""
    schema, name = relation.split(".")
    columns = [
        column
        for (column,) in conn.execute(
            "select column_name from information_schema.columns "
            "where table_schema = ? and table_name = ? order by ordinal_position",
            [schema, name],
        ).fetchall()
        if column not in INTERNAL_COLUMNS
    ]
    return _in_export_order(relation, name, columns)


def _copy(
    conn: duckdb.DuckDBPyConnection, relation: str, target: str, query: str | None = None
) -> int:
    """Write `relation` (its export query, if known) to the Parquet file `target`; its rows."""
    query = query or _export_query(conn, relation)
    count = conn.execute(f"select count(*) from {relation}").fetchone()[0]
    conn.execute(f"copy ({query}) to {sql_string(target)} ({PARQUET_OPTIONS})")
    return count


def _writers(conn: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Model → the invocation id of the last dbt command that may have changed it (table
    `model_builds`, kept by macros/model_builds.sql); empty without the table (Spark, a
    warehouse no dbt command has run on since it came)."""
    exists = conn.execute(
        "select count(*) from information_schema.tables "
        "where table_schema = 'main' and table_name = 'model_builds'"
    ).fetchone()[0]
    if not exists:
        return {}
    return dict(conn.execute("select model, invocation_id from main.model_builds").fetchall())


def export_source(writer: str | None, query: str) -> str | None:
    """What a model's Parquet file is made from: the dbt command that last changed the model
    (`writer`), the query and options that export it, and the DuckDB that writes the file. Two
    exports with the same value write the same file, so the second copies the first's. None
    (write the file) for a model no recorded command wrote."""
    if writer is None:
        return None
    recipe = "\n".join((writer, duckdb.__version__, PARQUET_OPTIONS, query))
    return hashlib.sha256(recipe.encode()).hexdigest()


def _reusable(lake: Lake, previous: dict | None, layer: str, model: str, source: str | None):
    """The previous published run's file of `model` and its row count, when it was exported
    from the same source and is still there; else None."""
    if previous is None or source is None:
        return None
    if previous.get("export_sources", {}).get(f"{layer}.{model}") != source:
        return None
    key = f"{previous['run_folder']}/{model}.parquet"
    rows = previous.get("row_counts", {}).get(model)
    if rows is None or not lake.exists(layer, key):
        return None
    return key, rows


def quality_report(conn: duckdb.DuckDBPyConnection) -> dict:
    """quality_report.json from gold.rpt_data_quality (SPEC §3 report)."""
    rows = conn.execute(
        "select entity, source_file, measure, metric, row_count, score "
        "from gold.rpt_data_quality order by entity, source_file, measure, sort_order"
    ).fetchall()
    report: dict = {"entities": {}, "overall": {}, "files": {}}
    for entity, source_file, measure, metric, row_count, score in rows:
        if source_file != "all":
            target = report["files"].setdefault(source_file, {"entity": entity})
        elif entity == "overall":
            target = report["overall"]
        else:
            target = report["entities"].setdefault(entity, {})
        if measure == "rows":
            target[f"{metric}_rows"] = row_count
        elif measure == "score":
            target["quality_score"] = float(score) if score is not None else None
        else:
            group = {"quarantine": "quarantine", "fix": "fixes", "nulls": "null_counts"}[measure]
            target.setdefault(group, {})[metric] = row_count
    return report


def statistical_distributions(conn: duckdb.DuckDBPyConnection) -> dict:
    """statistical_distributions.json from gold.rpt_distribution_statistics."""
    rows = conn.execute(
        "select metric, statistic, value from gold.rpt_distribution_statistics order by all"
    ).fetchall()
    document: dict = {}
    for metric, statistic, value in rows:
        document.setdefault(metric, {})[statistic] = None if value is None else float(value)
    return {"metrics": document}


def gold_summary(conn: duckdb.DuckDBPyConnection) -> dict:
    """gold_summary.json: the one row of gold.rpt_gold_summary."""
    cursor = conn.execute("select * from gold.rpt_gold_summary")
    columns = [d[0] for d in cursor.description]
    row = cursor.fetchone()
    return {"summary": dict(zip(columns, row, strict=True)) if row else {}}


# JSON documents published beside the Parquet files: file name → (source model, builder).
DOCUMENTS = {
    "quality_report.json": ("rpt_data_quality", quality_report),
    "statistical_distributions.json": ("rpt_distribution_statistics", statistical_distributions),
    "gold_summary.json": ("rpt_gold_summary", gold_summary),
}


def _json_value(value: object) -> object:
    """Dates as ISO text, decimals as numbers."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return float(value)  # Decimal


def quality_gate(settings: Settings) -> dict:
    """The quality report of the warehouse, with the threshold and whether it passes.

    Publishing only what passes keeps `latest.json` on the previous good export, so the
    dashboard never shows a run whose data the team would not trust.
    """
    conn = warehouse_connection(settings)
    try:
        return _gate(conn, settings)
    finally:
        conn.close()


def _gate(conn: duckdb.DuckDBPyConnection, settings: Settings) -> dict:
    report = quality_report(conn)
    score = report["overall"].get("quality_score")
    report["threshold"] = settings.quality_threshold
    report["passed"] = score is not None and score >= settings.quality_threshold
    return report


def gate_message(report: dict) -> str:
    parts = [
        f"{entity} {part.get('quality_score')}"
        + "".join(
            f", {count:,} {reason}"
            for reason, count in sorted(
                part.get("quarantine", {}).items(), key=lambda item: -item[1]
            )[:3]
            if count
        )
        for entity, part in sorted(report["entities"].items())
    ]
    return (
        f"quality score {report['overall'].get('quality_score')} is below QUALITY_THRESHOLD="
        f"{report['threshold']:g} ({'; '.join(parts)}). Nothing was published: the dashboard "
        "keeps the previous export. Fix the source files or lower QUALITY_THRESHOLD."
    )


def _last_build_passed(conn: duckdb.DuckDBPyConnection) -> bool | None:
    """Whether the last `dbt build` passed every test (table `build_check`, kept by
    macros/test_scope.sql); None where nothing records it (Spark, no build by this project)."""
    try:
        row = conn.execute("select passed from main.build_check").fetchone()
    except duckdb.Error:
        return None
    return bool(row[0]) if row else None


def recorded_as_of(settings: Settings) -> str | None:
    """The as_of_date gold.rpt_gold_summary records; None without a built warehouse."""
    if not warehouse_exists(settings):
        return None
    try:
        conn = warehouse_connection(settings)
    except (duckdb.Error, WarehouseError):
        return None
    try:
        return _summary_as_of(conn)
    except duckdb.Error:  # no gold layer yet
        return None
    finally:
        conn.close()


def _summary_as_of(conn: duckdb.DuckDBPyConnection) -> str | None:
    """gold.rpt_gold_summary's as_of_date (a DATE) as ISO text; None when it records none."""
    row = conn.execute("select as_of_date from gold.rpt_gold_summary").fetchone()
    return str(row[0]) if row and row[0] is not None else None


def built_as_of(conn: duckdb.DuckDBPyConnection, as_of_date: str | None) -> str:
    """The as_of_date the warehouse's marts were computed for, as gold.rpt_gold_summary records
    it. A different `as_of_date` is refused: recency, lifetimes and partial periods would be
    published under a date they were not computed for."""
    built = _summary_as_of(conn)
    if built is None:
        if as_of_date is None:
            raise ExportError(
                "gold.rpt_gold_summary records no as_of_date: pass --as-of, the date the "
                "warehouse was built for"
            )
        return as_of_date
    if as_of_date is not None and as_of_date != built:
        raise ExportError(
            f"the warehouse was built as of {built}, not {as_of_date}: publish it with "
            f"--as-of {built} (or no --as-of), or rebuild it with `lakehouse run --as-of "
            f"{as_of_date}`"
        )
    return built


def read_latest(lake: Lake) -> dict | None:
    if not lake.exists("gold", LATEST):
        return None
    return json.loads(lake.read_bytes("gold", LATEST))


def export(
    as_of_date: str | None,
    settings: Settings | None = None,
    run_id: str | None = None,
    progress: Callable[[str], None] | None = None,
    force: bool = False,
) -> ExportResult:
    """Write every gold and silver model of the warehouse to a new run folder, then publish it.

    `as_of_date` must be the one the warehouse was built for (None: the one it records; see
    `built_as_of`). `progress`, if given, is called with each model's name once it is written.
    Nothing is written when the last build did not pass its tests or the quality score is under
    the threshold (the checks of `lakehouse run`), unless `force`.
    """
    settings = settings or get_settings()
    started = time.monotonic()
    lake = Lake(settings)
    lake.ensure_layers()
    run_id = run_id or new_run_id()
    folder = run_folder(run_id)
    if settings.dbt_target == "spark_cluster":
        raise ExportError(
            "DBT_TARGET=spark_cluster: the export reads a local warehouse only (target lake or "
            "spark); on a cluster, publish the gold tables from the cluster itself"
        )
    if not warehouse_exists(settings):
        raise ExportError(
            f"no {settings.engine} warehouse under {settings.warehouse_path.parent}: "
            "run `lakehouse run` (or dbt build) first"
        )
    conn = warehouse_connection(settings)  # read-only: a reader beside it does not block it
    try:
        gold_models = _models_in(conn, "gold")
        if not gold_models:
            raise ExportError("the warehouse has no gold models: the dbt build did not run")
        if "rpt_gold_summary" in gold_models:
            as_of_date = built_as_of(conn, as_of_date)
        elif as_of_date is None:
            raise ExportError("the warehouse has no gold.rpt_gold_summary: pass --as-of")
        if not force and _last_build_passed(conn) is False:
            raise ExportError(
                "the last dbt build (or dbt test) on this warehouse did not pass every test, or "
                "tested nothing: rebuild it with `lakehouse run`. To publish it anyway: "
                "lakehouse export --force."
            )
        gate = _gate(conn, settings)
        if not gate["passed"] and not force:
            raise ExportError(
                f"{gate_message(gate)} To publish it anyway: lakehouse export --force."
            )
        result = ExportResult(run_id, folder, as_of_date, "")
        silver_models = _models_in(conn, "silver")
        if lake.is_local:
            for layer in ("gold", "silver"):
                (Path(lake.root(layer)) / folder).mkdir(parents=True, exist_ok=True)
        writers = _writers(conn)
        previous = read_latest(lake)
        if previous and previous.get("run_id") == run_id:
            previous = None  # this run's own files (a retried export): nothing to copy from
        exported = [("gold", model) for model in gold_models] + [
            ("silver", model) for model in SILVER_MODELS if model in silver_models
        ]
        for layer, model in exported:
            relation, key = f"{layer}.{model}", f"{folder}/{model}.parquet"
            query = _export_query(conn, relation)
            source = export_source(writers.get(model), query)
            reusable = _reusable(lake, previous, layer, model, source)
            if reusable:
                lake.copy(layer, reusable[0], layer, key)
                rows = reusable[1]
                result.reused.append(model)
            else:
                rows = _copy(conn, relation, lake.uri(layer, key), query)
            getattr(result, layer)[model] = rows
            if source:
                result.sources[relation] = source
            if progress:
                progress(model)
        documents = {
            name: build(conn) for name, (model, build) in DOCUMENTS.items() if model in gold_models
        }
    finally:
        conn.close()

    published_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    result.published_at = published_at
    for name, document in documents.items():
        document = {"run_id": run_id, "as_of_date": as_of_date, **document}
        payload = json.dumps(document, indent=2, default=_json_value).encode()
        lake.write_bytes("gold", f"{folder}/{name}", payload)
        result.documents.append(name)
    manifest = {
        "run_id": run_id,
        "as_of_date": as_of_date,
        "published_at": published_at,
        "run_folder": folder,
        "run_uri": lake.uri("gold", folder),
        "silver_run_uri": lake.uri("silver", folder),
        "models": sorted(result.gold),
        "silver_models": sorted(result.silver),
        "documents": sorted(result.documents),
        "row_counts": {**result.gold, **result.silver},
        "export_sources": result.sources,
        "reused": sorted(result.reused),
    }
    docs = target_path(settings) / "static_index.html"  # what `dbt docs generate` wrote
    if docs.exists():  # the dbt docs site (lineage), one self-contained page
        lake.upload_file("gold", f"{folder}/docs/index.html", docs)
        manifest["docs_uri"] = lake.uri("gold", f"{folder}/docs/index.html")
    lake.write_bytes("gold", f"{folder}/_manifest.json", json.dumps(manifest, indent=2).encode())
    # The single atomic step that publishes the run.
    lake.write_bytes("gold", LATEST, json.dumps(manifest, indent=2).encode())
    result.pruned = prune(lake, keep=settings.export_keep_runs, current=run_id)
    result.seconds = time.monotonic() - started
    return result


def prune(lake: Lake, keep: int, current: str) -> list[str]:
    """Keep the newest `keep` published runs; delete older ones and unfinished leftovers.

    A run is published once its gold `_manifest.json` exists (written just before latest.json).
    A folder without one, older than the run just published, is what a killed export left
    behind: it never counts towards `keep` and is removed. The current run is never touched.
    """
    published = {
        run_id
        for run_id in lake.iter_folders("gold", RUNS_PREFIX)
        if lake.exists("gold", f"{run_folder(run_id)}/_manifest.json")
    }
    kept = set(sorted(published | {current})[-keep:]) | {current}
    pruned = []
    for layer in ("gold", "silver"):
        for run_id in sorted(lake.iter_folders(layer, RUNS_PREFIX)):
            unfinished = run_id not in published and run_id < current
            if run_id not in kept and (run_id in published or unfinished):
                lake.delete_prefix(layer, f"{RUNS_PREFIX}{run_id}/")
                if layer == "gold":
                    pruned.append(run_id)
        if lake.is_local:  # empty run folders (no file) are invisible to iter_folders
            runs_root = Path(lake.root(layer)) / RUNS_PREFIX
            for folder in runs_root.glob("*") if runs_root.exists() else []:
                if folder.is_dir() and folder.name != current and not any(folder.rglob("*")):
                    folder.rmdir()
    return pruned
