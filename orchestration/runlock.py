"""One writer at a time: a lock file beside the warehouse, held for the whole run.

DuckDB itself refuses a second writer on the warehouse file, but only once dbt opens it, in the
middle of a run, after ingestion already ran. The lock is taken first, so a second `lakehouse run`
(or `ingest` / `export`) waits or refuses at once with a message naming the holder. It is an
`flock`: the kernel releases it when the holder dies, however it dies, so a killed run never leaves
a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from orchestration.settings import Settings, get_settings


class RunLocked(RuntimeError):
    """Another process holds the run lock."""


# Locks this process holds: taking one again (`lakehouse run` takes it before booting Prefect,
# then its flow, which a served run enters directly, takes it too) is a no-op, not a deadlock.
_held: set[Path] = set()


def lock_path(settings: Settings) -> Path:
    return settings.warehouse_path.parent / "run.lock"


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return "another process"
    return (
        f"pid {info.get('pid', '?')} ({info.get('command', '?')}, since {info.get('since', '?')})"
    )


@contextlib.contextmanager
def run_lock(
    command: str, settings: Settings | None = None, wait_seconds: float | None = None
) -> Iterator[Path]:
    """Hold the warehouse's run lock; wait up to `wait_seconds` (default: the setting)."""
    settings = settings or get_settings()
    wait = settings.run_lock_wait_seconds if wait_seconds is None else wait_seconds
    path = lock_path(settings)
    if path in _held:
        yield path
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")  # noqa: SIM115 - held open for the whole block
    deadline = time.monotonic() + wait
    try:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise RunLocked(
                        f"another run holds {path}: {_holder(path)}. Wait for it to finish "
                        "(or set RUN_LOCK_WAIT_SECONDS to queue behind it); the next run picks "
                        "up every file it did not see."
                    ) from None
                time.sleep(min(1.0, max(deadline - time.monotonic(), 0.05)))
        handle.seek(0)
        handle.truncate()
        since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        handle.write(json.dumps({"pid": os.getpid(), "command": command, "since": since}))
        handle.flush()
        _held.add(path)
        yield path
    finally:
        _held.discard(path)
        handle.close()  # closing the descriptor releases the flock
