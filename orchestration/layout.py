"""Names and paths of the lake's layout: one place for each fact (SPEC §2 and §5)."""

from __future__ import annotations

import re
from datetime import datetime

# The two source entities and their columns, in canonical order.
ENTITIES: dict[str, tuple[str, ...]] = {
    "clients": ("id_client", "name", "email", "subscription_date", "country"),
    "purchases": (
        "id_purchase",
        "id_client",
        "product",
        "price",
        "quantity",
        "purchase_date",
        "total",
    ),
}

# bronze/<entity>/ingest_date=YYYY-MM-DD/<entity>__<UTC timestamp>__<sha256[:12]>.csv
BRONZE_NAME = re.compile(
    r"^(?P<entity>[a-z]+)/ingest_date=(?P<date>\d{4}-\d{2}-\d{2})/"
    r"(?P=entity)__(?P<stamp>\d{8}T\d{12}Z)__(?P<sha>[0-9a-f]{12})\.csv$"
)
STAMP_FORMAT = "%Y%m%dT%H%M%S%fZ"
PARSED_PREFIX = "_parsed"  # bronze/_parsed/<same path>.parquet: the line-split twin of each file


def bronze_key(entity: str, landed_at: datetime, sha256: str) -> str:
    stamp = landed_at.strftime(STAMP_FORMAT)
    return f"{entity}/ingest_date={landed_at:%Y-%m-%d}/{entity}__{stamp}__{sha256[:12]}.csv"


def parsed_key(bronze: str) -> str:
    """Where the parsed twin of a bronze CSV lives."""
    return f"{PARSED_PREFIX}/{bronze[: -len('.csv')]}.parquet"


def landed_at(bronze: str) -> datetime:
    match = BRONZE_NAME.match(bronze)
    if match is None:
        raise ValueError(f"not a bronze file name: {bronze}")
    return datetime.strptime(match["stamp"], STAMP_FORMAT)


# Export layout (SPEC §5).
LATEST = "latest.json"
RUNS_PREFIX = "runs/"


def run_folder(run_id: str) -> str:
    return f"{RUNS_PREFIX}{run_id}"
