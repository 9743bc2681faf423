"""Ctrl+C during `lakehouse run`: the run stops at once, says so (without dbt's traceback),
publishes nothing and leaves no server behind (the temporary Prefect API included), and no dbt
node starts after it. SIGUSR1 before it prints the stacks of a run that seems stuck and does not
stop it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import BIN, DBT_PATHS, ROOT, clean_env

pytestmark = pytest.mark.e2e


def processes_with(marker: str) -> list[int]:
    """Live processes whose environment holds `marker` (this test's own state folder)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker.encode() in environ.read_bytes():
                state = (environ.parent / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    found.append(int(environ.parent.name))
        except OSError:
            continue
    return found


def _interrupted_run(tmp_path, sources, *options: str, during_unit_test: bool) -> dict:
    """`lakehouse run OPTIONS` interrupted by Ctrl+C once its dbt build opened the warehouse
    (and, with `during_unit_test`, once dbt started a unit test); what it did after that."""
    lake, state = tmp_path / "lake", tmp_path / "state-interrupt"
    # No PREFECT_API_URL: the run boots its temporary API server, the case a terminal user has.
    env = clean_env(LAKE_DIR=str(lake), LAKEHOUSE_STATE_DIR=str(state))
    env.pop("PREFECT_API_URL", None)
    log = tmp_path / "run.log"
    dbt_log = ROOT / DBT_PATHS["DBT_LOG_PATH"] / "dbt.log"
    logged_before = len(dbt_log.read_text()) if dbt_log.exists() else 0
    with open(log, "wb") as output:
        run = subprocess.Popen(
            [str(BIN / "lakehouse"), "run", "--sources", str(sources), *options],
            env=env,
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group, as a terminal's foreground job
        )
    try:
        deadline = time.monotonic() + 240
        warehouse = lake / "warehouse" / "lakehouse.duckdb"
        while not warehouse.exists() and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)  # the dbt build opens the warehouse
        assert warehouse.exists(), log.read_text()
        os.kill(run.pid, signal.SIGUSR1)  # a stuck run's diagnosis: stacks on stderr, no stop
        if during_unit_test:
            # Ctrl+C while a worker runs a model's unit tests, which dbt runs with the model in
            # one call: neither its next unit test nor the model may start after it.
            while "START unit_test" not in dbt_log.read_text()[logged_before:]:
                assert run.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
        else:
            time.sleep(1.0)
        os.killpg(run.pid, signal.SIGINT)  # what Ctrl+C sends: the whole foreground group
        interrupted_at = time.monotonic()
        logged_before_interrupt = len(dbt_log.read_text()) if dbt_log.exists() else 0
        try:
            code = run.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.kill(run.pid, signal.SIGUSR1)  # every thread's stack, into the log
            time.sleep(2)
            pytest.fail(f"still running 120 s after Ctrl+C:\n{log.read_text()}")
        seconds = time.monotonic() - interrupted_at
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    print(f"stopped {seconds:.1f} s after Ctrl+C")
    deadline = time.monotonic() + 10
    while processes_with(str(state)) and time.monotonic() < deadline:
        time.sleep(0.2)
    logged_after = dbt_log.read_text()[logged_before_interrupt:] if dbt_log.exists() else ""
    return {
        "code": code,
        "output": log.read_text(),
        "published": (lake / "gold" / "latest.json").exists(),
        "started_after": [line for line in logged_after.splitlines() if " START " in line],
        "left_running": processes_with(str(state)),
    }


def test_ctrl_c_in_the_dbt_build_stops_the_run_and_its_servers(tmp_path, clean_sources):
    run = _interrupted_run(tmp_path, clean_sources, during_unit_test=True)
    text = run["output"]
    assert run["code"] == 130, text
    assert "MainThread" in text and "most recent call first" in text, text  # SIGUSR1's stacks
    assert "interrupted: nothing was published" in text, text
    # dbt's own report of the stop ("Encountered an error:" and a KeyboardInterrupt traceback)
    # stays in dbt.log, off the console.
    assert "Encountered an error" not in text and "Traceback" not in text, text
    assert run["started_after"] == [], "dbt nodes started after Ctrl+C"
    assert not run["published"]
    assert run["left_running"] == [], "a process of the run outlived it"


def test_ctrl_c_with_one_prefect_task_per_dbt_node_is_an_interruption_too(tmp_path, clean_sources):
    """prefect-dbt turns the interrupt dbt caught into a ValueError; the run still ends as
    interrupted (exit code 130), not as failed (1)."""
    run = _interrupted_run(tmp_path, clean_sources, "--dbt-tasks", "node", during_unit_test=False)
    assert run["code"] == 130, run["output"]
    assert "interrupted: nothing was published" in run["output"], run["output"]
    assert "Encountered an error" not in run["output"], run["output"]  # not logged to Prefect
    assert not run["published"]
    assert run["left_running"] == [], "a process of the run outlived it"
