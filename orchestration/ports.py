"""Free loopback ports for the servers the CLI starts (the embedded object store's internal
ports, Prefect's temporary API)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port nobody listens on now; the caller's server must bind it soon after."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
