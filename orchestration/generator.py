"""Deterministic, vectorized generator of the two source CSVs (SPEC §1), with a JSON sidecar.

`generate()` writes one pair of files per batch (`clients_001.csv`, `purchases_001.csv`, …) and
`generation_manifest.json`, which says what was injected and what silver must produce from it
(SPEC §3, as_of_date = end_date, batches ingested in file-name order).

How it stays fast and bounded: clients are made in chunks of `CHUNK_CLIENTS` (their purchases with
them); every column is a numpy array turned into Arrow strings and joined into lines by Arrow
kernels, and the chunk's lines are written straight from the Arrow data buffer. Python only touches
the few dirtied rows.

How `expected` is known without running the project's SQL: every defect is put on its own row
(never on a row used as a duplicate source, a shared-e-mail partner or a re-send source), so each
written line's fate under SPEC §3 is decided when it is written. Rules that depend on other rows
are arranged by construction: a client broken by a quarantine defect is never sent again, so its
purchases are counted as orphans; re-sends, copies and repeats only ever copy clean rows whose
client survives. The test suite re-derives every count from the written files with an independent
reference implementation of SPEC §3.

A record is one physical line: the generator never writes a quote that protects a newline.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# --- reference domains (SPEC §1) --------------------------------------------------------------

COUNTRIES = (
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
)
PRODUCTS = {
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
CLIENT_COLUMNS = ("id_client", "name", "email", "subscription_date", "country")
PURCHASE_COLUMNS = (
    "id_purchase",
    "id_client",
    "product",
    "price",
    "quantity",
    "purchase_date",
    "total",
)
MANIFEST_NAME = "generation_manifest.json"

# --- sizes and shares ---------------------------------------------------------------------------

CHUNK_CLIENTS = 100_000  # clients (and their ~500k purchases) held in memory at once
POOL_SIZE = 2_000  # first names × last names drawn from Faker once
SUBSCRIPTION_YEARS = 3
PURCHASE_YEARS = 2
RESEND_SHARE = 0.02  # of earlier clients re-sent by each later batch
MOVED_SHARE = 1 / 3  # of re-sent clients that moved to another country
REPEAT_SHARE = 0.005  # of earlier purchases repeated (exact copies) by each later batch
ORPHAN_CLIENT_ID_BASE = 10**12  # client ids of orphan purchases: never a real client
FAKER_LOCALES = ("en_US", "en_GB", "fr_FR", "de_DE", "es_ES", "it_IT", "nl_NL", "fr_CA")
EMAIL_DOMAIN = "@example.com"

# --- outcomes (SPEC §3 order) -------------------------------------------------------------------

CLIENT_REASONS = (
    "malformed_line",
    "invalid_client_id",
    "invalid_subscription_date",
    "duplicate_client",
)
PURCHASE_REASONS = (
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
)
CLIENT_FLAGS = (
    "is_subscription_date_capped",
    "has_invalid_email",
    "has_shared_email",
    "has_unknown_country",
)
PURCHASE_FLAGS = ("is_total_recalculated",)
REASONS = {"clients": CLIENT_REASONS, "purchases": PURCHASE_REASONS}
FLAGS = {"clients": CLIENT_FLAGS, "purchases": PURCHASE_FLAGS}
SILVER = 0  # status code; reason i is code i + 1

# Defect kinds, cycled in this order so that every kind appears once the file has enough dirty
# rows. Value: (quarantine reason or None, flag or None). Kinds whose reason depends on the
# variant (the *_bad_first kinds) carry None and decide per variant.
CLIENT_DEFECTS: dict[str, tuple[str | None, str | None]] = {
    "null_name": (None, None),
    "null_email": (None, "has_invalid_email"),
    "null_country": (None, "has_unknown_country"),
    "email_case_whitespace": (None, None),
    "country_case_whitespace": (None, None),
    "country_alias": (None, None),
    "unknown_country": (None, "has_unknown_country"),
    "invalid_email": (None, "has_invalid_email"),
    "shared_email": (None, "has_shared_email"),
    "quoted_name": (None, None),
    "alternate_date_layout": (None, None),
    "future_subscription_date": (None, "is_subscription_date_capped"),
    "invalid_client_id": ("invalid_client_id", None),
    "invalid_subscription_date": ("invalid_subscription_date", None),
    "duplicate_client_exact": ("duplicate_client", None),
    "duplicate_client_conflicting": ("duplicate_client", None),
    "duplicate_client_bad_first": (None, None),
    "malformed_too_many_fields": ("malformed_line", None),
    "malformed_too_few_fields": ("malformed_line", None),
    "malformed_unterminated_quote": ("malformed_line", None),
    "malformed_invalid_utf8": ("malformed_line", None),
}
PURCHASE_DEFECTS: dict[str, tuple[str | None, str | None]] = {
    "invalid_purchase_id": ("invalid_purchase_id", None),
    "invalid_client_id": ("invalid_client_id", None),
    "unknown_product": ("unknown_product", None),
    "product_case_whitespace": (None, None),
    "negative_price": ("invalid_price", None),
    "non_numeric_price": ("invalid_price", None),
    "zero_price": (None, None),
    "price_extra_decimals": (None, None),
    "fractional_quantity": ("invalid_quantity", None),
    "integer_quantity_variant": (None, None),
    "non_positive_quantity": ("invalid_quantity", None),
    "non_numeric_quantity": ("invalid_quantity", None),
    "invalid_purchase_date": ("invalid_purchase_date", None),
    "alternate_date_layout": (None, None),
    "future_purchase_date": ("future_purchase_date", None),
    "wrong_total": (None, "is_total_recalculated"),
    "missing_total": (None, "is_total_recalculated"),
    "total_off_by_one_cent": (None, None),
    "orphan_purchase": ("orphan_purchase", None),
    "duplicate_purchase_exact": ("duplicate_purchase", None),
    "duplicate_purchase_conflicting": ("duplicate_purchase", None),
    "duplicate_purchase_bad_first": (None, None),
    "malformed_too_many_fields": ("malformed_line", None),
    "malformed_too_few_fields": ("malformed_line", None),
    "malformed_unterminated_quote": ("malformed_line", None),
    "malformed_invalid_utf8": ("malformed_line", None),
}
# Kinds that copy or extend the untouched line.
_NEEDS_ORIGINAL = frozenset(
    {
        "duplicate_client_exact",
        "duplicate_client_bad_first",
        "malformed_too_many_fields",
        "duplicate_purchase_exact",
        "duplicate_purchase_bad_first",
        "malformed_invalid_utf8",
    }
)
# Batch mechanics, reported beside the defects in `injected`.
CLIENT_BATCH_KINDS = ("resent_unchanged", "resent_moved", "resent_invalid_subscription_date")
PURCHASE_BATCH_KINDS = ("repeated_purchase",)

# --- variants --------------------------------------------------------------------------------

NULL_TOKENS = ("NULL", "n/a", "NaN", "", "None", "#N/A", "<NA>", "null", "NA", "   ")
COUNTRY_ALIASES = (
    "United Kingdom",
    "Great Britain",
    "GB",
    "England",
    "United States",
    "US",
    "U.S.A.",
    "America",
    "Holland",
    "Deutschland",
    "España",
    "Italia",
    "Suisse",
    "Schweiz",
    "Belgique",
    "united  kingdom",
    " GREAT BRITAIN ",
    "us",
    "holland",
)
UNKNOWN_COUNTRIES = ("Atlantis", "Narnia", "Wakanda", "Elbonia", "Freedonia", "Mars")
INVALID_DATES = (
    "2024-02-30",
    "31/31/2023",
    "yesterday",
    "",
    "2023-02-29",
    "2023-13-01",
    "2023-1-5",
    "2023-06-15T25:00:00",
    "NULL",
    "15.06.2023",
    "2023-06-31",
)
UNKNOWN_PRODUCTS = ("Toaster", "Fridge", "", "NULL", "n/a", "Laptops", "Smart Watch")
NON_NUMERIC_PRICES = ("abc", "1e3", "1,000.00", "", "NULL", "12.5.3", "$12.00", "twelve")
FRACTIONAL_QUANTITIES = ("2.5", "1.5", "0.5", "3.25", "1.01")
NON_POSITIVE_QUANTITIES = ("0", "-1", "-3", "0.0", "-2.0")
NON_NUMERIC_QUANTITIES = ("abc", "", "NULL", "two", "1e1", "   ", "n/a")
MISSING_TOTALS = ("", "NULL", "abc", "n/a", "1e3", "1,000.00")


def _invalid_ids(value: str) -> tuple[str, ...]:
    """Values that are not SPEC ids (`^[0-9]{1,18}$`, ≥ 1), many derived from a real id."""
    return (
        f"{value}.0",
        f"+{value}",
        f"-{value}",
        "abc",
        "0",
        "1e3",
        "",
        "NULL",
        "1234567890123456789",
        f"{value}a",
        "00",
    )


# --- small helpers ----------------------------------------------------------------------------

EPOCH = date(1970, 1, 1)


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _day(ordinal: int) -> date:
    return EPOCH + timedelta(days=int(ordinal))


def _field(value: str) -> str:
    """csv-module minimal quoting: quote only a field holding a comma or a quote."""
    if "," in value or '"' in value:
        return '"' + value.replace('"', '""') + '"'
    return value


def _line(fields: list[str]) -> bytes:
    return ",".join(_field(value) for value in fields).encode("utf-8")


def _money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


def _money_array(cents: np.ndarray) -> pa.Array:
    whole = pc.cast(pa.array(cents // 100), pa.string())
    frac = pc.utf8_lpad(pc.cast(pa.array(cents % 100), pa.string()), 2, "0")
    return pc.binary_join_element_wise(whole, frac, ".")


def _date_array(days: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(days.astype(np.int32), pa.date32()), pa.string())


def _ascii_word(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return "".join(ch for ch in folded.lower() if "a" <= ch <= "z")


@lru_cache(maxsize=4)
def _name_pools(seed: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """POOL_SIZE distinct first and last names, drawn once from seeded Faker instances."""
    from faker import Faker

    fakers = []
    for offset, locale in enumerate(FAKER_LOCALES):
        fake = Faker(locale)
        fake.seed_instance(seed * 1_000 + offset)
        fakers.append(fake)

    def pool(method: str) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        attempt = 0
        while len(seen) < POOL_SIZE and attempt < POOL_SIZE * 50:
            value = getattr(fakers[attempt % len(fakers)], method)().strip()
            attempt += 1
            if value and _ascii_word(value) and not any(c in value for c in ',"\r\n'):
                seen.setdefault(value, None)
        return tuple(seen)

    return pool("first_name"), pool("last_name")


def _split(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def _share(rate: float, done_rows: int, new_rows: int) -> int:
    """How many of `new_rows` get an event so that the running total is floor(rate × rows)."""
    return math.floor(rate * (done_rows + new_rows) + 1e-9) - math.floor(rate * done_rows + 1e-9)


# --- per-file bookkeeping ----------------------------------------------------------------------


@dataclass
class _Tally:
    entity: str
    data_lines: int = 0
    statuses: np.ndarray = field(default_factory=lambda: np.zeros(16, dtype=np.int64))
    flags: dict[str, int] = field(default_factory=dict)

    def add(self, status: np.ndarray) -> None:
        self.data_lines += len(status)
        self.statuses += np.bincount(status, minlength=16)[:16]

    def flag(self, name: str, count: int = 1) -> None:
        self.flags[name] = self.flags.get(name, 0) + count

    def as_dict(self) -> dict:
        reasons = REASONS[self.entity]
        return {
            "entity": self.entity,
            "data_lines": self.data_lines,
            "silver_rows": int(self.statuses[SILVER]),
            "quarantine": {r: int(self.statuses[i + 1]) for i, r in enumerate(reasons)},
            "flags": {f: self.flags.get(f, 0) for f in FLAGS[self.entity]},
        }


@dataclass
class _Pending:
    """Lines prepared in an earlier batch to be written in a later one (re-sends, repeats)."""

    lines: list[bytes] = field(default_factory=list)  # each ending with b"\n"
    status: list[int] = field(default_factory=list)


@dataclass
class _Extra:
    """A line added to a chunk: written somewhere after base row `after`."""

    line: bytes  # without its b"\n"
    status: int
    after: int  # -1: anywhere


# --- the generator ------------------------------------------------------------------------------


class _Run:
    def __init__(
        self,
        out_dir: Path,
        clients: int,
        seed: int,
        end_date: date,
        purchases_per_client: tuple[int, int],
        batches: int,
        dirty_rate: float,
        progress: Callable[[int], None] | None,
    ) -> None:
        self.out_dir = out_dir
        self.clients = clients
        self.seed = seed
        self.end_date = end_date
        self.pmin, self.pmax = purchases_per_client
        self.batches = batches
        self.dirty_rate = dirty_rate
        self.progress = progress
        self.width = max(3, len(str(batches)))

        self.end_ord = (end_date - EPOCH).days
        self.sub_lo = (_years_before(end_date, SUBSCRIPTION_YEARS) - EPOCH).days
        self.pur_lo = (_years_before(end_date, PURCHASE_YEARS) - EPOCH).days

        firsts, lasts = _name_pools(seed)
        self.firsts, self.lasts = firsts, lasts
        self.first_arr = pa.array(firsts, pa.string())
        self.last_arr = pa.array(lasts, pa.string())
        self.first_mail = pa.array([_ascii_word(f) + "." for f in firsts], pa.string())
        self.last_mail = pa.array([_ascii_word(w) for w in lasts], pa.string())
        # The last column of each file carries the line's "\n", so joined columns are the file.
        self.country_nl = pa.array([c + "\n" for c in COUNTRIES], pa.string())
        self.product_names = tuple(PRODUCTS)
        self.product_arr = pa.array(self.product_names, pa.string())
        self.price_lo = np.array([lo * 100 for lo, _ in PRODUCTS.values()], dtype=np.int64)
        self.price_hi = np.array([hi * 100 for _, hi in PRODUCTS.values()], dtype=np.int64)
        # Text of every value a clean column can hold, so a chunk's columns are cheap `take`s.
        self.date_text = _date_array(np.arange(self.sub_lo, self.end_ord + 1))
        self.money_text = _money_array(np.arange(0, int(self.price_hi.max()) * 5 + 1))
        self.money_nl = pc.binary_join_element_wise(self.money_text, "\n", "")
        self.small_text = pa.array([str(i) for i in range(6)], pa.string())

        self.next_purchase_id = 1
        self.rows_seen = {"clients": 0, "purchases": 0}
        self.events_done = {"clients": 0, "purchases": 0}
        self.resends_seen = 0
        self.variant = {"clients": {}, "purchases": {}}
        self.injected = {
            "clients": {k: 0 for k in (*CLIENT_DEFECTS, *CLIENT_BATCH_KINDS)},
            "purchases": {k: 0 for k in (*PURCHASE_DEFECTS, *PURCHASE_BATCH_KINDS)},
        }
        self.pending = {
            "clients": {k: _Pending() for k in range(2, batches + 1)},
            "purchases": {k: _Pending() for k in range(2, batches + 1)},
        }
        self.tallies: dict[str, _Tally] = {}
        self.lost_clients = 0  # clients whose every line is quarantined
        self.unrecovered_purchases = 0  # purchase ids whose every line is quarantined
        self.orphaned_by_client = 0

    # -- helpers ------------------------------------------------------------------------------

    def _pick(self, entity: str, kind: str, values: tuple) -> object:
        count = self.variant[entity].get(kind, 0)
        self.variant[entity][kind] = count + 1
        return values[count % len(values)]

    def _rng(self, batch: int, chunk: int, part: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, batch, chunk, part])

    @staticmethod
    def _write(handle, lines: pa.Array) -> None:
        if len(lines) == 0:
            return
        offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)
        start = offsets[lines.offset]
        stop = offsets[lines.offset + len(lines)]
        handle.write(memoryview(lines.buffers()[2])[start:stop])

    @staticmethod
    def _assemble(
        rng: np.random.Generator,
        base: pa.Array,
        base_status: np.ndarray,
        extras: list[_Extra],
        pending: tuple[list[bytes], list[int]],
    ) -> tuple[pa.Array, np.ndarray]:
        """Base lines in order, each extra line at a random place after its source."""
        m = len(base)
        lines = [e.line + b"\n" for e in extras] + pending[0]
        if not lines:
            return base, base_status
        after = np.array([e.after for e in extras] + [-1] * len(pending[0]), dtype=np.int64)
        slot = rng.integers(after + 1, m + 1)  # written just before base row `slot`
        keys = np.concatenate([2 * np.arange(m, dtype=np.int64) + 1, 2 * slot])
        order = np.argsort(keys, kind="stable")
        everything = pa.concat_arrays([base, pa.array(lines, pa.binary())])
        status = np.concatenate(
            [base_status, np.array([e.status for e in extras] + pending[1], dtype=np.int8)]
        )
        return everything.take(pa.array(order)), status[order]

    def _fields(self, columns: list[pa.Array], positions: np.ndarray) -> dict[int, list[str]]:
        if len(positions) == 0:
            return {}
        index = pa.array(positions)
        values = [column.take(index).to_pylist() for column in columns]
        values[-1] = [v[:-1] for v in values[-1]]  # drop the line's "\n"
        return {int(p): [v[i] for v in values] for i, p in enumerate(positions)}

    def _date_variant(self, entity: str, kind: str, ordinal: int, rng) -> str:
        day = _day(ordinal)
        layout = self._pick(entity, kind, ("slash", "dmy", "iso_time"))
        if layout == "slash":
            return day.strftime("%Y/%m/%d")
        if layout == "dmy":
            return day.strftime("%d/%m/%Y")
        h, mi, s = (int(x) for x in rng.integers([0, 0, 0], [24, 60, 60]))
        return f"{day.isoformat()}T{h:02d}:{mi:02d}:{s:02d}"

    # -- a batch ------------------------------------------------------------------------------

    def batch(self, batch: int, first_id: int, count: int) -> None:
        name_c = f"clients_{batch:0{self.width}d}.csv"
        name_p = f"purchases_{batch:0{self.width}d}.csv"
        self.tallies[name_c] = _Tally("clients")
        self.tallies[name_p] = _Tally("purchases")
        chunks = max(1, math.ceil(count / CHUNK_CLIENTS))
        sizes = _split(count, chunks)
        pend_c = self.pending["clients"].pop(batch, _Pending())
        pend_p = self.pending["purchases"].pop(batch, _Pending())
        cuts_c = np.cumsum([0, *_split(len(pend_c.lines), chunks)])
        cuts_p = np.cumsum([0, *_split(len(pend_p.lines), chunks)])
        with (
            open(self.out_dir / name_c, "wb") as out_c,
            open(self.out_dir / name_p, "wb") as out_p,
        ):
            out_c.write((",".join(CLIENT_COLUMNS) + "\n").encode())
            out_p.write((",".join(PURCHASE_COLUMNS) + "\n").encode())
            start = first_id
            for chunk, size in enumerate(sizes):
                a, b = cuts_c[chunk], cuts_c[chunk + 1]
                piece_c = (pend_c.lines[a:b], pend_c.status[a:b])
                a, b = cuts_p[chunk], cuts_p[chunk + 1]
                piece_p = (pend_p.lines[a:b], pend_p.status[a:b])
                self._chunk(batch, chunk, start, size, piece_c, piece_p, out_c, out_p)
                start += size
                if self.progress is not None:
                    self.progress(size)

    def _chunk(self, batch, chunk, first_id, m, piece_c, piece_p, out_c, out_p) -> None:
        rng = self._rng(batch, chunk, 0)
        ids = np.arange(first_id, first_id + m, dtype=np.int64)
        first = rng.integers(0, len(self.firsts), m)
        last = rng.integers(0, len(self.lasts), m)
        subscribed = rng.integers(self.sub_lo, self.end_ord + 1, m)
        country = rng.integers(0, len(COUNTRIES), m)
        per_client = rng.integers(self.pmin, self.pmax + 1, m)

        id_text = pc.cast(pa.array(ids), pa.string())
        columns_c = [
            id_text,
            pc.binary_join_element_wise(
                self.first_arr.take(pa.array(first)), self.last_arr.take(pa.array(last)), " "
            ),
            pc.binary_join_element_wise(
                self.first_mail.take(pa.array(first)),
                self.last_mail.take(pa.array(last)),
                id_text,
                EMAIL_DOMAIN,
                "",
            ),
            self.date_text.take(pa.array(subscribed - self.sub_lo)),
            self.country_nl.take(pa.array(country)),
        ]
        lost = self._dirty_clients(rng, batch, chunk, m, columns_c, subscribed, piece_c, out_c)

        # Purchases of this chunk's clients, in the same batch.
        rng = self._rng(batch, chunk, 1)
        owner = np.repeat(np.arange(m, dtype=np.int64), per_client)
        n = len(owner)
        product = rng.integers(0, len(self.product_names), n)
        price = rng.integers(self.price_lo[product], self.price_hi[product] + 1)
        quantity = rng.integers(1, 6, n)
        lowest = np.maximum(subscribed[owner], self.pur_lo)
        bought = rng.integers(lowest, self.end_ord + 1)
        total = price * quantity
        purchase_ids = np.arange(self.next_purchase_id, self.next_purchase_id + n, dtype=np.int64)
        self.next_purchase_id += n
        columns_p = [
            pc.cast(pa.array(purchase_ids), pa.string()),
            id_text.take(pa.array(owner)),
            self.product_arr.take(pa.array(product)),
            self.money_text.take(pa.array(price)),
            self.small_text.take(pa.array(quantity)),
            self.date_text.take(pa.array(bought - self.sub_lo)),
            self.money_nl.take(pa.array(total)),
        ]
        del product, price, quantity, lowest, bought, total, purchase_ids
        self._dirty_purchases(
            rng, batch, chunk, columns_p, lost[owner], subscribed[owner], piece_p, out_p
        )

    # -- clients ------------------------------------------------------------------------------

    def _dirty_clients(self, rng, batch, chunk, m, columns, subscribed, piece, out) -> np.ndarray:
        tally = self.tallies[f"clients_{batch:0{self.width}d}.csv"]
        kinds_all = tuple(CLIENT_DEFECTS)
        n_events = _share(self.dirty_rate, self.rows_seen["clients"], m) if m else 0
        self.rows_seen["clients"] += m
        offset = self.events_done["clients"]
        kinds = [kinds_all[(offset + j) % len(kinds_all)] for j in range(n_events)]
        self.events_done["clients"] += n_events
        n_partners = kinds.count("shared_email")
        later = list(range(batch + 1, self.batches + 1))
        room = m - n_events - n_partners
        quota = min(round(RESEND_SHARE * m), room // len(later)) if later else 0
        positions = (
            rng.choice(m, n_events + n_partners + quota * len(later), replace=False)
            if m
            else np.zeros(0, dtype=np.int64)
        )
        events = positions[:n_events]
        partners = positions[n_events : n_events + n_partners]
        sources = positions[n_events + n_partners :]
        rows = self._fields(columns, positions)

        status = np.zeros(m, dtype=np.int8)
        lost = np.zeros(m, dtype=bool)
        replaced: dict[int, bytes] = {}
        extras: list[_Extra] = []
        code = {r: i + 1 for i, r in enumerate(CLIENT_REASONS)}
        partner_iter = iter(partners.tolist())

        for kind, position in zip(kinds, events.tolist(), strict=True):
            self.injected["clients"][kind] += 1
            before = rows[position]
            row = list(before)
            original = _line(row) if kind in _NEEDS_ORIGINAL else b""
            reason, flag = CLIENT_DEFECTS[kind]
            identifier, name, email, _, country = row
            local = email.split("@")[0]
            if kind == "null_name":
                row[1] = self._pick("clients", kind, NULL_TOKENS)
            elif kind == "null_email":
                row[2] = self._pick("clients", kind, NULL_TOKENS)
            elif kind == "null_country":
                row[4] = self._pick("clients", kind, NULL_TOKENS)
            elif kind == "email_case_whitespace":
                mixed = ".".join(p.capitalize() for p in local.split(".")) + "@Example.COM"
                row[2] = self._pick(
                    "clients", kind, (f" {mixed} ", email.upper(), f"{mixed}  ", f"  {email}")
                )
            elif kind == "country_case_whitespace":
                row[4] = self._pick(
                    "clients",
                    kind,
                    (
                        f"  {country.lower()}",
                        country.upper(),
                        f" {country} ",
                        f"{country.lower()}  ",
                    ),
                )
            elif kind == "country_alias":
                row[4] = self._pick("clients", kind, COUNTRY_ALIASES)
            elif kind == "unknown_country":
                row[4] = self._pick("clients", kind, UNKNOWN_COUNTRIES)
            elif kind == "invalid_email":
                row[2] = self._pick(
                    "clients",
                    kind,
                    (
                        local + "example.com",
                        local + "@example",
                        local.replace(".", " ", 1) + "@example.com",
                        local + "@@example.com",
                        f"@{local}.example.com",
                        local + "@example.c",
                        local + "@exa_mple.com",
                    ),
                )
            elif kind == "shared_email":
                partner = next(partner_iter)
                shared = rows[partner][2]
                row[2] = self._pick(
                    "clients", kind, (shared, f" {shared.upper()} ", shared.title())
                )
                tally.flag("has_shared_email")  # the partner keeps its e-mail and shares it
            elif kind == "quoted_name":
                given, _, family = name.partition(" ")
                row[1] = self._pick(
                    "clients",
                    kind,
                    (
                        f"{family}, {given}",
                        f'{given} "{given[:3]}" {family}',
                        f'{given}, "{family}"',
                    ),
                )
            elif kind == "alternate_date_layout":
                row[3] = self._date_variant("clients", kind, int(subscribed[position]), rng)
            elif kind == "future_subscription_date":
                row[3] = _day(self.end_ord + int(rng.integers(1, 401))).isoformat()
            elif kind == "invalid_client_id":
                row[0] = self._pick("clients", kind, _invalid_ids(identifier))
            elif kind == "invalid_subscription_date":
                row[3] = self._pick("clients", kind, INVALID_DATES)
            elif kind == "duplicate_client_exact":
                extras.append(_Extra(original, code["duplicate_client"], position))
            elif kind == "duplicate_client_conflicting":
                f_i = int(rng.integers(0, len(self.firsts)))
                l_i = int(rng.integers(0, len(self.lasts)))
                other = [c for c in COUNTRIES if c != country]
                copy = [
                    identifier,
                    f"{self.firsts[f_i]} {self.lasts[l_i]}",
                    f"{_ascii_word(self.firsts[f_i])}.{_ascii_word(self.lasts[l_i])}"
                    f"{identifier}{EMAIL_DOMAIN}",
                    _day(int(rng.integers(self.sub_lo, self.end_ord + 1))).isoformat(),
                    other[int(rng.integers(0, len(other)))],
                ]
                extras.append(_Extra(_line(copy), code["duplicate_client"], position))
            elif kind == "duplicate_client_bad_first":
                bad = self._pick("clients", kind, (*INVALID_DATES, "too_few_fields"))
                if bad == "too_few_fields":
                    replaced[position] = _line([identifier, name, email, row[3]])
                    status[position] = code["malformed_line"]
                else:
                    row[3] = bad
                    status[position] = code["invalid_subscription_date"]
                extras.append(_Extra(original, SILVER, position))  # the good copy survives
            elif kind == "malformed_too_many_fields":
                variant = self._pick("clients", kind, ("extra", "comma_name", "trailing"))
                if variant == "extra":
                    replaced[position] = original + b",VIP"
                elif variant == "comma_name":
                    given, _, family = name.partition(" ")
                    replaced[position] = ",".join(
                        [identifier, f"{family}, {given}", email, row[3], country]
                    ).encode()
                else:
                    replaced[position] = original + b","
            elif kind == "malformed_too_few_fields":
                variant = self._pick("clients", kind, ("no_email", "no_country", "id_only"))
                if variant == "no_email":
                    replaced[position] = _line([identifier, name, row[3], country])
                elif variant == "no_country":
                    replaced[position] = _line([identifier, name, email, row[3]])
                else:
                    replaced[position] = identifier.encode()
            elif kind == "malformed_unterminated_quote":
                family = name.partition(" ")[2] or name
                variant = self._pick("clients", kind, ("name", "country"))
                if variant == "name":
                    replaced[position] = ",".join(
                        [identifier, f'"{family}', email, row[3], country]
                    ).encode()
                else:
                    replaced[position] = ",".join(
                        [identifier, name, email, row[3], f'"{country}']
                    ).encode()
            elif kind == "malformed_invalid_utf8":
                variant = self._pick("clients", kind, ("bom_bytes", "latin1", "truncated"))
                head = f"{identifier},".encode()
                tail = f",{email},{row[3]},{country}".encode()
                given, _, family = name.partition(" ")
                if variant == "bom_bytes":
                    replaced[position] = head + name.encode() + b"\xff\xfe" + tail
                elif variant == "latin1":
                    replaced[position] = head + f"{given} ".encode() + b"Ren\xe9" + tail
                else:
                    replaced[position] = head + given.encode() + b" \xc3\x28" + tail
            else:  # pragma: no cover - the table above and this chain must match
                raise AssertionError(kind)

            if position not in replaced and row != before:
                replaced[position] = _line(row)
            if reason is not None and reason != "duplicate_client":
                status[position] = code[reason]
            if flag is not None:
                tally.flag(flag)
            if reason in ("malformed_line", "invalid_client_id", "invalid_subscription_date"):
                lost[position] = True
                self.lost_clients += 1

        # Re-sends of clean clients in each later batch: the newest valid copy survives.
        for index, target in enumerate(later):
            chosen = sources[index * quota : (index + 1) * quota].tolist()
            moved = round(MOVED_SHARE * len(chosen))
            bad = _share(self.dirty_rate, self.resends_seen, len(chosen))
            self.resends_seen += len(chosen)
            pending = self.pending["clients"][target]
            for j, position in enumerate(chosen):
                row = list(rows[position])
                if j < moved:
                    other = [c for c in COUNTRIES if c != row[4]]
                    row[4] = other[int(rng.integers(0, len(other)))]
                    self.injected["clients"]["resent_moved"] += 1
                elif j < moved + bad:
                    row[3] = self._pick("clients", "resent_bad", INVALID_DATES)
                    self.injected["clients"]["resent_invalid_subscription_date"] += 1
                    pending.lines.append(_line(row) + b"\n")
                    pending.status.append(code["invalid_subscription_date"])
                    continue  # the earlier copy stays the survivor
                else:
                    self.injected["clients"]["resent_unchanged"] += 1
                pending.lines.append(_line(row) + b"\n")
                pending.status.append(SILVER)
                status[position] = code["duplicate_client"]

        base = columns_to_lines(columns)
        columns.clear()  # the text columns are no longer needed: free them before copying lines
        base = _replace_lines(base, replaced, m)
        lines, final = self._assemble(rng, base, status, extras, piece)
        self._write(out, lines)
        tally.add(final)
        return lost

    # -- purchases ----------------------------------------------------------------------------

    def _dirty_purchases(self, rng, batch, chunk, columns, lost, subscribed, piece, out) -> None:
        tally = self.tallies[f"purchases_{batch:0{self.width}d}.csv"]
        code = {r: i + 1 for i, r in enumerate(PURCHASE_REASONS)}
        n = len(lost)
        status = np.zeros(n, dtype=np.int8)
        status[lost] = code["orphan_purchase"]
        orphaned = int(lost.sum())
        self.orphaned_by_client += orphaned
        self.unrecovered_purchases += orphaned
        allowed = np.flatnonzero(~lost)

        kinds_all = tuple(PURCHASE_DEFECTS)
        n_events = _share(self.dirty_rate, self.rows_seen["purchases"], n) if n else 0
        self.rows_seen["purchases"] += n
        n_events = min(n_events, len(allowed))
        offset = self.events_done["purchases"]
        kinds = [kinds_all[(offset + j) % len(kinds_all)] for j in range(n_events)]
        self.events_done["purchases"] += n_events
        later = list(range(batch + 1, self.batches + 1))
        room = len(allowed) - n_events
        quota = min(round(REPEAT_SHARE * n), room // len(later)) if later else 0
        picked = rng.choice(len(allowed), n_events + quota * len(later), replace=False)
        positions = allowed[picked] if len(picked) else np.zeros(0, dtype=np.int64)
        events = positions[:n_events]
        sources = positions[n_events:]
        rows = self._fields(columns, positions)

        replaced: dict[int, bytes] = {}
        extras: list[_Extra] = []
        for kind, position in zip(kinds, events.tolist(), strict=True):
            self.injected["purchases"][kind] += 1
            before = rows[position]
            row = list(before)
            original = _line(row) if kind in _NEEDS_ORIGINAL else b""
            reason, flag = PURCHASE_DEFECTS[kind]
            purchase_id, client_id, product, price, quantity, bought, total = row
            cents = round(float(price) * 100)
            q = int(quantity)
            if kind == "invalid_purchase_id":
                row[0] = self._pick("purchases", kind, _invalid_ids(purchase_id))
            elif kind == "invalid_client_id":
                row[1] = self._pick("purchases", kind, _invalid_ids(client_id))
            elif kind == "unknown_product":
                row[2] = self._pick("purchases", kind, UNKNOWN_PRODUCTS)
            elif kind == "product_case_whitespace":
                row[2] = self._pick(
                    "purchases",
                    kind,
                    (
                        f" {product.lower()} ",
                        product.upper(),
                        f"{product}  ",
                        f"  {product.lower()}",
                    ),
                )
            elif kind == "negative_price":
                row[3] = f"-{price}"
            elif kind == "non_numeric_price":
                row[3] = self._pick("purchases", kind, NON_NUMERIC_PRICES)
            elif kind == "zero_price":
                row[3] = self._pick("purchases", kind, ("0.00", "0", "0.0"))
                row[6] = "0.00"
            elif kind == "price_extra_decimals":
                digit = self._pick("purchases", kind, (5, 4, 9))
                row[3] = f"{price}{digit}"
                row[4] = "1"  # one unit: the total matches whichever way the cents round
                row[6] = _money(cents + (1 if digit >= 5 else 0))
            elif kind == "fractional_quantity":
                row[4] = self._pick("purchases", kind, FRACTIONAL_QUANTITIES)
            elif kind == "integer_quantity_variant":
                row[4] = self._pick("purchases", kind, (f"{q}.0", f"{q}.00", f"+{q}"))
            elif kind == "non_positive_quantity":
                row[4] = self._pick("purchases", kind, NON_POSITIVE_QUANTITIES)
            elif kind == "non_numeric_quantity":
                row[4] = self._pick("purchases", kind, NON_NUMERIC_QUANTITIES)
            elif kind == "invalid_purchase_date":
                row[5] = self._pick("purchases", kind, INVALID_DATES)
            elif kind == "alternate_date_layout":
                ordinal = (date.fromisoformat(bought) - EPOCH).days
                row[5] = self._date_variant("purchases", kind, ordinal, rng)
            elif kind == "future_purchase_date":
                row[5] = _day(self.end_ord + int(rng.integers(1, 401))).isoformat()
            elif kind == "wrong_total":
                t = cents * q
                row[6] = _money(
                    self._pick("purchases", kind, (t + 100, t * 10, t - 2, t + 2, t // 2, 0))
                )
            elif kind == "missing_total":
                row[6] = self._pick("purchases", kind, MISSING_TOTALS)
            elif kind == "total_off_by_one_cent":
                row[6] = _money(cents * q + self._pick("purchases", kind, (1, -1)))
            elif kind == "orphan_purchase":
                row[1] = str(ORPHAN_CLIENT_ID_BASE + self.injected["purchases"][kind])
            elif kind == "duplicate_purchase_exact":
                extras.append(_Extra(original, code["duplicate_purchase"], position))
            elif kind == "duplicate_purchase_conflicting":
                p_i = int(rng.integers(0, len(self.product_names)))
                new_cents = int(rng.integers(self.price_lo[p_i], self.price_hi[p_i] + 1))
                new_q = int(rng.integers(1, 6))
                lowest = max(int(subscribed[position]), self.pur_lo)
                copy = [
                    purchase_id,
                    client_id,
                    self.product_names[p_i],
                    _money(new_cents),
                    str(new_q),
                    _day(int(rng.integers(lowest, self.end_ord + 1))).isoformat(),
                    _money(new_cents * new_q),
                ]
                extras.append(_Extra(_line(copy), code["duplicate_purchase"], position))
            elif kind == "duplicate_purchase_bad_first":
                column, value, why = self._pick(
                    "purchases",
                    kind,
                    (
                        (3, "-1.00", "invalid_price"),
                        (4, "0", "invalid_quantity"),
                        (5, "2023-02-30", "invalid_purchase_date"),
                        (2, "Toaster", "unknown_product"),
                        (1, str(ORPHAN_CLIENT_ID_BASE - 1), "orphan_purchase"),
                        (5, _day(self.end_ord + 30).isoformat(), "future_purchase_date"),
                    ),
                )
                row[column] = value
                status[position] = code[why]
                extras.append(_Extra(original, SILVER, position))  # the good copy survives
            elif kind == "malformed_too_many_fields":
                variant = self._pick("purchases", kind, ("thousands", "extra", "trailing"))
                if variant == "thousands" and cents >= 100_000:
                    row[3] = f"{cents // 100_000},{price[-6:]}"
                    replaced[position] = ",".join(row).encode()
                elif variant == "trailing":
                    replaced[position] = original + b","
                else:
                    replaced[position] = original + b",gift"
            elif kind == "malformed_too_few_fields":
                variant = self._pick("purchases", kind, ("no_total", "no_product", "two"))
                if variant == "no_total":
                    replaced[position] = _line(row[:6])
                elif variant == "no_product":
                    replaced[position] = _line(row[:2] + row[3:])
                else:
                    replaced[position] = _line(row[:2])
            elif kind == "malformed_unterminated_quote":
                variant = self._pick("purchases", kind, ("product", "total"))
                if variant == "product":
                    row[2] = f'"{product}'
                else:
                    row[6] = f'"{total}'
                replaced[position] = ",".join(row).encode()
            elif kind == "malformed_invalid_utf8":
                variant = self._pick("purchases", kind, (b"\xff\xfe", b"\xe9", b"\xc3\x28"))
                head = ",".join(row[:2]).encode() + b","
                replaced[position] = (
                    head + product.encode() + variant + b"," + original.split(b",", 3)[3]
                )
            else:  # pragma: no cover
                raise AssertionError(kind)

            if position not in replaced and row != before:
                replaced[position] = _line(row)
            if reason is not None and reason != "duplicate_purchase":
                status[position] = code[reason]
            if flag is not None:
                tally.flag(flag)
            if status[position] != SILVER and kind != "duplicate_purchase_bad_first":
                self.unrecovered_purchases += 1

        # Exact repeats of clean purchases in each later batch: the oldest copy survives.
        base = columns_to_lines(columns)
        columns.clear()  # the text columns are no longer needed: free them before copying lines
        for index, target in enumerate(later):
            chosen = sources[index * quota : (index + 1) * quota]
            pending = self.pending["purchases"][target]
            pending.lines.extend(base.take(pa.array(chosen, pa.int64())).to_pylist())
            pending.status.extend([code["duplicate_purchase"]] * len(chosen))
            self.injected["purchases"]["repeated_purchase"] += len(chosen)

        base = _replace_lines(base, replaced, n)
        lines, final = self._assemble(rng, base, status, extras, piece)
        self._write(out, lines)
        tally.add(final)

    # -- sidecar ------------------------------------------------------------------------------

    def manifest(self) -> dict:
        files = {name: tally.as_dict() for name, tally in sorted(self.tallies.items())}
        expected = {}
        for entity in ("clients", "purchases"):
            mine = [f for f in files.values() if f["entity"] == entity]
            bronze = sum(f["data_lines"] for f in mine)
            silver = sum(f["silver_rows"] for f in mine)
            quarantine = {r: sum(f["quarantine"][r] for f in mine) for r in REASONS[entity]}
            flags = {g: sum(f["flags"][g] for f in mine) for g in FLAGS[entity]}
            assert bronze == silver + sum(quarantine.values()), (entity, bronze, silver)
            expected[entity] = {
                "bronze_rows": bronze,
                "silver_rows": silver,
                "quarantine": quarantine,
                "flags": flags,
            }
        purchases = self.next_purchase_id - 1
        # Every id is in silver once unless all of its lines were quarantined.
        assert expected["clients"]["silver_rows"] == self.clients - self.lost_clients
        assert expected["purchases"]["silver_rows"] == purchases - self.unrecovered_purchases
        return {
            "seed": self.seed,
            "end_date": self.end_date.isoformat(),
            "clients": self.clients,
            "purchases": purchases,
            "batches": self.batches,
            "dirty_rate": self.dirty_rate,
            "purchases_per_client": [self.pmin, self.pmax],
            "files": files,
            "injected": self.injected,
            # Not injected: clean purchases of clients whose every line was quarantined.
            "purchases_of_quarantined_clients": self.orphaned_by_client,
            "expected": expected,
        }


def columns_to_lines(columns: list[pa.Array]) -> pa.Array:
    """Join text columns with commas into one binary line per row (no quoting needed).

    The last column already ends with "\n", so the array's data buffer is the file's bytes.
    """
    return pc.binary_join_element_wise(*columns, ",").cast(pa.binary())


def generate(
    out_dir: Path,
    clients: int,
    seed: int = 42,
    end_date: date | None = None,
    purchases_per_client: tuple[int, int] = (2, 8),
    batches: int = 1,
    dirty_rate: float = 0.0,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Write `clients_NNN.csv` / `purchases_NNN.csv` per batch and the sidecar; return the sidecar.

    Batch k (1-based) holds its share of new clients with their purchases, plus, for k > 1, about
    2 % of earlier clients sent again (a third of them moved to another country) and about 0.5 %
    of earlier purchases repeated verbatim. `progress`, if given, is called after each chunk with
    the number of new clients that chunk wrote; the calls add up to `clients`.
    """
    out_dir = Path(out_dir)
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    if clients < 1:
        raise ValueError(f"clients must be at least 1, got {clients}")
    if batches < 1:
        raise ValueError(f"batches must be at least 1, got {batches}")
    low, high = purchases_per_client
    if not 1 <= low <= high:
        raise ValueError(
            f"purchases_per_client must be MIN-MAX with 1 <= MIN <= MAX, got {low}-{high}"
        )
    if not 0.0 <= dirty_rate <= 0.5:
        raise ValueError(f"dirty_rate must be between 0 and 0.5, got {dirty_rate}")
    if end_date is None:
        end_date = datetime.now(UTC).date()
    out_dir.mkdir(parents=True, exist_ok=True)

    run = _Run(out_dir, clients, seed, end_date, (low, high), batches, dirty_rate, progress)
    first_id = 1
    for batch, count in enumerate(_split(clients, batches), start=1):
        run.batch(batch, first_id, count)
        first_id += count
    manifest = run.manifest()
    (out_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def _replace_lines(base: pa.Array, replaced: dict[int, bytes], size: int) -> pa.Array:
    """Swap the dirtied rows' lines (position → line without its newline) into the clean ones."""
    if not replaced:
        return base
    order = sorted(replaced)
    mask = np.zeros(size, dtype=bool)
    mask[order] = True
    return pc.replace_with_mask(
        base, pa.array(mask), pa.array([replaced[p] + b"\n" for p in order], pa.binary())
    )
