"""Prefect's temporary local API for one command, when no PREFECT_API_URL is given.

Prefect starts this server itself (its "ephemeral" mode), but to do so the run process imports
the whole server package — FastAPI, SQLAlchemy, asyncpg, ~80 MiB — only to launch it in a
subprocess, and keeps it resident through the run. Starting the same server from here, with the
same command and environment Prefect uses, and handing Prefect its address keeps that memory
out of the process that runs dbt (it counts against the 3 GB run of issue 7).
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

# uvicorn exits with 3 when its port was taken between our probe and its bind.
PORT_TAKEN = 3


class PrefectApiError(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_command(port: int) -> list[str]:
    """What Prefect's SubprocessASGIServer runs (prefect/server/api/server.py)."""
    site_packages = Path(importlib.util.find_spec("prefect").origin).parent.parent
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        str(site_packages),
        "--factory",
        "prefect.server.api.server:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "error",
        "--lifespan",
        "on",
    ]


def _healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def start_local_api(timeout: float) -> str:
    """Start Prefect's API server on a free loopback port; returns its API URL once it answers.

    The server stops when the process exits (atexit); its state lives in PREFECT_HOME, as the
    ephemeral server's does.
    """
    environment = {
        **os.environ,
        "PREFECT_UI_ENABLED": "0",
        "PREFECT__SERVER_EPHEMERAL": "1",
        "PREFECT__SERVER_FINAL": "1",
    }
    deadline = time.monotonic() + timeout
    while True:
        port = _free_port()
        api_url = f"http://127.0.0.1:{port}/api"
        process = subprocess.Popen(_server_command(port), env=environment)
        while process.poll() is None and time.monotonic() < deadline:
            if _healthy(api_url):
                atexit.register(_stop, process)
                return api_url
            time.sleep(0.1)
        code = process.poll()
        if code == PORT_TAKEN and time.monotonic() < deadline:
            continue  # taken between our probe and uvicorn's bind: another port
        _stop(process)
        raise PrefectApiError(
            "Prefect's local API server did not start ("
            + (f"no answer within {timeout:.0f} s" if code is None else f"exit code {code}")
            + "; its errors are above): raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, "
            "or run a Prefect server and set PREFECT_API_URL."
        )
