"""The temporary Prefect API a command starts when PREFECT_API_URL is not set."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from orchestration.prefect_api import LocalApi, PrefectApiError
from tests.conftest import ROOT, clean_env

# What `lakehouse run` does before its flow: set up Prefect's environment, import the flow,
# talk to the API. Prefect would import its server package (and start a server of its own) if
# it did not use the URL the command gave it.
COMMAND = """
import json, os, sys
from orchestration.cli import _prefect_environment
prefect_ready = _prefect_environment()
import orchestration.flow
prefect_ready()
from prefect.client.orchestration import get_client
with get_client(sync_client=True) as client:
    healthy = client.api_healthcheck() is None
print(json.dumps({
    "api_url": os.environ["PREFECT_API_URL"],
    "healthy": healthy,
    "server_modules": sorted(m for m in sys.modules if m.startswith("prefect.server")),
}))
"""


def _children_serving_prefect() -> list[int]:
    me = str(os.getpid())
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if fields[1] == me and fields[0] != "Z" and b"prefect.server.api.server" in command:
            found.append(int(stat.parent.name))
    return found


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_command_uses_its_own_server_and_stops_it(tmp_path):
    env = clean_env(PREFECT_HOME=str(tmp_path / "prefect"), LAKEHOUSE_STATE_DIR=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-c", COMMAND], env=env, cwd=ROOT, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["api_url"].startswith("http://127.0.0.1:")
    assert report["healthy"]
    assert report["server_modules"] == []  # the server package stayed out of this process
    port = int(report["api_url"].rsplit(":", 1)[1].split("/")[0])
    assert not _port_open(port)  # stopped when the command exited


def test_a_server_that_does_not_answer_in_time_is_stopped_and_named(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    with pytest.raises(PrefectApiError, match="PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"):
        LocalApi(timeout=0.05).wait()
    assert _children_serving_prefect() == []


# What a command's exit does with the children it leaves (cli._stop_children): the sleeper is
# stopped, the multiprocessing resource tracker (which ignores SIGTERM and ends with its parent)
# is not waited for, and the exit pauses only to look again after stopping a child.
EXIT_COMMAND = """
import json, subprocess, sys, time
from multiprocessing import resource_tracker
from orchestration import cli
pauses, sleep = [], time.sleep


def stop_children():  # counting its pauses (Popen.wait below pauses too: not counted)
    time.sleep = pauses.append
    try:
        cli._stop_children()
    finally:
        time.sleep = sleep


resource_tracker.ensure_running()
stop_children()
alone = len(pauses)
sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
stop_children()
returncode = sleeper.wait(timeout=30)
print(json.dumps({"pauses_alone": alone, "pauses": len(pauses) - alone, "code": returncode}))
"""


def test_exit_stops_a_leftover_child_and_pauses_only_after_stopping_one(tmp_path):
    env = clean_env(LAKEHOUSE_STATE_DIR=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-c", EXIT_COMMAND], env=env, cwd=ROOT, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome == {"pauses_alone": 0, "pauses": 1, "code": -15}


def test_a_run_on_the_temporary_api_sends_no_heartbeats():
    """Heartbeats tell a watching server that a run is alive; the temporary API ends with the
    run, and stopping Prefect's heartbeat thread held every run's end for up to a second."""
    from prefect import flow
    from prefect.flow_engine import FlowRunEngine

    from orchestration.cli import _flow_settings

    engine = FlowRunEngine(flow=flow(lambda: None, name="noop"))
    with _flow_settings(temporary_api=True):
        assert engine.heartbeat_seconds is None
    with _flow_settings(temporary_api=False):
        assert engine.heartbeat_seconds is not None  # a server that outlives the run: kept
    assert engine.heartbeat_seconds is not None
