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
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from orchestration.ports import free_port

# uvicorn exits with 3 when its port was taken between our probe and its bind.
PORT_TAKEN = 3


class PrefectApiError(RuntimeError):
    pass


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


def healthy(api_url: str) -> bool:
    """Whether a Prefect API answers its health check."""
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


class LocalApi:
    """Prefect's API server on a free loopback port, booting in the background (~3.5 s, mostly
    imports) while the command imports its own modules; `wait()` blocks until it answers.

    Its URL is known at once, so PREFECT_API_URL can be set before Prefect is imported (Prefect
    reads its settings at import). The server stops when the process exits (atexit); its state
    lives in PREFECT_HOME, as the ephemeral server's does.
    """

    def __init__(self, timeout: float):
        self.timeout = timeout
        self._deadline = time.monotonic() + timeout
        port = free_port()
        self.api_url = f"http://127.0.0.1:{port}/api"
        environment = {
            # Registering block types at start-up first loads every installed Prefect collection,
            # and prefect-dbt's imports dbt: ~2 s of the boot, on the CPU the run process needs
            # to parse the project meanwhile. The flow uses no blocks; a server started with
            # `prefect server start` on the same PREFECT_HOME registers them as usual.
            "PREFECT_API_BLOCKS_REGISTER_ON_START": "false",
            "PREFECT_MEMOIZE_BLOCK_AUTO_REGISTRATION": "false",  # its check loads them too
            **os.environ,
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1",
        }
        # A session of its own: Ctrl+C in a terminal signals the whole foreground group, and a
        # server in it died at once, leaving the interrupted flow to retry a dead API for
        # minutes. Out of the group, it outlives the interrupt long enough for the flow to record
        # how the run ended, and stops when the command exits.
        self._process = subprocess.Popen(
            _server_command(port), env=environment, start_new_session=True
        )
        atexit.register(_stop, self._process)

    def wait(self) -> str:
        """The API URL, once the server answers its health check."""
        while self._process.poll() is None and time.monotonic() < self._deadline:
            if healthy(self.api_url):
                return self.api_url
            time.sleep(0.1)
        code = self._process.poll()
        _stop(self._process)
        if code is None:
            why = f"no answer within {self.timeout:.0f} s"
            advice = "raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
        elif code == PORT_TAKEN:
            why = f"another program took {self.api_url} first"
            advice = "run the command again"
        else:
            why = f"exit code {code}; its errors are above"
            advice = "check PREFECT_HOME"
        raise PrefectApiError(
            f"Prefect's local API server did not start ({why}): {advice}, or run a Prefect "
            "server and set PREFECT_API_URL."
        )
