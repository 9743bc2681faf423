"""`lakehouse bench pipeline`: time a full and an incremental `lakehouse run`, and the pandas
baseline, on the same generated files; print a table and write the figures as JSON.

What is measured, and how:
- every step runs as a subprocess, the way a user runs it (`lakehouse generate`, `lakehouse run
  --json`, `python -m orchestration.baseline`); wall time is from start to exit;
- memory is the RSS of the whole process tree (the command and every descendant, e.g. Prefect's
  temporary API server), summed, sampled every 0.1 s from /proc. Summing RSS counts pages shared
  between processes more than once, so it errs on the high side;
- per stage, the run's JSON summary gives each stage's start (epoch) and seconds: the peak RSS of
  a stage is the highest sample inside that window, and rows per second use the rows the stage
  consumes (ingest: CSV lines landed; dbt: bronze rows in the lake; export: rows exported). What
  the summary's stages do not cover (interpreter start, Prefect's API, shutdown) is reported as
  "outside stages". dbt's model / test / unit-test seconds are execution times summed over nodes,
  i.e. thread time (two dbt threads can add up to more than the wall time);
- the incremental run lands one more purchases file with about 1 % more purchases (a second
  `lakehouse generate` of clients / 100 clients, its purchase ids shifted past the first data
  set's, so its lines are new purchases of existing clients) on the same lake;
- the baseline reads the same CSV files; its silver counts (per entity and per quarantine reason)
  and a few gold figures are compared with the full run's exports.

Each run gets a fresh lake under the work folder and a private copy of the dbt project (its
`target/` and `logs/` do not collide with other runs). The Prefect database of the work folder is
created once, before the timed runs (its migrations are a one-time setup, not part of a run); a
Prefect server given by PREFECT_API_URL is used as is.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from importlib import metadata
from pathlib import Path

from dotenv import dotenv_values
from rich.console import Console
from rich.table import Table

from orchestration.settings import PROJECT_ROOT, SPILL_FOLDER, Settings

END_DATE = "2025-06-30"
SEED = 42
INCREMENT_SEED = 4242
DIRTY_RATE = "0.02"
SAMPLE_SECONDS = 0.1
SPILL_SAMPLE_SECONDS = 1.0
BIN = Path(sys.executable).parent
DBT_PROJECT_PARTS = ("dbt_project.yml", "models", "macros", "seeds", "snapshots", "tests")
# Folders of the work dir that each bench rebuilds (the Prefect database in `state` is kept).
FRESH_FOLDERS = (
    "sources",
    "increment",
    "increment-generated",
    "lake",
    "baseline",
    "dbt-project",
    "logs",
)
TARGETS = {  # the targets at 2M clients / 10M purchases, reported beside the figures
    "full_run_seconds": 60,
    "incremental_percent_of_full": 15,
    "peak_rss_bytes_with_memory_limit_3GB": 4 * 10**9,  # "below 4 GB": 3,815 MiB
}
MB = 1024 * 1024  # printed as MiB
GB = 1024 * MB  # printed as GiB

console = Console(stderr=True)
out = Console(width=None if sys.stdout.isatty() else 120)  # a log file gets the full table


class BenchError(RuntimeError):
    """A step of the bench failed; the message says which and where its log is."""


# --- measuring a process tree --------------------------------------------------------------------

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def _process_table() -> dict[int, tuple[int, int]]:
    """pid → (parent pid, RSS bytes) for every process we can read."""
    table: dict[int, tuple[int, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        table[int(entry.name)] = (int(fields[1]), int(fields[21]) * PAGE_BYTES)
    return table


def tree_rss(root: int) -> int:
    """Summed RSS of `root` and all its descendants."""
    table = _process_table()
    children: dict[int, list[int]] = {}
    for pid, (parent, _rss) in table.items():
        children.setdefault(parent, []).append(pid)
    total, pending = 0, [root]
    while pending:
        pid = pending.pop()
        if pid in table:
            total += table[pid][1]
            pending.extend(children.get(pid, []))
    return total


def folder_bytes(folder: Path) -> int:
    """Bytes of the files under `folder` (0 when it does not exist); files may vanish meanwhile."""
    total = 0
    for root, _dirs, names in os.walk(folder):
        for name in names:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                continue
    return total


class RssSampler:
    """Samples the tree RSS of a process every SAMPLE_SECONDS in a thread: (epoch, bytes).

    With `spill_dir`, also the bytes DuckDB has spilled there, every SPILL_SAMPLE_SECONDS.
    """

    def __init__(self, pid: int, spill_dir: Path | None = None) -> None:
        self.pid = pid
        self.spill_dir = spill_dir
        self.samples: list[tuple[float, int]] = []
        self.peak_spill = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        next_spill = 0.0
        while not self._stop.is_set():
            now = time.time()
            self.samples.append((now, tree_rss(self.pid)))
            if self.spill_dir is not None and now >= next_spill:
                self.peak_spill = max(self.peak_spill, folder_bytes(self.spill_dir))
                next_spill = now + SPILL_SAMPLE_SECONDS
            self._stop.wait(SAMPLE_SECONDS)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Measured:
    """One subprocess: exit code, wall time, RSS samples, and where its output went."""

    name: str
    returncode: int
    started_at: float
    seconds: float
    samples: list[tuple[float, int]]
    stdout: Path
    stderr: Path
    peak_spill: int = 0

    @property
    def peak_rss(self) -> int:
        return max((rss for _t, rss in self.samples), default=0)

    def peak_between(self, start: float, end: float) -> int:
        """Highest sample in [start, end], widened by one interval so short stages get one."""
        inside = [
            rss
            for moment, rss in self.samples
            if start - SAMPLE_SECONDS <= moment <= end + SAMPLE_SECONDS
        ]
        return max(inside, default=0)

    def check(self) -> Measured:
        if self.returncode != 0:
            tail = "\n".join(self.stderr.read_text(errors="replace").splitlines()[-25:])
            raise BenchError(
                f"{self.name} exited {self.returncode} (log: {self.stderr})\n{tail}".rstrip()
            )
        return self


def run_measured(
    name: str,
    command: list[str],
    env: dict[str, str],
    logs: Path,
    spill_dir: Path | None = None,
) -> Measured:
    """Run a command to completion, output to files (never a pipe a stray child could hold)."""
    logs.mkdir(parents=True, exist_ok=True)
    slug = name.replace(" ", "-")
    stdout, stderr = logs / f"{slug}.out", logs / f"{slug}.err"
    console.print(f"{time.strftime('%H:%M:%S')} {name}: {' '.join(command[1:])}", soft_wrap=True)
    with open(stdout, "wb") as out_file, open(stderr, "wb") as err_file:
        started_at, started = time.time(), time.monotonic()
        process = subprocess.Popen(
            command, env=env, cwd=PROJECT_ROOT, stdout=out_file, stderr=err_file
        )
        with RssSampler(process.pid, spill_dir) as sampler:
            returncode = process.wait()
        seconds = time.monotonic() - started
    return Measured(
        name, returncode, started_at, seconds, sampler.samples, stdout, stderr, sampler.peak_spill
    )


# --- figures -------------------------------------------------------------------------------------


@dataclass
class Figure:
    """One line of the table: a stage, its wall seconds, rows handled and peak RSS."""

    name: str
    seconds: float | None
    rows: int | None = None
    peak_rss_bytes: int | None = None
    note: str = ""

    @property
    def rows_per_second(self) -> float | None:
        if not self.rows or not self.seconds:
            return None
        return self.rows / self.seconds

    def as_dict(self) -> dict:
        return {**asdict(self), "rows_per_second": self.rows_per_second}


@dataclass
class RunFigures:
    """A `lakehouse run` (or the baseline): total, its stages, and what it said about itself."""

    total: Figure
    stages: list[Figure]
    summary: dict = field(default_factory=dict)
    peak_spill_bytes: int = 0

    def as_dict(self) -> dict:
        return {
            "total": self.total.as_dict(),
            "stages": [f.as_dict() for f in self.stages],
            "peak_spill_bytes": self.peak_spill_bytes,
        }


def stage_figures(
    measured: Measured, stages: dict[str, dict[str, float]], rows: dict[str, int | None]
) -> list[Figure]:
    """Figures for each stage of a summary, then the time outside the stages."""
    figures = [
        Figure(
            name,
            stage["seconds"],
            rows.get(name),
            measured.peak_between(stage["started_at"], stage["started_at"] + stage["seconds"]),
        )
        for name, stage in stages.items()
    ]
    outside = measured.seconds - sum(stage["seconds"] for stage in stages.values())
    figures.append(Figure("outside stages", outside, note="startup, Prefect, shutdown"))
    return figures


def dbt_thread_figures(summary: dict) -> list[Figure]:
    """dbt execution seconds per resource type (thread time, summed over nodes)."""
    return [
        Figure(f"  dbt {kind.replace('_', ' ')}s", seconds, note="thread time")
        for kind, seconds in sorted(summary.get("dbt_timing", {}).items())
        if kind in ("model", "test", "unit_test", "seed", "snapshot")
    ]


# --- steps ---------------------------------------------------------------------------------------


def prepare_work_dir(work_dir: Path | None) -> Path:
    """The work folder, with the folders each bench rebuilds removed."""
    work = Path(work_dir or tempfile.mkdtemp(prefix="lakehouse-bench-pipeline-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    for name in FRESH_FOLDERS:
        shutil.rmtree(work / name, ignore_errors=True)
    return work


def private_dbt_project(target: Path) -> Path:
    """A copy of the dbt project, so that its target/ and logs/ are this bench's own."""
    target.mkdir(parents=True)
    for name in DBT_PROJECT_PARTS:
        source = PROJECT_ROOT / name
        if source.is_dir():
            shutil.copytree(
                source, target / name, ignore=shutil.ignore_patterns("*.py", "__pycache__")
            )
        elif source.exists():
            shutil.copy(source, target / name)
    return target


def bench_env(work: Path, memory_limit: str | None, target: str | None = None) -> dict[str, str]:
    """The caller's environment minus anything that points at another lake, plus ours.

    Engine knobs (DUCKDB_THREADS, DBT_THREADS, …), DBT_TARGET and PREFECT_API_URL pass through;
    `target` (`--target`) overrides DBT_TARGET.
    """
    dropped = ("LAKE", "S3_", "OBJECTSTORE", "PREFECT_HOME", "DBT_TARGET_PATH")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env.update(
        LAKE_DIR=str(work / "lake"),
        LAKEHOUSE_STATE_DIR=str(work / "state"),
        PREFECT_HOME=str(work / "state" / "prefect"),
        LAKEHOUSE_DBT_PROJECT_DIR=str(work / "dbt-project"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    if memory_limit:
        env["DUCKDB_MEMORY_LIMIT"] = memory_limit
    if target:
        env["DBT_TARGET"] = target
    return env


def data_lines(path: Path) -> int:
    """Lines after the header (the generator writes no blank line)."""
    lines = 0
    with open(path, "rb") as handle:
        while block := handle.read(16 * MB):
            lines += block.count(b"\n")
            last = block
    return max(lines - 1 + (0 if lines and last.endswith(b"\n") else 1), 0)


def csv_inventory(folder: Path) -> dict[str, dict[str, int]]:
    return {
        path.name: {"rows": data_lines(path), "bytes": path.stat().st_size}
        for path in sorted(folder.glob("*.csv"))
    }


def generate(
    name: str, folder: Path, clients: int, batches: int, seed: int, env: dict, logs: Path
) -> tuple[Measured, dict[str, dict[str, int]]]:
    command = [
        str(BIN / "lakehouse"),
        "generate",
        "--out",
        str(folder),
        "--clients",
        str(clients),
        "--batches",
        str(batches),
        "--dirty-rate",
        DIRTY_RATE,
        "--end-date",
        END_DATE,
        "--seed",
        str(seed),
    ]
    measured = run_measured(name, command, env, logs).check()
    return measured, csv_inventory(folder)


def shift_purchase_ids(source: Path, target: Path, offset: int) -> None:
    """Copy a purchases file with every valid purchase id moved up by `offset`.

    Invalid ids (not 1-18 digits, or 0) stay as they are, so every line keeps its SPEC §3 fate;
    ids with more than 15 digits are left alone too (they would outgrow 18 digits).
    """
    header, *body = source.read_bytes().split(b"\n")
    if not header.lstrip(b"\xef\xbb\xbf").startswith(b"id_purchase,"):
        raise BenchError(f"{source}: expected id_purchase as the first column")

    def shifted(line: bytes) -> bytes:
        head, comma, rest = line.partition(b",")
        if comma and head.isdigit() and len(head) <= 15 and int(head) >= 1:
            return b"%d,%s" % (int(head) + offset, rest)
        return line

    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"\n".join([header, *map(shifted, body)]))


def make_increment(
    work: Path, clients: int, env: dict, logs: Path
) -> tuple[Measured, Path, dict[str, dict[str, int]]]:
    """One new purchases file with about 1 % more purchases, for existing client ids."""
    manifest = json.loads((work / "sources" / "generation_manifest.json").read_text())
    generated = work / "increment-generated"
    measured, _ = generate(
        "generate increment", generated, max(1, clients // 100), 1, INCREMENT_SEED, env, logs
    )
    folder = work / "increment"
    for path in sorted(generated.glob("purchases_*.csv")):
        shift_purchase_ids(path, folder / f"increment_{path.name}", int(manifest["purchases"]))
    return measured, folder, csv_inventory(folder)


def csv_count_reference(folder: Path, repeat: int = 3) -> Figure:
    """The host's yardstick: DuckDB counting the records of the generated CSV files, the
    reference issue 7 gives for its machine ("about 1 second here" at 2M clients), measured in
    this invocation (median of `repeat`). Runs made at different hours, whose seconds differ by
    up to 2 × on the same machine type, compare as multiples of it. Refused lines count too
    (all text, short lines padded, errors ignored): the count is the lines the run lands."""
    import duckdb

    query = (
        "select count(*) from read_csv(?, all_varchar = true, null_padding = true, "
        "ignore_errors = true)"
    )
    # One glob per entity (their columns differ), passed as a parameter: any folder name works.
    globs = [
        str(folder / pattern)
        for pattern in ("clients_*.csv", "purchases_*.csv")
        if any(folder.glob(pattern))
    ]
    seconds, rows = [], 0
    with duckdb.connect() as conn:
        for _ in range(repeat):
            started = time.perf_counter()
            rows = sum(conn.execute(query, [files]).fetchone()[0] for files in globs)
            seconds.append(time.perf_counter() - started)
    return Figure(
        "DuckDB count of the CSV records",
        statistics.median(seconds),
        rows,
        note=f"median of {repeat}: the host's yardstick",
    )


def prefect_setup(env: dict, logs: Path) -> Figure:
    """Create (or upgrade) the Prefect database of the work folder before the timed runs."""
    if env.get("PREFECT_API_URL"):
        return Figure("prefect database setup", None, note="skipped: PREFECT_API_URL is set")
    Path(env["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    command = [str(BIN / "prefect"), "server", "database", "upgrade", "--yes"]
    measured = run_measured("prefect setup", command, env, logs).check()
    return Figure(
        "prefect database setup",
        measured.seconds,
        peak_rss_bytes=measured.peak_rss,
        note="one-time, not part of a run",
    )


def parse_summary(measured: Measured) -> dict:
    """The JSON document `lakehouse run --json` printed (rich may indent it)."""
    text = measured.stdout.read_text(errors="replace")
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise BenchError(f"{measured.name}: no JSON summary in {measured.stdout}")
    return json.loads(text[start : end + 1])


def lakehouse_run(name: str, sources: Path, env: dict, logs: Path, lake_rows: int) -> RunFigures:
    """One timed `lakehouse run`; `lake_rows` = bronze rows in the lake once it has ingested."""
    command = [
        str(BIN / "lakehouse"),
        "run",
        "--sources",
        str(sources),
        "--as-of",
        END_DATE,
        "--json",
    ]
    spill_dir = Path(env["LAKEHOUSE_STATE_DIR"]) / SPILL_FOLDER
    measured = run_measured(name, command, env, logs, spill_dir).check()
    summary = parse_summary(measured)
    landed = sum(item["rows"] for item in summary["ingest"]["landed"])
    exported = summary.get("export", {})
    rows = {
        "ingest": landed,
        "dbt build": lake_rows,
        "export": sum({**exported.get("gold", {}), **exported.get("silver", {})}.values()),
    }
    stages = stage_figures(measured, summary["stages"], rows)
    at = next((i for i, f in enumerate(stages) if f.name == "dbt build"), len(stages) - 1)
    stages[at + 1 : at + 1] = dbt_thread_figures(summary)
    total = Figure(f"{name} total", measured.seconds, landed, measured.peak_rss)
    return RunFigures(total, stages, summary, measured.peak_spill)


def disk_usage(work: Path) -> dict[str, int]:
    """Bytes on disk after a run: the generated CSV files, each folder of the lake."""
    lake = work / "lake"
    usage = {"sources (generated CSV)": folder_bytes(work / "sources")}
    if lake.is_dir():
        usage.update({f"lake/{item.name}": folder_bytes(item) for item in sorted(lake.iterdir())})
    return usage


def run_baseline(sources: Path, work: Path, env: dict, logs: Path, bronze: int) -> RunFigures:
    """The pandas baseline in its own process, timed and sampled like a run."""
    document = work / "baseline.json"
    command = [
        sys.executable,
        "-m",
        "orchestration.baseline",
        "--sources",
        str(sources),
        "--out",
        str(work / "baseline"),
        "--as-of",
        END_DATE,
        "--json",
        str(document),
    ]
    measured = run_measured("pandas baseline", command, env, logs).check()
    result = json.loads(document.read_text())
    rows = {
        "read": bronze,
        "silver": bronze,
        "gold": result["gold_rows"].get("fct_sales"),
        "write": result["rows_written"],
    }
    stages = stage_figures(measured, result["stages"], rows)
    stages[-1].note = "interpreter start, imports"
    total = Figure("baseline total", measured.seconds, bronze, measured.peak_rss)
    return RunFigures(total, stages, result)


# --- comparing the baseline with the pipeline ----------------------------------------------------


def _silver_model(exported: dict[str, int], entity: str) -> int | None:
    """Rows of the exported silver model of an entity (`stg_<source>__<entity>`)."""
    for model, rows in exported.items():
        if model.startswith("stg_") and model.endswith(f"__{entity}"):
            return rows
    return None


def pipeline_quality(summary: dict, lake: Path) -> dict:
    """The quality report: in the run summary when the flow puts it there, else the export's."""
    if "entities" in summary.get("quality", {}):
        return summary["quality"]
    folder = summary.get("export", {}).get("run_folder")
    report = lake / "gold" / str(folder) / "quality_report.json"
    return json.loads(report.read_text()) if folder and report.exists() else {}


def pipeline_gold_checks(summary: dict, lake: Path) -> dict:
    """The figures of `baseline.gold_checks`, read from the run's exported Parquet files."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    folder = lake / "gold" / summary["export"]["run_folder"]

    def cents(value: object) -> int:
        return int(Decimal(str(value)) * 100) if value is not None else 0

    checks: dict[str, object] = {}
    if (folder / "fct_sales.parquet").exists():
        total = pq.read_table(folder / "fct_sales.parquet", columns=["total"])["total"]
        checks["revenue_cents"] = cents(pc.sum(total).as_py())
    if (folder / "rpt_country_analytics.parquet").exists():
        table = pq.read_table(
            folder / "rpt_country_analytics.parquet", columns=["country", "total_revenue"]
        ).to_pydict()
        checks["revenue_cents_by_country"] = {
            country: cents(revenue)
            for country, revenue in zip(table["country"], table["total_revenue"], strict=True)
        }
    if (folder / "rpt_client_kpis.parquet").exists():
        segments = pq.read_table(folder / "rpt_client_kpis.parquet", columns=["rfm_segment"])
        counts = pc.value_counts(segments["rfm_segment"]).to_pylist()
        checks["rfm_segments"] = {item["values"]: item["counts"] for item in counts}
    return checks


def compare(summary: dict, lake: Path, baseline: dict) -> dict:
    """Silver rows, quarantine by reason and gold figures: pipeline vs baseline."""
    exported = summary.get("export", {}).get("silver", {})
    quality = pipeline_quality(summary, lake).get("entities", {})
    silver, quarantine = {}, {}
    for entity in ("clients", "purchases"):
        ours, theirs = _silver_model(exported, entity), baseline["silver_rows"][entity]
        silver[entity] = {
            "pipeline": ours,
            "baseline": theirs,
            "difference": None if ours is None else theirs - ours,
        }
        pipeline_reasons = {
            k: v for k, v in quality.get(entity, {}).get("quarantine", {}).items() if v
        }
        quarantine[entity] = {
            "pipeline": pipeline_reasons,
            "baseline": baseline["quarantine"][entity],
            "equal": pipeline_reasons == baseline["quarantine"][entity],
        }
    ours_gold = pipeline_gold_checks(summary, lake)
    gold = {
        name: {
            "pipeline": ours_gold.get(name),
            "baseline": value,
            "equal": ours_gold.get(name) == value,
        }
        for name, value in baseline["checks"].items()
    }
    equal = (
        all(item["difference"] == 0 for item in silver.values())
        and all(item["equal"] for item in quarantine.values())
        and all(item["equal"] for item in gold.values())
    )
    return {"silver_rows": silver, "quarantine": quarantine, "gold": gold, "all_equal": equal}


# --- machine and report --------------------------------------------------------------------------


def _memory_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True
        )
    except OSError:
        return None
    return result.stdout.strip() or None


def machine_info(env: dict[str, str]) -> dict:
    """What the figures depend on: cores, memory, engine limits, versions, load."""
    settings = Settings()  # the defaults and .env the runs start from
    # What the runs' dbt reads for its profile: the environment, then .env (dbt_runner).
    env_file = Path(settings.model_config["env_file"])
    profile_env = {**(dotenv_values(env_file) if env_file.is_file() else {}), **env}
    versions = {}
    packages = ("duckdb", "dbt-core", "dbt-duckdb", "dbt-spark", "pyspark", "prefect", "pandas")
    for package in (*packages, "pyarrow"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "memory_bytes": _memory_bytes(),
        "load_average_at_start": os.getloadavg(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "dbt_target": env.get("DBT_TARGET") or settings.dbt_target,
        "spark_driver_memory": profile_env.get("SPARK_DRIVER_MEMORY") or "2g",
        "duckdb_memory_limit": env.get("DUCKDB_MEMORY_LIMIT") or settings.duckdb_memory_limit,
        "duckdb_threads": env.get("DUCKDB_THREADS") or settings.duckdb_threads,
        "dbt_threads": int(profile_env.get("DBT_THREADS") or 2),
        "data_test_scope": env.get("DATA_TEST_SCOPE") or settings.data_test_scope,
        "prefect_api": "server (PREFECT_API_URL)" if env.get("PREFECT_API_URL") else "temporary",
        "versions": versions,
        "git_commit": _git_commit(),
    }


def _cell(value: float | None, pattern: str) -> str:
    return "" if value is None else format(value, pattern)


def print_table(sections: list[tuple[str, list[Figure]]]) -> None:
    table = Table(title="lakehouse bench pipeline", show_lines=False)
    table.add_column("stage")
    table.add_column("wall s", justify="right")
    table.add_column("rows", justify="right")
    table.add_column("rows/s", justify="right")
    table.add_column("peak RSS MiB", justify="right")
    table.add_column("note", style="dim")
    for title, figures in sections:
        table.add_row(f"[bold]{title}[/]")
        for figure in figures:
            table.add_row(
                figure.name,
                _cell(figure.seconds, ".1f"),
                _cell(figure.rows, ",d"),
                _cell(figure.rows_per_second, ",.0f"),
                _cell(figure.peak_rss_bytes and figure.peak_rss_bytes / MB, ",.0f"),
                figure.note,
            )
        table.add_section()
    out.print(table)


def print_verdicts(report: dict) -> None:
    full = report["full_run"]["total"]
    out.print(
        f"full run: {full['seconds']:.1f} s, peak RSS {full['peak_rss_bytes'] / MB:,.0f} MiB "
        f"= {full['peak_rss_bytes'] / 10**9:.2f} GB (targets at 10M purchases: "
        f"≤ {TARGETS['full_run_seconds']} s; "
        f"< {TARGETS['peak_rss_bytes_with_memory_limit_3GB'] / 10**9:.0f} GB with memory_limit 3GB)"
    )
    reference = report.get("host_reference")
    if reference:
        out.print(
            f"  = {reference['full_run_multiple']:.0f} × the DuckDB count of the CSV records "
            f"({reference['seconds']:.2f} s here; issue 7 gives about 1 s at 2M clients on its "
            "machine, where the 60 s target is 60 × it)"
        )
    disk = report["full_run"]["disk_bytes"]
    out.print(
        f"disk after the full run: {sum(disk.values()) / GB:,.1f} GiB ("
        + ", ".join(f"{name} {size / GB:,.1f}" for name, size in disk.items())
        + f"); DuckDB spilled at most {report['full_run']['peak_spill_bytes'] / GB:,.1f} GiB"
    )
    if "incremental_run" in report:
        incremental = report["incremental_run"]
        out.print(
            f"incremental run: {incremental['total']['seconds']:.1f} s = "
            f"{incremental['percent_of_full']:.0f} % of the full run "
            f"(target ≤ {TARGETS['incremental_percent_of_full']} %)"
        )
    baseline = report.get("baseline")
    if not baseline:
        return
    ratio = baseline["ratio_to_full_run"]
    out.print(
        f"pandas baseline: {baseline['total']['seconds']:.1f} s; baseline ÷ full run = "
        f"{ratio:.2f} (the run takes {1 / ratio:.1f} × the baseline's time)"
    )
    checks = baseline["comparison"]
    for entity, counts in checks["silver_rows"].items():
        out.print(
            f"  silver {entity}: pipeline {counts['pipeline']:,}, baseline {counts['baseline']:,} "
            f"(difference {counts['difference']})"
            + ("" if checks["quarantine"][entity]["equal"] else "; quarantine reasons differ")
        )
    differing = [name for name, item in checks["gold"].items() if not item["equal"]]
    out.print(
        "  gold checks (revenue, revenue by country, RFM segments): "
        + ("equal" if not differing else f"differ: {', '.join(differing)}")
    )


# --- the command ---------------------------------------------------------------------------------


def run_pipeline_bench(
    clients: int,
    batches: int = 1,
    baseline: bool = True,
    incremental: bool = True,
    work_dir: Path | None = None,
    memory_limit: str | None = None,
    json_out: Path | None = None,
    target: str | None = None,
) -> dict:
    """`lakehouse bench pipeline`: print the table, write the JSON, return the report."""
    try:
        return _bench(
            clients, batches, baseline, incremental, work_dir, memory_limit, json_out, target
        )
    except BenchError as exc:
        console.print(f"error: {exc}", style="bold red", markup=False, soft_wrap=True)
        raise SystemExit(1) from None


def _bench(
    clients: int,
    batches: int,
    baseline: bool,
    incremental: bool,
    work_dir: Path | None,
    memory_limit: str | None,
    json_out: Path | None,
    target: str | None = None,
) -> dict:
    work = prepare_work_dir(work_dir)
    logs = work / "logs"
    console.print(f"work folder: {work}")
    env = bench_env(work, memory_limit, target)
    if env.get("DBT_TARGET") == "spark_cluster":
        raise BenchError(
            "the pipeline bench builds a local lake (LAKE_DIR): use --target lake or spark, "
            "not spark_cluster"
        )
    private_dbt_project(work / "dbt-project")
    machine = machine_info(env)

    generated, files = generate("generate", work / "sources", clients, batches, SEED, env, logs)
    bronze = sum(item["rows"] for item in files.values())
    generate_figure = Figure("generate", generated.seconds, bronze, generated.peak_rss)
    reference = csv_count_reference(work / "sources")
    setup = prefect_setup(env, logs)
    full = lakehouse_run("full run", work / "sources", env, logs, bronze)

    report: dict = {
        "scale": {
            "clients": clients,
            "batches": batches,
            "dirty_rate": float(DIRTY_RATE),
            "end_date": END_DATE,
            "seed": SEED,
            "bronze_rows": bronze,
        },
        "machine": machine,
        "targets": TARGETS,
        "work_dir": str(work),
        "generate": {**generate_figure.as_dict(), "files": files},
        "host_reference": {
            **reference.as_dict(),
            "full_run_multiple": full.total.seconds / reference.seconds,
        },
        "prefect_setup": setup.as_dict(),
        "full_run": {
            **full.as_dict(),
            "dbt": full.summary.get("dbt", {}),
            "silver": full.summary.get("silver"),
            "disk_bytes": disk_usage(work),
        },
    }
    sections = [
        ("data", [generate_figure, reference, setup]),
        ("full run (lakehouse run)", [*full.stages, full.total]),
    ]
    if incremental:
        increment_generated, increment, increment_files = make_increment(work, clients, env, logs)
        added = sum(item["rows"] for item in increment_files.values())
        run = lakehouse_run("incremental run", increment, env, logs, bronze + added)
        report["scale"]["increment_rows"] = added
        report["incremental_run"] = {
            **run.as_dict(),
            "percent_of_full": 100 * run.total.seconds / full.total.seconds,
            "increment_generate_seconds": increment_generated.seconds,
            "files": increment_files,
            "dbt": run.summary.get("dbt", {}),
            "silver": run.summary.get("silver"),
        }
        sections.append(("incremental run (+1 % purchases)", [*run.stages, run.total]))
    if baseline:
        base = run_baseline(work / "sources", work, env, logs, bronze)
        report["baseline"] = {
            **base.as_dict(),
            "ratio_to_full_run": base.total.seconds / full.total.seconds,
            "comparison": compare(full.summary, work / "lake", base.summary),
        }
        sections.append(("pandas baseline (same files)", [*base.stages, base.total]))
    report["machine"]["load_average_at_end"] = os.getloadavg()

    print_table(sections)
    print_verdicts(report)
    target = Path(json_out or work / "bench_pipeline.json")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    out.print(f"figures written to {target}")
    return report
