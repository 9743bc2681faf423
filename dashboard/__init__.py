"""The Streamlit dashboard over the exported Parquet (entry point: dashboard/app.py)."""

from __future__ import annotations

import sys
from pathlib import Path

APP = Path(__file__).resolve().parent / "app.py"


def streamlit_command(host: str, port: int, *options: str) -> list[str]:
    """`streamlit run dashboard/app.py`, headless, without usage statistics, on host:port."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.headless=true",
        f"--server.address={host}",
        f"--server.port={port}",
        "--browser.gatherUsageStats=false",
        *options,
    ]
