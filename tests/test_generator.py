"""Tests of `orchestration.generator`.

The sidecar's `expected` counts are checked against a small, slow, pure-Python reference
implementation of SPEC §3 written here from the spec alone (it imports nothing from the
generator), run over the files the generator wrote.
"""

from __future__ import annotations

import csv
import json
import re
import time
from collections import Counter
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from orchestration import generator
from orchestration.generator import generate

END = date(2025, 6, 30)
CLIENT_HEADER = "id_client,name,email,subscription_date,country"
PURCHASE_HEADER = "id_purchase,id_client,product,price,quantity,purchase_date,total"

# Reference data, copied from SPEC §1 / §3 on purpose (not imported from the generator).
COUNTRIES = [
    "France",
    "Germany",
    "Spain",
    "Italy",
    "Belgium",
    "Netherlands",
    "Switzerland",
    "UK",
    "Canada",
    "USA",
]
ALIASES = {
    "united kingdom": "UK",
    "great britain": "UK",
    "gb": "UK",
    "england": "UK",
    "united states": "USA",
    "us": "USA",
    "u.s.a.": "USA",
    "america": "USA",
    "holland": "Netherlands",
    "deutschland": "Germany",
    "españa": "Spain",
    "italia": "Italy",
    "suisse": "Switzerland",
    "schweiz": "Switzerland",
    "belgique": "Belgium",
}
PRODUCT_RANGES = {
    "Laptop": (500, 2000),
    "Phone": (300, 1200),
    "Tablet": (200, 800),
    "Headphones": (50, 300),
    "Monitor": (150, 600),
    "Keyboard": (30, 150),
    "Mouse": (20, 100),
    "Webcam": (40, 200),
    "Speaker": (50, 300),
    "Charger": (10, 50),
}
CLIENT_REASONS = [
    "malformed_line",
    "invalid_client_id",
    "invalid_subscription_date",
    "duplicate_client",
]
PURCHASE_REASONS = [
    "malformed_line",
    "invalid_purchase_id",
    "invalid_client_id",
    "unknown_product",
    "invalid_price",
    "invalid_quantity",
    "invalid_purchase_date",
    "future_purchase_date",
    "orphan_purchase",
    "duplicate_purchase",
]
CLIENT_FLAGS = [
    "is_subscription_date_capped",
    "has_invalid_email",
    "has_shared_email",
    "has_unknown_country",
]
PURCHASE_FLAGS = ["is_total_recalculated"]


# --- reference implementation of SPEC §3 ------------------------------------------------------

NULL_TOKENS = {"null", "none", "nan", "n/a", "na", "#n/a", "<na>"}
EMAIL = re.compile(r"[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}")
ID = re.compile(r"[0-9]{1,18}")
QUANTITY = re.compile(r"[+-]?[0-9]+(\.0+)?")
DECIMAL = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")
CENT = Decimal("0.01")


def ref_clean(value: str) -> str | None:
    value = value.strip()
    return None if value == "" or value.lower() in NULL_TOKENS else value


def ref_id(value: str) -> int | None:
    value = ref_clean(value)
    if value is None or not ID.fullmatch(value) or int(value) < 1:
        return None
    return int(value)


def ref_date(value: str) -> date | None:
    value = ref_clean(value)
    if value is None:
        return None
    parts = None
    if m := re.fullmatch(r"([0-9]{4})[-/]([0-9]{2})[-/]([0-9]{2})", value):
        if value[4] == value[7]:  # one separator style per date
            parts = (int(m[1]), int(m[2]), int(m[3]))
    elif m := re.fullmatch(r"([0-9]{2})/([0-9]{2})/([0-9]{4})", value):
        parts = (int(m[3]), int(m[2]), int(m[1]))
    elif m := re.fullmatch(
        r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})", value
    ):
        try:
            datetime(*(int(m[i]) for i in range(1, 7)))
        except ValueError:
            return None
        parts = (int(m[1]), int(m[2]), int(m[3]))
    if parts is None:
        return None
    try:
        return date(*parts)
    except ValueError:
        return None


def ref_money(value: str) -> Decimal | None:
    value = ref_clean(value)
    if value is None or not DECIMAL.fullmatch(value):
        return None
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def ref_quantity(value: str) -> int | None:
    value = ref_clean(value)
    if value is None or not QUANTITY.fullmatch(value):
        return None
    number = int(value.split(".")[0])
    return number if number >= 1 else None


def ref_product(value: str) -> str | None:
    value = ref_clean(value)
    if value is None:
        return None
    by_lower = {name.lower(): name for name in PRODUCT_RANGES}
    return by_lower.get(value.lower())


def ref_country(value: str) -> str | None:
    value = ref_clean(value)
    if value is None:
        return None
    key = " ".join(value.split()).lower()
    by_lower = {name.lower(): name for name in COUNTRIES}
    return by_lower.get(key) or ALIASES.get(key)


def ref_email(value: str) -> str | None:
    value = ref_clean(value)
    if value is None:
        return None
    value = value.lower()
    return value if EMAIL.fullmatch(value) else None


def ref_lines(path: Path, header: str, width: int):
    """Yield (line number, fields or None when structurally broken); one record per line."""
    blobs = path.read_bytes().split(b"\n")
    assert blobs[0].decode("utf-8") == header
    if blobs[-1] == b"":
        blobs.pop()
    for number, blob in enumerate(blobs[1:], start=2):
        if not blob:
            continue  # blank lines are not rows
        try:
            text = blob.decode("utf-8")
            fields = next(csv.reader([text], strict=True))
        except (UnicodeDecodeError, csv.Error):
            yield number, None
            continue
        yield number, (fields if len(fields) == width else None)


def reference(folder: Path, as_of: date) -> dict:
    """Counts per entity and per file, in the shape of the sidecar's `expected` / `files`."""
    per_file: dict[str, dict] = {}

    def bucket(name: str, entity: str) -> dict:
        reasons = CLIENT_REASONS if entity == "clients" else PURCHASE_REASONS
        flags = CLIENT_FLAGS if entity == "clients" else PURCHASE_FLAGS
        return per_file.setdefault(
            name,
            {
                "entity": entity,
                "data_lines": 0,
                "silver_rows": 0,
                "quarantine": dict.fromkeys(reasons, 0),
                "flags": dict.fromkeys(flags, 0),
            },
        )

    # Clients.
    clients = []  # dicts with batch, line, file, reason, parsed values
    for batch, path in enumerate(sorted(folder.glob("clients_*.csv")), start=1):
        bucket(path.name, "clients")
        for number, fields in ref_lines(path, CLIENT_HEADER, 5):
            row = {"batch": batch, "line": number, "file": path.name, "reason": None}
            if fields is None:
                row["reason"] = "malformed_line"
            else:
                row["id"] = ref_id(fields[0])
                row["subscribed"] = ref_date(fields[3])
                row["email"] = ref_email(fields[2])
                row["country"] = ref_country(fields[4])
                if row["id"] is None:
                    row["reason"] = "invalid_client_id"
                elif row["subscribed"] is None:
                    row["reason"] = "invalid_subscription_date"
            clients.append(row)
    survivors: dict[int, dict] = {}
    for row in clients:
        if row["reason"] is None:
            best = survivors.get(row["id"])
            if best is None or row["batch"] > best["batch"]:  # newest batch, first line
                survivors[row["id"]] = row
    for row in clients:
        if row["reason"] is None and survivors[row["id"]] is not row:
            row["reason"] = "duplicate_client"
    emails = Counter(r["email"] for r in survivors.values() if r["email"] is not None)
    for row in clients:
        tally = per_file[row["file"]]
        tally["data_lines"] += 1
        if row["reason"] is not None:
            tally["quarantine"][row["reason"]] += 1
            continue
        tally["silver_rows"] += 1
        flags = tally["flags"]
        flags["is_subscription_date_capped"] += row["subscribed"] > as_of
        flags["has_invalid_email"] += row["email"] is None
        flags["has_shared_email"] += row["email"] is not None and emails[row["email"]] > 1
        flags["has_unknown_country"] += row["country"] is None

    # Purchases.
    purchases = []
    for batch, path in enumerate(sorted(folder.glob("purchases_*.csv")), start=1):
        bucket(path.name, "purchases")
        for number, fields in ref_lines(path, PURCHASE_HEADER, 7):
            row = {"batch": batch, "line": number, "file": path.name, "reason": None}
            purchases.append(row)
            if fields is None:
                row["reason"] = "malformed_line"
                continue
            row["id"] = ref_id(fields[0])
            client = ref_id(fields[1])
            price = ref_money(fields[3])
            quantity = ref_quantity(fields[4])
            bought = ref_date(fields[5])
            if row["id"] is None:
                row["reason"] = "invalid_purchase_id"
            elif client is None:
                row["reason"] = "invalid_client_id"
            elif ref_product(fields[2]) is None:
                row["reason"] = "unknown_product"
            elif price is None or Decimal(ref_clean(fields[3])) < 0:  # as written, unrounded
                row["reason"] = "invalid_price"
            elif quantity is None:
                row["reason"] = "invalid_quantity"
            elif bought is None:
                row["reason"] = "invalid_purchase_date"
            elif bought > as_of:
                row["reason"] = "future_purchase_date"
            elif client not in survivors:
                row["reason"] = "orphan_purchase"
            else:
                total = ref_money(fields[6])
                due = (price * quantity).quantize(CENT, rounding=ROUND_HALF_UP)
                row["recalculated"] = total is None or abs(total - due) > CENT
    kept: dict[int, dict] = {}
    for row in purchases:
        if row["reason"] is None:
            if row["id"] in kept:  # oldest batch, first line: the first one seen wins
                row["reason"] = "duplicate_purchase"
            else:
                kept[row["id"]] = row
    for row in purchases:
        tally = per_file[row["file"]]
        tally["data_lines"] += 1
        if row["reason"] is not None:
            tally["quarantine"][row["reason"]] += 1
        else:
            tally["silver_rows"] += 1
            tally["flags"]["is_total_recalculated"] += row["recalculated"]

    expected = {}
    for entity in ("clients", "purchases"):
        mine = [f for f in per_file.values() if f["entity"] == entity]
        expected[entity] = {
            "bronze_rows": sum(f["data_lines"] for f in mine),
            "silver_rows": sum(f["silver_rows"] for f in mine),
            "quarantine": {r: sum(f["quarantine"][r] for f in mine) for r in mine[0]["quarantine"]},
            "flags": {g: sum(f["flags"][g] for f in mine) for g in mine[0]["flags"]},
        }
    return {"expected": expected, "files": per_file}


# --- helpers -------------------------------------------------------------------------------------


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle, strict=True))


def years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


@pytest.fixture(scope="module")
def dirty(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("dirty")
    return folder, generate(folder, 2_000, seed=7, end_date=END, batches=3, dirty_rate=0.05)


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("clean")
    return folder, generate(folder, 3_000, seed=11, end_date=END, batches=3)


# --- tests --------------------------------------------------------------------------------------


def test_reference_counts_equal_the_sidecar_on_dirty_batches(dirty):
    folder, manifest = dirty
    ref = reference(folder, END)
    assert ref["expected"] == manifest["expected"]
    assert ref["files"] == manifest["files"]
    # The data set exercises every rule, every flag and every injected kind.
    for entity in ("clients", "purchases"):
        expected = manifest["expected"][entity]
        assert all(expected["quarantine"].values()), expected["quarantine"]
        assert all(expected["flags"].values()), expected["flags"]
        assert expected["bronze_rows"] == expected["silver_rows"] + sum(
            expected["quarantine"].values()
        )
        assert all(manifest["injected"][entity].values()), manifest["injected"][entity]


def test_reference_counts_equal_the_sidecar_on_clean_batches(clean):
    folder, manifest = clean
    ref = reference(folder, END)
    assert ref["expected"] == manifest["expected"]
    assert ref["files"] == manifest["files"]
    quarantine = manifest["expected"]["clients"]["quarantine"]
    assert {k for k, v in quarantine.items() if v} == {"duplicate_client"}
    quarantine = manifest["expected"]["purchases"]["quarantine"]
    assert {k for k, v in quarantine.items() if v} == {"duplicate_purchase"}
    assert not any(manifest["expected"]["clients"]["flags"].values())
    assert manifest["expected"]["clients"]["silver_rows"] == 3_000
    assert manifest["expected"]["purchases"]["silver_rows"] == manifest["purchases"]


def test_reference_counts_hold_across_many_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(generator, "CHUNK_CLIENTS", 170)
    manifest = generate(tmp_path, 1_500, seed=9, end_date=END, batches=3, dirty_rate=0.08)
    ref = reference(tmp_path, END)
    assert ref["expected"] == manifest["expected"]
    assert ref["files"] == manifest["files"]


@pytest.mark.parametrize("clients,batches,rate", [(1, 1, 0.5), (2, 3, 0.5), (5, 4, 0.0)])
def test_tiny_runs_still_reconcile(tmp_path, clients, batches, rate):
    manifest = generate(tmp_path, clients, end_date=END, batches=batches, dirty_rate=rate)
    assert reference(tmp_path, END)["expected"] == manifest["expected"]
    assert len(manifest["files"]) == 2 * batches


def test_same_seed_gives_identical_bytes(tmp_path):
    kwargs = {"seed": 5, "end_date": END, "batches": 2, "dirty_rate": 0.03}
    first = generate(tmp_path / "a", 1_500, **kwargs)
    second = generate(tmp_path / "b", 1_500, **kwargs)
    assert first == second
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    generate(tmp_path / "c", 1_500, **{**kwargs, "seed": 6})
    assert (tmp_path / "c" / "clients_001.csv").read_bytes() != (
        tmp_path / "a" / "clients_001.csv"
    ).read_bytes()


def test_file_names_headers_and_line_endings(tmp_path):
    manifest = generate(tmp_path, 60, end_date=END, batches=12, dirty_rate=0.1)
    names = sorted(p.name for p in tmp_path.iterdir())
    batches = [f"{k:03d}" for k in range(1, 13)]
    assert names == sorted(
        [f"clients_{k}.csv" for k in batches]
        + [f"purchases_{k}.csv" for k in batches]
        + ["generation_manifest.json"]
    )
    assert sorted(manifest["files"]) == [n for n in names if n.endswith(".csv")]
    for name in manifest["files"]:
        data = (tmp_path / name).read_bytes()
        header = CLIENT_HEADER if name.startswith("clients") else PURCHASE_HEADER
        assert data.startswith(header.encode() + b"\n")
        assert data.endswith(b"\n") and b"\r" not in data
        assert data.count(b"\n") - 1 == manifest["files"][name]["data_lines"]
    on_disk = json.loads((tmp_path / "generation_manifest.json").read_text(encoding="utf-8"))
    assert on_disk == manifest


def test_clean_data_satisfies_every_domain_rule(tmp_path):
    generate(tmp_path, 3_000, seed=3, end_date=END)
    clients = read_csv(tmp_path / "clients_001.csv")
    purchases = read_csv(tmp_path / "purchases_001.csv")
    assert clients[0] == CLIENT_HEADER.split(",")
    assert purchases[0] == PURCHASE_HEADER.split(",")
    sub_low, pur_low = years_before(END, 3), years_before(END, 2)

    subscribed = {}
    emails = set()
    for row in clients[1:]:
        assert len(row) == 5
        identifier, name, email, day, country = row
        assert identifier == str(len(subscribed) + 1)  # consecutive from 1
        assert name.strip() == name and " " in name
        assert EMAIL.fullmatch(email) and email.endswith(f"{identifier}@example.com")
        assert email not in emails
        emails.add(email)
        assert re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", day)
        subscribed[identifier] = date.fromisoformat(day)
        assert sub_low <= subscribed[identifier] <= END
        assert country in COUNTRIES
    assert len(subscribed) == 3_000
    assert set(row[4] for row in clients[1:]) == set(COUNTRIES)

    per_client = Counter()
    for number, row in enumerate(purchases[1:], start=1):
        assert len(row) == 7
        identifier, client, product, price, quantity, day, total = row
        assert identifier == str(number)
        per_client[client] += 1
        low, high = PRODUCT_RANGES[product]
        assert re.fullmatch(r"[0-9]+\.[0-9]{2}", price) and low <= Decimal(price) <= high
        assert quantity in {"1", "2", "3", "4", "5"}
        assert re.fullmatch(r"[0-9]+\.[0-9]{2}", total)
        assert Decimal(total) == Decimal(price) * int(quantity)
        bought = date.fromisoformat(day)
        assert max(pur_low, subscribed[client]) <= bought <= END
    assert set(per_client) == set(subscribed)
    assert min(per_client.values()) == 2 and max(per_client.values()) == 8
    assert 4.8 < sum(per_client.values()) / len(per_client) < 5.2
    assert set(row[2] for row in purchases[1:]) == set(PRODUCT_RANGES)


def test_purchases_never_before_subscription_across_batches(clean):
    folder, _ = clean
    subscribed = {}
    for path in sorted(folder.glob("clients_*.csv")):
        for row in read_csv(path)[1:]:
            subscribed.setdefault(row[0], date.fromisoformat(row[3]))
    for path in sorted(folder.glob("purchases_*.csv")):
        for row in read_csv(path)[1:]:
            assert date.fromisoformat(row[5]) >= subscribed[row[1]]


def test_batches_resend_clients_with_moves_and_repeat_purchases(clean):
    folder, manifest = clean
    batches = [read_csv(p)[1:] for p in sorted(folder.glob("clients_*.csv"))]
    buys = [read_csv(p)[1:] for p in sorted(folder.glob("purchases_*.csv"))]
    first_row = {row[0]: row for row in batches[0]}
    seen_clients = set(first_row)
    seen_purchases = {tuple(row) for row in buys[0]}
    assert len(batches) == 3
    for k in (1, 2):
        new = [row for row in batches[k] if row[0] not in seen_clients]
        again = [row for row in batches[k] if row[0] in seen_clients]
        assert new and 0.015 * len(seen_clients) <= len(again) <= 0.025 * len(seen_clients)
        moved = [row for row in again if row[4] != first_row[row[0]][4]]
        assert 0.25 * len(again) <= len(moved) <= 0.42 * len(again)
        for row in again:  # only the country may change
            assert row[:4] == first_row[row[0]][:4]
        for row in new:
            first_row[row[0]] = row
        seen_clients |= {row[0] for row in batches[k]}
        # Purchases: clients of the same or an earlier batch, some exact repeats.
        assert all(row[1] in seen_clients for row in buys[k])
        repeated = [row for row in buys[k] if tuple(row) in seen_purchases]
        assert 0.003 * len(seen_purchases) <= len(repeated) <= 0.007 * len(seen_purchases)
        seen_purchases |= {tuple(row) for row in buys[k]}
    injected = manifest["injected"]
    assert injected["clients"]["resent_moved"] > 0
    assert injected["clients"]["resent_unchanged"] > 0
    assert injected["purchases"]["repeated_purchase"] > 0


def test_progress_counts_new_clients(tmp_path):
    calls = []
    generate(tmp_path, 1_234, end_date=END, batches=2, progress=calls.append)
    assert sum(calls) == 1_234 and len(calls) == 2


def test_default_end_date_is_today_utc(tmp_path):
    manifest = generate(tmp_path, 10)
    assert manifest["end_date"] in {date.today().isoformat(), datetime.now(UTC).date().isoformat()}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"clients": 0},
        {"clients": 10, "batches": 0},
        {"clients": 10, "dirty_rate": 0.9},
        {"clients": 10, "purchases_per_client": (5, 2)},
        {"clients": 10, "seed": -1},
    ],
)
def test_bad_arguments_are_refused(tmp_path, kwargs):
    with pytest.raises(ValueError):
        generate(tmp_path, **kwargs)


def test_speed_200k_clients(tmp_path):
    start = time.perf_counter()
    manifest = generate(tmp_path, 200_000, end_date=END, batches=2, dirty_rate=0.02)
    seconds = time.perf_counter() - start
    rows = manifest["expected"]["clients"]["bronze_rows"]
    rows += manifest["expected"]["purchases"]["bronze_rows"]
    print(f"\ngenerator: 200,000 clients, {rows:,} lines in {seconds:.2f} s")


def test_the_command_never_writes_a_data_set_over_another(tmp_path):
    """`lakehouse generate --out` into a folder holding a data set is refused, and loses nothing:
    overwriting batch 1 of a 3-batch set would leave batches 2 and 3 under a new manifest."""
    from tests.conftest import clean_env, lakehouse

    env = clean_env(LAKE_DIR=str(tmp_path / "lake"), COLUMNS="250")
    out = tmp_path / "set"
    lakehouse("generate", "--out", str(out), "--clients", "20", "--batches", "3", env=env)
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    assert len(before) == 7  # three pairs and the manifest

    again = lakehouse(
        "generate", "--out", str(out), "--clients", "20", "--seed", "7", env=env, check=False
    )
    assert again.returncode == 1
    assert f"--out {out} already holds a data set" in again.stderr
    assert "Traceback" not in again.stderr
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before

    bad_range = tmp_path / "not-made"
    refused = lakehouse(
        "generate", "--out", str(bad_range), "--purchases-per-client", "8-2", env=env, check=False
    )
    assert refused.returncode == 2 and "--purchases-per-client" in refused.stderr
    assert not bad_range.exists()  # checked before the folder is made
