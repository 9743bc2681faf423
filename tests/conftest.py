"""Shared fixtures: data sets are generated once per session, servers take free ports."""

from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# `make test` runs the suite on two pytest-xdist workers (gw0, gw1). Each keeps its own dbt
# artifacts and logs, relative to the dbt project as dbt resolves them (a scratch copy of the
# project keeps its own too): two builds at once never share a manifest or partial-parse file.
# They start empty, as on a fresh clone (nothing a run must write can come from an earlier one),
# and a developer's own target/ is never touched.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
DBT_PATHS = {
    "DBT_TARGET_PATH": f"target/pytest-{WORKER or 'main'}",
    "DBT_LOG_PATH": f"logs/pytest-{WORKER or 'main'}",
}
for _folder in DBT_PATHS.values():
    shutil.rmtree(ROOT / _folder, ignore_errors=True)
BIN = Path(sys.executable).parent
END_DATE = "2025-06-30"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(**overrides: str) -> dict[str, str]:
    """The environment for a CLI subprocess: no lake settings leak in from the caller."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LAKE", "S3_", "OBJECTSTORE", "PREFECT_", "DBT_", "DUCKDB_"))
    }
    env.update(DBT_PATHS)
    env.update(overrides)
    return env


def flow_build_env(**overrides: str) -> dict[str, str]:
    """clean_env for `dbt build` commands that stand for the builds of `lakehouse run`: with the
    project's fingerprint the flow passes (orchestration/incremental.py, CODE_VARIABLE), so that
    the next run may leave out the models they built (a build by hand records no code)."""
    from orchestration.incremental import CODE_VARIABLE
    from orchestration.unit_tests import project_fingerprint

    return clean_env(**{CODE_VARIABLE: project_fingerprint(ROOT, "lake")}, **overrides)


def run_env(lake: Path, state_dir: Path, prefect_api: str, **overrides: str) -> dict[str, str]:
    """The environment of a `lakehouse run` on a LAKE_DIR lake, with the session's state folder
    and Prefect API."""
    return clean_env(
        LAKE_DIR=str(lake),
        LAKEHOUSE_STATE_DIR=str(state_dir),
        PREFECT_HOME=str(state_dir / "prefect"),
        PREFECT_API_URL=prefect_api,
        **overrides,
    )


def generated_sources(tmp_path_factory, name: str, *options: str) -> Path:
    """`lakehouse generate --out <a new temp folder> OPTIONS…`; returns the folder."""
    folder = tmp_path_factory.mktemp(name)
    env = clean_env(LAKE_DIR=str(tmp_path_factory.mktemp("unused-lake")))
    lakehouse("generate", "--out", str(folder), *options, env=env)
    return folder


def lakehouse(*args: str, env: dict[str, str], check: bool = True, timeout: int = 600):
    """Run the `lakehouse` CLI as a user would."""
    # Output goes through files, not pipes: a server process left behind by a failure must not
    # keep the test waiting for the end of a pipe.
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        completed = subprocess.run(
            [str(BIN / "lakehouse"), *args],
            env=env,
            cwd=ROOT,
            stdout=stdout,
            stderr=stderr,
            text=True,
            timeout=timeout,
        )
        stdout.seek(0)
        stderr.seek(0)
        result = subprocess.CompletedProcess(
            completed.args, completed.returncode, stdout.read(), stderr.read()
        )
    if check and result.returncode != 0:
        raise AssertionError(
            f"lakehouse {' '.join(args)} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-8000:]}"
        )
    return result


@dataclass
class Truth:
    """Totals computed in plain Python from the generated CSV files (no SQL involved)."""

    revenue: Decimal
    orders: int
    clients: int
    purchasing_clients: int


def plain_python_truth(folder: Path) -> Truth:
    revenue = Decimal("0")
    orders = 0
    clients: set[str] = set()
    purchasers: set[str] = set()
    for path in sorted(folder.glob("clients_*.csv")):
        with open(path, newline="", encoding="utf-8") as handle:
            clients.update(row["id_client"] for row in csv.DictReader(handle))
    for path in sorted(folder.glob("purchases_*.csv")):
        with open(path, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                revenue += Decimal(row["total"])
                orders += 1
                purchasers.add(row["id_client"])
    return Truth(revenue, orders, len(clients), len(purchasers))


# Under pytest-xdist a work unit is a test file, so its module fixtures are built once, except
# that the files reading the session's LAKE_DIR run (`lake_dir_run` below) form one unit: the run
# is built once. (`--dist loadgroup` with marks would say the same, but pytest-xdist 3.8 loses
# the groups on pytest 9.2: pytest-dev/pytest-xdist#1386.) The units known to be long start first.
ON_THE_SHARED_RUN = frozenset(
    path.name for path in ROOT.glob("tests/test_*.py") if "lake_dir_run" in path.read_text()
)
SLOW_FIRST = (
    "test_spark_parity",  # a full build on Spark, ~220 s of set-up in a serial run
    "lake_dir_run",  # the shared run, and the dashboard, browser and end-to-end tests on it
    "test_serve",  # a served deployment and its scheduled run, ~140 s
    "test_incremental",
    "test_faults",
    "test_code_change",
)


def work_unit(nodeid: str) -> str:
    file = nodeid.partition("::")[0].rpartition("/")[2]
    return "lake_dir_run" if file in ON_THE_SHARED_RUN else file.removesuffix(".py")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class ByWorkUnit(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return ByWorkUnit(config, log)


def pytest_collection_modifyitems(config, items):
    if WORKER:  # the scheduler hands the units out in the workers' collection order
        rank = {name: position for position, name in enumerate(SLOW_FIRST)}
        items.sort(key=lambda item: rank.get(work_unit(item.nodeid), len(rank)))


@pytest.fixture(scope="session")
def clean_sources(tmp_path_factory) -> Path:
    """A small clean data set (one batch), generated once."""
    return generated_sources(
        tmp_path_factory, "clean-sources", *("--clients", "300", "--seed", "11"),
        *("--end-date", END_DATE),
    )  # fmt: skip


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory) -> Path:
    """One state folder (Prefect home, credentials) shared by the session's runs."""
    return tmp_path_factory.mktemp("state")


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory):
    """One Prefect server for the session's runs (each run would otherwise start its own
    ephemeral API, ~20 s each); the runs are then visible in one place, as with `serve`."""
    import time
    import urllib.request

    home = tmp_path_factory.mktemp("prefect-server")
    port = free_port()
    env = clean_env(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="false",
    )
    log = open(home / "server.log", "wb")  # noqa: SIM115 - kept open for the server's life
    process = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"prefect server did not start: {(home / 'server.log').read_text()}")
        time.sleep(1)
    try:
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory, state_dir):
    """A real SeaweedFS started on free ports for the session, stopped at the end."""
    store_state = tmp_path_factory.mktemp("seaweed-state")
    env = clean_env(
        LAKEHOUSE_STATE_DIR=str(store_state),
        OBJECTSTORE_PORT=str(free_port()),
        PREFECT_HOME=str(state_dir / "prefect"),
    )
    lakehouse("objectstore", "start", env=env, timeout=120)
    try:
        yield env
    finally:
        lakehouse("objectstore", "stop", env=env, check=False, timeout=60)


def read_latest(gold_root: Path) -> dict:
    return json.loads((gold_root / "latest.json").read_text())


def build_selection(env: dict[str, str], as_of: str, code_changed: bool = False) -> list:
    """What a `lakehouse run` in `env` would build (orchestration.incremental.build_selection,
    run in a subprocess with that environment): [dbt args, silver line, models in full, data
    tests' scope]."""
    code = (
        "import json; from orchestration.incremental import build_selection; "
        f"print(json.dumps(build_selection({as_of!r}, code_changed={code_changed})))"
    )
    out = subprocess.run(
        [str(BIN / "python"), "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
        check=True,
    ).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def published_models(
    lake: Path, latest: dict, ignored: frozenset[str] = frozenset({"run_id"})
) -> dict[str, list[tuple]]:
    """Every model of a published run (gold and silver): its rows sorted, without the
    `ignored` columns (run ids, and what else differs between two equal runs)."""
    import duckdb

    conn = duckdb.connect()
    content = {}
    for layer, models in (("gold", latest["models"]), ("silver", latest["silver_models"])):
        for model in models:
            path = lake / layer / latest["run_folder"] / f"{model}.parquet"
            columns = [
                name
                for (name,) in conn.execute(
                    f"select name from parquet_schema('{path}') where name != 'duckdb_schema'"
                ).fetchall()
                if name not in ignored
            ]
            select = ", ".join(f'"{c}"' for c in columns)
            content[f"{layer}/{model}"] = conn.execute(
                f"select {select} from read_parquet('{path}') order by all"
            ).fetchall()
    return content


def copy_dbt_project(target: Path) -> Path:
    """A scratch copy of the dbt project (for tests that must break a model)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in ("dbt_project.yml", "models", "macros", "seeds", "snapshots", "tests"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(
                source, target / name, ignore=shutil.ignore_patterns("*.py", "__pycache__")
            )
        elif source.exists():
            shutil.copy(source, target / name)
    return target


@pytest.fixture(scope="session")
def lake_dir_run(tmp_path_factory, state_dir, clean_sources, prefect_api):
    """One run under LAKE_DIR (no object store); the lake is reused by later tests."""
    lake = tmp_path_factory.mktemp("lake") / "does-not-exist-yet"
    env = run_env(lake, state_dir, prefect_api)
    result = lakehouse("run", "--sources", str(clean_sources), "--as-of", END_DATE, env=env)
    return lake, env, result
