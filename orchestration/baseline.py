"""The pandas baseline: SPEC §3 silver and the main §4 gold aggregations, without dbt or DuckDB.

`lakehouse bench pipeline` times this beside `lakehouse run` on the same CSV files, as the script
a careful pandas user would otherwise write. Careful means: vectorized (no per-row Python loop),
exact money (integer cents, half away from zero), the same rule order and survivor choice as the
dbt staging models, and written independently of them (no import from the pipeline).

How lines are read, and why not `pd.read_csv`: silver must keep every structurally broken line
with its line number, and pandas' C reader can only skip or warn about bad lines (`on_bad_lines`
as a callable needs the slow python engine), while an unterminated quote would swallow the lines
after it. So each file is split into physical lines with numpy (newline offsets over the raw
bytes, zero-copy into an Arrow array), invalid UTF-8 is located by the decoder's error callback
(called per bad byte sequence, not per line), and fields are split with Arrow kernels: a plain
split on commas for lines without quotes, one RE2 pattern of CSV fields for the rare quoted ones.
The rest is pandas on the pyarrow string dtype; transforms of low-cardinality text (dates,
countries, products, money) run once per distinct value (`pd.factorize`).

A lone carriage return is data (not a line end) here as in the ingestion.

Run it as `python -m orchestration.baseline --sources DIR --out DIR --as-of YYYY-MM-DD`.
"""

from __future__ import annotations

import argparse
import codecs
import csv
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from orchestration.layout import ENTITIES
from orchestration.settings import PROJECT_ROOT

# --- SPEC §1 and §3 reference data ---------------------------------------------------------------

COLUMNS = ENTITIES


def _seed(name: str) -> list[dict[str, str]]:
    """Reference data from the dbt seeds: the one place it is written down."""
    with open(PROJECT_ROOT / "seeds" / f"{name}.csv", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


COUNTRIES = tuple(row["country"] for row in _seed("countries"))
COUNTRY_ALIASES = {row["alias"]: row["country"] for row in _seed("country_aliases")}
PRODUCTS = tuple(row["product"] for row in _seed("products"))
UNKNOWN_COUNTRY = "Unknown"
NULL_TOKENS = ("", "null", "none", "nan", "n/a", "na", "#n/a", "<na>")
BLANKS = " \t\n\r\f"  # what `\s` trims in the SQL (RE2)
CLIENT_RULES = ("malformed_line", "invalid_client_id", "invalid_subscription_date")
PURCHASE_RULES = (
    "malformed_line",
    "invalid_purchase_id",
    "invalid_client_id",
    "unknown_product",
    "invalid_price",
    "invalid_quantity",
    "invalid_purchase_date",
    "future_purchase_date",
    "orphan_purchase",
)
ID_PATTERN = r"[0-9]{1,18}"
QUANTITY_PATTERN = r"[+-]?[0-9]{1,18}(\.0+)?"
MONEY_PATTERN = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)"
MONEY_MAX_DIGITS = 16  # DECIMAL(18,2)
MONEY_MAX_CENTS = 10**18 - 1  # 9999999999999999.99, the largest DECIMAL(18,2)
EMAIL_PATTERN = r"[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}"
DATE_LAYOUTS = (  # (pattern, how to rebuild YYYY-MM-DD from it)
    (r"[0-9]{4}-[0-9]{2}-[0-9]{2}", None),
    (r"[0-9]{4}/[0-9]{2}/[0-9]{2}", "ymd_slash"),
    (r"[0-9]{2}/[0-9]{2}/[0-9]{4}", "dmy_slash"),
    (r"[0-9]{4}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]", "iso_datetime"),
)
CSV_FIELD = r'(?:"(?:[^"]|"")*"|[^,"][^,]*|)'  # quoted (with "" escapes), plain, or empty
RFM_SEGMENTS = {  # (r, f) → segment (SPEC §4)
    **{(r, f): "Hibernating" for r in (1, 2) for f in (1, 2)},
    **{(r, f): "At Risk" for r in (1, 2) for f in (3, 4)},
    **{(r, 5): "Can't Lose Them" for r in (1, 2)},
    **{(3, f): "About to Sleep" for f in (1, 2)},
    (3, 3): "Need Attention",
    **{(r, f): "Loyal Customers" for r in (3, 4) for f in (4, 5)},
    (4, 1): "Promising",
    (5, 1): "New Customers",
    **{(r, f): "Potential Loyalists" for r in (4, 5) for f in (2, 3)},
    **{(5, f): "Champions" for f in (4, 5)},
}

# --- reading: physical lines → fields ------------------------------------------------------------

_BAD_BYTES: list[int] = []


def _note_bad_bytes(error: UnicodeDecodeError) -> tuple[str, int]:
    """Decoder callback: remember where an invalid byte sequence starts, keep decoding."""
    _BAD_BYTES.append(error.start)
    return "\ufffd", error.end


codecs.register_error("baseline_note_bad_bytes", _note_bad_bytes)


def header_columns(path: Path) -> list[str]:
    """The header's column names as ingestion compares them (trimmed, unquoted, lower-case)."""
    with open(path, "rb") as handle:
        first = handle.readline().decode("utf-8-sig", errors="replace").rstrip("\r\n")
    return [name.strip().strip('"').strip().lower() for name in first.split(",")]


def find_batches(folder: Path) -> dict[str, list[Path]]:
    """CSV files per entity, told apart by header, in batch order (file-name order, as ingested)."""
    batches: dict[str, list[Path]] = {entity: [] for entity in COLUMNS}
    for path in sorted(Path(folder).glob("*.csv")):
        header = header_columns(path)
        for entity, columns in COLUMNS.items():
            if sorted(header) == sorted(columns):
                batches[entity].append(path)
    return batches


def _physical_lines(raw: bytes) -> tuple[pa.LargeBinaryArray, np.ndarray]:
    """Every line after the header as Arrow binary (a zero-copy view, newline included), and
    where each starts in `raw`."""
    newlines = np.flatnonzero(np.frombuffer(raw, np.uint8) == 0x0A)
    offsets = np.append(newlines + 1, len(raw)).astype(np.int64)
    lines = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(raw)]
    )
    return lines, offsets[:-1]


def _invalid_utf8(raw: bytes, lines: pa.LargeBinaryArray, starts: np.ndarray) -> np.ndarray:
    """Which lines hold invalid UTF-8: Arrow validates at C++ speed; the decoder locates them."""
    invalid = np.zeros(len(lines), dtype=bool)
    try:
        lines.cast(pa.large_string())
        return invalid
    except pa.ArrowInvalid:
        pass
    _BAD_BYTES.clear()
    raw.decode("utf-8", errors="baseline_note_bad_bytes")
    bad = np.array(_BAD_BYTES, dtype=np.int64)
    bad = bad[bad >= starts[0]]  # the header is checked by ingestion, not here
    invalid[np.searchsorted(starts, bad, side="right") - 1] = True
    return invalid


def _unquote(fields: pa.Array) -> pa.Array:
    """A quoted CSV field without its quotes, with doubled quotes undone."""
    quoted = pc.starts_with(fields, '"')
    inner = pc.replace_substring(pc.utf8_slice_codeunits(fields, 1, -1), '""', '"')
    return pc.if_else(quoted, inner, fields)


def split_fields(text: pa.Array, width: int) -> tuple[list[pa.Array], np.ndarray]:
    """Split lines into `width` fields like the csv module (strict), or flag them malformed.

    Lines without a quote are split on commas (Arrow kernel); lines with one go through one
    anchored RE2 pattern of CSV fields, so an unterminated or misplaced quote does not match.
    """
    has_quote = pc.fill_null(pc.match_substring(text, '"'), False)
    parts = pc.split_pattern(text, ",")
    plain_ok = pc.and_(pc.invert(has_quote), pc.equal(pc.list_value_length(parts), width))
    plain_ok = pc.fill_null(plain_ok, False)
    parts = pc.if_else(plain_ok, parts, pa.scalar(None, parts.type))
    columns = [pc.list_element(parts, i) for i in range(width)]

    quoted_rows = pc.indices_nonzero(has_quote)
    pattern = "^" + ",".join(f"(?P<f{i}>{CSV_FIELD})" for i in range(width)) + "$"
    extracted = pc.extract_regex(pc.take(text, quoted_rows), pattern)
    matched = extracted.is_valid()
    quoted_ok = np.zeros(len(text), dtype=bool)
    quoted_ok[quoted_rows.to_numpy()[matched.to_numpy(zero_copy_only=False)]] = True
    if quoted_ok.any():
        kept = pc.filter(extracted, matched)
        columns = [
            pc.replace_with_mask(column, pa.array(quoted_ok), _unquote(pc.struct_field(kept, i)))
            for i, column in enumerate(columns)
        ]
    ok = plain_ok.to_numpy(zero_copy_only=False) | quoted_ok
    return columns, ~ok


def read_batch(path: Path, entity: str, batch: int) -> pd.DataFrame:
    """One file as text columns (null for a malformed line) with the audit columns."""
    raw = path.read_bytes()
    if not raw.endswith(b"\n"):
        raw += b"\n"  # every line then ends with its newline
    header = header_columns(path)
    lines, starts = _physical_lines(raw)
    row_numbers = np.arange(2, len(starts) + 2)  # the header is line 1
    invalid = _invalid_utf8(raw, lines, starts)
    lines = pc.binary_slice(lines, 0, -1)  # drop the newline
    text = pc.if_else(pa.array(~invalid), lines, pa.scalar(None, pa.large_binary()))
    text = text.cast(pa.large_string())
    text = pc.if_else(pc.ends_with(text, "\r"), pc.utf8_slice_codeunits(text, 0, -1), text)
    blank = pc.fill_null(pc.equal(pc.utf8_length(text), 0), False).to_numpy(zero_copy_only=False)
    keep = ~blank  # blank lines are not rows
    text = pc.filter(text, pa.array(keep))
    fields, malformed = split_fields(text, len(header))
    frame = pd.DataFrame(
        {name: fields[header.index(name)].to_pandas() for name in COLUMNS[entity]},
    )
    frame["_malformed"] = malformed | invalid[keep]
    frame["_raw_line"] = text.to_pandas().where(frame["_malformed"])
    frame["_source_file"] = path.name
    frame["_batch"] = batch
    frame["_row_number"] = row_numbers[keep]
    return frame


def read_entity(paths: list[Path], entity: str) -> pd.DataFrame:
    """All batches of an entity, oldest first (batch = position in file-name order)."""
    frames = [read_batch(path, entity, batch) for batch, path in enumerate(paths, start=1)]
    if not frames:
        audit = ["_malformed", "_raw_line", "_source_file", "_batch", "_row_number"]
        return pd.DataFrame(columns=[*COLUMNS[entity], *audit])
    return pd.concat(frames, ignore_index=True)


# --- cleaning and parsing (vectorized) -----------------------------------------------------------


def clean_text(values: pd.Series) -> pd.Series:
    """Trimmed text; blanks and the null tokens become null (SPEC §3)."""
    trimmed = values.str.strip(BLANKS)
    return trimmed.where(~trimmed.str.lower().isin(NULL_TOKENS))


def per_distinct(values: pd.Series, transform: Callable[[pd.Series], object]):
    """Apply a vectorized transform once per distinct value (null included), then broadcast.

    `transform` returns one array, or a tuple of arrays (then a tuple is returned).
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    distinct = pd.concat(
        [pd.Series(uniques, dtype="str"), pd.Series([None], dtype="str")], ignore_index=True
    )
    positions = np.where(codes < 0, len(uniques), codes)
    results = transform(distinct)
    if isinstance(results, tuple):
        return tuple(np.asarray(result)[positions] for result in results)
    return np.asarray(results)[positions]


def _matches(values: pd.Series, pattern: str) -> np.ndarray:
    return values.str.fullmatch(pattern).fillna(False).to_numpy(dtype=bool)


def _to_int(values: pd.Series, valid: np.ndarray) -> np.ndarray:
    """Integers from digit strings already validated; 0 where not valid."""
    digits = pa.array(values.where(valid, "0").fillna("0"), pa.large_string())
    return pc.cast(digits, pa.int64()).to_numpy()


def parse_id(values: pd.Series) -> np.ndarray:
    """A positive id from 1-18 digits, else 0 (SPEC: `1.0`, `+5`, `1e3` are not ids)."""
    text = clean_text(values)
    ok = _matches(text, ID_PATTERN)
    ids = _to_int(text, ok)
    return np.where(ids >= 1, ids, 0)


def parse_quantity(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(quantity, parsed?) from digits with a sign and an all-zero fraction: `2.0` is 2."""
    ok = _matches(text, QUANTITY_PATTERN)
    whole = text.str.replace(r"\.0+$", "", regex=True).str.lstrip("+")
    negative = whole.str.startswith("-").fillna(False).to_numpy(dtype=bool)
    magnitude = _to_int(whole.str.lstrip("-"), ok)
    return np.where(negative, -magnitude, magnitude), ok


def parse_cents(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(cents, parsed?) of a plain decimal, rounded half away from zero like DECIMAL(18,2)."""
    ok = _matches(text, MONEY_PATTERN)
    negative = text.str.startswith("-").fillna(False).to_numpy(dtype=bool)
    unsigned = text.where(ok, "0").fillna("0").str.lstrip("+-")
    unsigned = unsigned.where(unsigned.str.contains(".", regex=False), unsigned + ".")
    parts = pc.split_pattern(pa.array(unsigned, pa.large_string()), ".", max_splits=1)
    whole = pd.Series(pc.list_element(parts, 0).to_pandas()).str.lstrip("0")
    ok = ok & (whole.str.len() <= MONEY_MAX_DIGITS).to_numpy(dtype=bool)
    whole = whole.where(whole != "", "0")
    fraction = pc.utf8_slice_codeunits(pc.utf8_rpad(pc.list_element(parts, 1), 3, "0"), 0, 3)
    thousandths = pc.cast(fraction, pa.int64()).to_numpy()
    cents = _to_int(whole, ok) * 100 + thousandths // 10 + (thousandths % 10 >= 5)
    return np.where(ok, np.where(negative, -cents, cents), 0), ok


def parse_price(text: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cents, parsed?, valid?) of a price: valid when a plain decimal not negative as written
    (-0.004 is refused although it rounds to 0.00; -0.00 is a zero price)."""
    cents, ok = parse_cents(text)
    return cents, ok, ok & ~_matches(text, r"-.*[1-9].*")


def total_overflows(
    cents: np.ndarray, parsed: np.ndarray, quantity: np.ndarray, quantity_ok: np.ndarray
) -> np.ndarray:
    """|price × quantity| exceeds DECIMAL(18,2), tested without forming the product (int64
    would wrap): b > ⌊M / a⌋ ⟺ a × b > M for positive integers."""
    price, count = np.abs(cents), np.abs(quantity)
    return parsed & quantity_ok & (price > 0) & (count > MONEY_MAX_CENTS // np.maximum(price, 1))


def _iso_text(text: pd.Series, layout: str | None) -> pd.Series:
    """The same date rewritten as YYYY-MM-DD."""
    if layout is None:
        return text
    if layout == "ymd_slash":
        return text.str.replace("/", "-", regex=False)
    if layout == "dmy_slash":
        return text.str.slice(6, 10) + "-" + text.str.slice(3, 5) + "-" + text.str.slice(0, 2)
    return text.str.slice(0, 10)  # iso_datetime, its time already checked by the pattern


def parse_dates(text: pd.Series) -> np.ndarray:
    """Dates from the accepted layouts (impossible calendar dates are NaT)."""
    iso = pd.Series(pd.NA, index=text.index, dtype="str")
    for pattern, layout in DATE_LAYOUTS:
        hit = _matches(text, pattern)
        iso = iso.mask(hit, _iso_text(text, layout))
    # Year 0000 is no calendar year (as in the SQL's parse_date); pandas would read it.
    iso = iso.mask(iso.str.startswith("0000", na=False))
    parsed = pd.to_datetime(iso, format="%Y-%m-%d", errors="coerce")
    return parsed.to_numpy(dtype="datetime64[D]")


def valid_email(text: pd.Series) -> pd.Series:
    lowered = text.str.lower()
    return lowered.where(_matches(lowered, EMAIL_PATTERN))


def canonical_country(text: pd.Series) -> pd.Series:
    """Seed spelling from the name or an alias (trim, collapse blanks, any case); else null."""
    key = clean_text(text).str.replace(r"[ \t\n\r\f]+", " ", regex=True).str.lower()
    lookup = {name.lower(): name for name in COUNTRIES}
    lookup |= {alias.lower(): name for alias, name in COUNTRY_ALIASES.items()}
    return key.map(lookup)


def canonical_product(text: pd.Series) -> pd.Series:
    return clean_text(text).str.lower().map({name.lower(): name for name in PRODUCTS})


def reasons_list(flags: dict[str, np.ndarray]) -> pa.Array:
    """Comma-joined codes of every failing rule, in rule order (null when none fails)."""
    parts = [pc.if_else(pa.array(flag), code, None) for code, flag in flags.items()]
    joined = pc.binary_join_element_wise(*parts, ",", null_handling="skip")
    return pc.if_else(pc.equal(joined, ""), None, joined)


def first_reason(flags: dict[str, np.ndarray]) -> np.ndarray:
    """The first failing rule in SPEC order, else None."""
    return np.select(list(flags.values()), list(flags), default=None).astype(object)


# --- silver (SPEC §3) ----------------------------------------------------------------------------


@dataclass
class Entity:
    """An entity's silver rows, its quarantine, and (clients) the rows passing rules 1-3."""

    silver: pd.DataFrame
    quarantine: pd.DataFrame
    bronze_rows: int
    valid_copies: pd.DataFrame = field(default_factory=pd.DataFrame)

    def reasons(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.quarantine["reject_reason"].value_counts().items()}


def _survivors(candidates: pd.DataFrame, key: str, newest_first: bool) -> pd.Index:
    """Index of the one kept copy per key: by batch (newest or oldest), then line order."""
    ordered = candidates.sort_values(
        ["_batch", "_row_number"], ascending=[not newest_first, True], kind="stable"
    )
    return ordered.index[~ordered[key].duplicated()]


def _quarantine(
    raw: pd.DataFrame, rejected: np.ndarray, flags: dict[str, np.ndarray], reasons: np.ndarray
) -> pd.DataFrame:
    columns = [c for c in raw.columns if not c.startswith("_")]
    kept = [*columns, "_source_file", "_row_number", "_raw_line"]
    quarantine = raw.loc[rejected, kept].reset_index(drop=True)
    quarantine.insert(0, "reject_reason", reasons[rejected])
    subset = {code: flag[rejected] for code, flag in flags.items()}
    quarantine.insert(1, "reject_reasons", reasons_list(subset).to_pandas())
    return quarantine


def silver_clients(raw: pd.DataFrame, as_of: np.datetime64) -> Entity:
    """stg clients: rules 1-4 in order, newest batch wins, fixes flagged."""
    malformed = raw["_malformed"].to_numpy(dtype=bool)
    client_id = parse_id(raw["id_client"])
    subscribed = per_distinct(raw["subscription_date"], lambda s: parse_dates(clean_text(s)))
    rules = {
        "malformed_line": malformed,
        "invalid_client_id": ~malformed & (client_id == 0),
        "invalid_subscription_date": ~malformed & np.isnat(subscribed),
    }
    passing = ~np.logical_or.reduce(list(rules.values()))
    frame = raw.assign(client_id=client_id)
    survivors = _survivors(frame.loc[passing], "client_id", newest_first=True)
    kept = frame.index.isin(survivors)
    survivor_ids = frame.loc[survivors, "client_id"]
    flags = {**rules, "duplicate_client": np.isin(client_id, survivor_ids) & ~kept}
    reasons = first_reason({**rules, "duplicate_client": passing & ~kept})

    country = per_distinct(raw["country"], canonical_country)
    email = valid_email(clean_text(raw.loc[kept, "email"]))
    silver = pd.DataFrame(
        {
            "client_id": client_id[kept],
            "name": clean_text(raw.loc[kept, "name"]).to_numpy(),
            "email": email.to_numpy(),
            "subscription_date": np.minimum(subscribed[kept], as_of),
            "country": pd.Series(country[kept]).fillna(UNKNOWN_COUNTRY).to_numpy(),
            "is_subscription_date_capped": subscribed[kept] > as_of,
            "has_invalid_email": email.isna().to_numpy(),
            "has_unknown_country": pd.isna(country[kept]),
            "_source_file": raw.loc[kept, "_source_file"].to_numpy(),
            "_row_number": raw.loc[kept, "_row_number"].to_numpy(),
        }
    )
    copies = silver.groupby("email")["client_id"].transform("size")
    silver.insert(7, "has_shared_email", (copies > 1).fillna(False).to_numpy(dtype=bool))
    valid_copies = pd.DataFrame(
        {
            "client_id": client_id[passing],
            "country": pd.Series(country[passing]).fillna(UNKNOWN_COUNTRY).to_numpy(),
            "_batch": raw.loc[passing, "_batch"].to_numpy(),
            "_row_number": raw.loc[passing, "_row_number"].to_numpy(),
        }
    )
    rejected = ~kept
    return Entity(
        silver, _quarantine(raw, rejected, flags, reasons), len(raw), valid_copies=valid_copies
    )


def silver_purchases(raw: pd.DataFrame, client_ids: np.ndarray, as_of: np.datetime64) -> Entity:
    """stg purchases: rules 1-10 in order, oldest valid copy wins, total checked."""
    malformed = raw["_malformed"].to_numpy(dtype=bool)
    purchase_id = parse_id(raw["id_purchase"])
    client_id = parse_id(raw["id_client"])
    product = per_distinct(raw["product"], canonical_product)
    price, price_parsed, price_ok = per_distinct(raw["price"], lambda s: parse_price(clean_text(s)))
    quantity, quantity_ok = per_distinct(raw["quantity"], lambda s: parse_quantity(clean_text(s)))
    bought = per_distinct(raw["purchase_date"], lambda s: parse_dates(clean_text(s)))
    total, total_ok = per_distinct(raw["total"], lambda s: parse_cents(clean_text(s)))
    well_formed = ~malformed
    rules = {
        "malformed_line": malformed,
        "invalid_purchase_id": well_formed & (purchase_id == 0),
        "invalid_client_id": well_formed & (client_id == 0),
        "unknown_product": well_formed & pd.isna(product),
        "invalid_price": well_formed & ~(price_ok & (price >= 0)),
        # Also a quantity that makes the total too large for DECIMAL(18,2) (the models' choice).
        "invalid_quantity": well_formed
        & (
            ~(quantity_ok & (quantity >= 1))
            | total_overflows(price, price_parsed, quantity, quantity_ok)
        ),
        "invalid_purchase_date": well_formed & np.isnat(bought),
        "future_purchase_date": ~np.isnat(bought) & (bought > as_of),
        "orphan_purchase": well_formed & (client_id > 0) & ~np.isin(client_id, client_ids),
    }
    passing = ~np.logical_or.reduce(list(rules.values()))
    frame = raw.assign(purchase_id=purchase_id)
    survivors = _survivors(frame.loc[passing], "purchase_id", newest_first=False)
    kept = frame.index.isin(survivors)
    survivor_ids = frame.loc[survivors, "purchase_id"]
    flags = {**rules, "duplicate_purchase": np.isin(purchase_id, survivor_ids) & ~kept}
    reasons = first_reason({**rules, "duplicate_purchase": passing & ~kept})

    computed = price[kept] * quantity[kept]
    recalculated = ~total_ok[kept] | (np.abs(total[kept] - computed) > 1)
    silver = pd.DataFrame(
        {
            "purchase_id": purchase_id[kept],
            "client_id": client_id[kept],
            "product": product[kept],
            "price_cents": price[kept],
            "quantity": quantity[kept],
            "purchase_date": bought[kept],
            "total_cents": np.where(recalculated, computed, total[kept]),
            "is_total_recalculated": recalculated,
            "_source_file": raw.loc[kept, "_source_file"].to_numpy(),
            "_row_number": raw.loc[kept, "_row_number"].to_numpy(),
        }
    )
    return Entity(silver, _quarantine(raw, ~kept, flags, reasons), len(raw))


# --- gold (SPEC §4) ------------------------------------------------------------------------------


def exact_ratio(numerator, denominator, multiplier: int = 1, scale: int = 2) -> pd.Series:
    """round(multiplier × n / d, scale) half away from zero, in integer arithmetic, as DECIMAL.

    Null where the denominator is 0 or null (a zero base, a first period).
    """
    n = pd.Series(numerator).astype("Int64").to_numpy(dtype=np.int64, na_value=0)
    d_series = pd.Series(denominator).astype("Int64")
    d = d_series.to_numpy(dtype=np.int64, na_value=0)
    safe = np.where(d == 0, 1, d)
    units = (2 * np.abs(n) * multiplier * 10**scale + np.abs(safe)) // (2 * np.abs(safe))
    units = np.sign(n) * np.sign(safe) * units
    return decimal_series(units, scale, valid=(d != 0))


def money_avg(cents, count) -> pd.Series:
    return exact_ratio(cents, pd.Series(count).astype("Int64") * 100)


def decimal_series(units: np.ndarray, scale: int = 2, valid: np.ndarray | None = None) -> pd.Series:
    """Integer units (cents for money) as a DECIMAL(18, scale) column, exactly."""
    mask = None if valid is None else ~np.asarray(valid, dtype=bool)
    whole = pa.array(np.asarray(units, dtype=np.int64), mask=mask).cast(pa.decimal128(19, 0))
    step = pa.scalar(Decimal(1).scaleb(-scale), pa.decimal128(scale + 1, scale))
    exact = pc.multiply(whole, step).cast(pa.decimal128(18, scale))
    return pd.Series(exact, dtype=pd.ArrowDtype(exact.type))


def dim_dates(first: np.datetime64, last: np.datetime64) -> pd.DataFrame:
    """The calendar attributes of every day from first to last (ISO weeks, Monday = 1)."""
    days = pd.Series(pd.date_range(first, last, freq="D"), name="date_day")
    iso = days.dt.isocalendar()
    return pd.DataFrame(
        {
            "date_day": days.to_numpy(dtype="datetime64[D]"),
            "year": days.dt.year,
            "quarter": days.dt.quarter,
            "month": days.dt.month,
            "year_month": days.dt.strftime("%Y-%m"),
            "iso_year": iso["year"].astype("int64"),
            "iso_week": iso["week"].astype("int64"),
            "iso_year_week": iso["year"].astype(str) + "-W" + iso["week"].astype(str).str.zfill(2),
            "iso_day_of_week": iso["day"].astype("int64"),
            "day_name": days.dt.day_name(),
            "week_start_date": (days - pd.to_timedelta(days.dt.day_of_week, unit="D")).to_numpy(
                dtype="datetime64[D]"
            ),
            "month_start_date": days.dt.to_period("M").dt.start_time.to_numpy(
                dtype="datetime64[D]"
            ),
        }
    )


def client_versions(
    valid_copies: pd.DataFrame, silver_ids: np.ndarray, ingested_on: np.datetime64
) -> pd.DataFrame:
    """SCD2 versions of silver clients: the first line of each batch, a new one per country change.

    Every batch starts its versions on `ingested_on` (the files are read today, as ingestion
    would land them today).
    """
    firsts = valid_copies.sort_values(["client_id", "_batch", "_row_number"], kind="stable")
    firsts = firsts.drop_duplicates(["client_id", "_batch"])
    previous = firsts.groupby("client_id")["country"].shift()
    changes = firsts.loc[previous.isna() | (previous != firsts["country"])]
    changes = changes.loc[np.isin(changes["client_id"], silver_ids)].copy()
    changes["version_number"] = changes.groupby("client_id").cumcount() + 1
    changes["valid_from"] = ingested_on
    return changes[["client_id", "version_number", "country", "valid_from"]]


def fct_sales(purchases: pd.DataFrame, clients: pd.DataFrame, versions: pd.DataFrame):
    """One row per silver purchase with the client's country at purchase time and the calendar."""
    sales = purchases.merge(
        clients[["client_id", "subscription_date", "country"]].rename(
            columns={"country": "client_country"}
        ),
        on="client_id",
        how="inner",
    )
    ordered = versions.sort_values(["valid_from", "version_number"], kind="stable")
    sales = pd.merge_asof(
        sales.sort_values("purchase_date", kind="stable"),
        ordered[["client_id", "valid_from", "country"]],
        left_on="purchase_date",
        right_on="valid_from",
        by="client_id",
        direction="backward",
    )
    first_version = versions.loc[versions["version_number"] == 1].set_index("client_id")["country"]
    sales["country"] = (
        sales["country"]
        .fillna(sales["client_id"].map(first_version))
        .fillna(sales["client_country"])
    )
    calendar = dim_dates(sales["purchase_date"].min(), sales["purchase_date"].max())
    sales = sales.merge(calendar, left_on="purchase_date", right_on="date_day", how="left")
    tenure = sales["purchase_date"] - sales["subscription_date"]
    sales["customer_tenure_days"] = tenure.dt.days
    return sales.drop(columns=["valid_from", "client_country", "date_day", "subscription_date"])


def mask_email(emails: pd.Series) -> pd.Series:
    """j***@example.com: gold never shows a raw e-mail (SPEC §4)."""
    domain = pc.list_element(pc.split_pattern(pa.array(emails, pa.large_string()), "@"), 1)
    return emails.str.slice(0, 1) + "***@" + pd.Series(domain.to_pandas(), index=emails.index)


def _score(values: pd.Series, higher_is_better: bool, purchasing: int) -> np.ndarray:
    """ceil(5 k / N), k = clients at most as good (ties share the highest rank)."""
    goodness = values if higher_is_better else -values
    k = goodness.rank(method="max").to_numpy(dtype=np.int64)
    return (5 * k + purchasing - 1) // purchasing


def client_kpis(sales: pd.DataFrame, clients: pd.DataFrame, as_of: np.datetime64) -> pd.DataFrame:
    """One row per silver client: purchase KPIs, recency, value flags, RFM scores and segment."""
    per_client = sales.groupby("client_id").agg(
        total_purchases=("purchase_id", "size"),
        spent_cents=("total_cents", "sum"),
        min_order_cents=("total_cents", "min"),
        max_order_cents=("total_cents", "max"),
        total_quantity=("quantity", "sum"),
        first_purchase_date=("purchase_date", "min"),
        last_purchase_date=("purchase_date", "max"),
    )
    as_of_ts = pd.Timestamp(as_of)
    per_client["customer_lifetime_days"] = (as_of_ts - per_client["first_purchase_date"]).dt.days
    per_client["days_since_last_purchase"] = (as_of_ts - per_client["last_purchase_date"]).dt.days
    n = len(per_client)
    per_client["r_score"] = _score(per_client["days_since_last_purchase"], False, n)
    per_client["f_score"] = _score(per_client["total_purchases"], True, n)
    per_client["m_score"] = _score(per_client["spent_cents"], True, n)
    segment = pd.Series(RFM_SEGMENTS)
    keys = pd.MultiIndex.from_arrays([per_client["r_score"], per_client["f_score"]])
    per_client["rfm_segment"] = segment.reindex(keys).to_numpy()
    median = per_client["spent_cents"].median()

    kpis = clients[["client_id", "name", "email", "country"]].merge(
        per_client, on="client_id", how="left"
    )
    purchases = kpis["total_purchases"].fillna(0).astype("int64")
    spent = kpis["spent_cents"].fillna(0).astype("int64")
    recency = kpis["days_since_last_purchase"]
    high_value = (kpis["spent_cents"] > median).fillna(False)
    active = (recency <= 90).fillna(False)
    return pd.DataFrame(
        {
            "client_id": kpis["client_id"],
            "name": kpis["name"],
            "email_masked": mask_email(kpis["email"]),
            "country": kpis["country"],
            "total_purchases": purchases,
            "total_spent": decimal_series(spent.to_numpy()),
            "avg_order_value": money_avg(kpis["spent_cents"], kpis["total_purchases"]),
            "min_order_value": decimal_series(
                kpis["min_order_cents"].fillna(0).to_numpy(), valid=kpis["min_order_cents"].notna()
            ),
            "max_order_value": decimal_series(
                kpis["max_order_cents"].fillna(0).to_numpy(), valid=kpis["max_order_cents"].notna()
            ),
            "total_quantity": kpis["total_quantity"].fillna(0).astype("int64"),
            "first_purchase_date": kpis["first_purchase_date"],
            "last_purchase_date": kpis["last_purchase_date"],
            "customer_lifetime_days": kpis["customer_lifetime_days"].astype("Int64"),
            "purchase_frequency_per_month": exact_ratio(
                30 * kpis["total_purchases"].astype("Int64"),
                kpis["customer_lifetime_days"].clip(lower=30).astype("Int64"),
            ),
            "days_since_last_purchase": recency.astype("Int64"),
            "is_active": active,
            "is_high_value": high_value,
            "is_at_risk": high_value & (recency > 90).fillna(False),
            "r_score": kpis["r_score"].astype("Int64"),
            "f_score": kpis["f_score"].astype("Int64"),
            "m_score": kpis["m_score"].astype("Int64"),
            "rfm_segment": kpis["rfm_segment"].fillna("No Purchases"),
        }
    )


def product_analytics(sales: pd.DataFrame) -> pd.DataFrame:
    """Per product with sales: volumes, unit-price statistics, share, top 3 countries."""
    per_product = sales.groupby("product").agg(
        total_quantity_sold=("quantity", "sum"),
        revenue_cents=("total_cents", "sum"),
        total_orders=("purchase_id", "size"),
        unique_customers=("client_id", "nunique"),
        price_cents=("price_cents", "sum"),
        min_price_cents=("price_cents", "min"),
        max_price_cents=("price_cents", "max"),
    )
    by_country = sales.groupby(["product", "country"], as_index=False)["total_cents"].sum()
    by_country = by_country.sort_values(
        ["product", "total_cents", "country"], ascending=[True, False, True]
    )
    top = by_country.groupby("product").head(3).groupby("product")["country"].agg(", ".join)
    per_product = per_product.reset_index()
    return pd.DataFrame(
        {
            "product": per_product["product"],
            "total_quantity_sold": per_product["total_quantity_sold"],
            "total_revenue": decimal_series(per_product["revenue_cents"].to_numpy()),
            "total_orders": per_product["total_orders"],
            "unique_customers": per_product["unique_customers"],
            "avg_price": money_avg(per_product["price_cents"], per_product["total_orders"]),
            "min_price": decimal_series(per_product["min_price_cents"].to_numpy()),
            "max_price": decimal_series(per_product["max_price_cents"].to_numpy()),
            "avg_quantity_per_order": exact_ratio(
                per_product["total_quantity_sold"], per_product["total_orders"]
            ),
            "market_share_pct": exact_ratio(
                per_product["revenue_cents"],
                np.full(len(per_product), per_product["revenue_cents"].sum()),
                multiplier=100,
            ),
            "top_countries": per_product["product"].map(top).to_numpy(),
        }
    )


def country_analytics(sales: pd.DataFrame) -> pd.DataFrame:
    """Per client country (at purchase time): revenue, customers, orders, averages, share."""
    per_country = (
        sales.groupby("country")
        .agg(
            revenue_cents=("total_cents", "sum"),
            unique_customers=("client_id", "nunique"),
            total_orders=("purchase_id", "size"),
            total_quantity=("quantity", "sum"),
        )
        .reset_index()
    )
    revenue = per_country["revenue_cents"]
    return pd.DataFrame(
        {
            "country": per_country["country"],
            "total_revenue": decimal_series(revenue.to_numpy()),
            "unique_customers": per_country["unique_customers"],
            "total_orders": per_country["total_orders"],
            "total_quantity": per_country["total_quantity"],
            "avg_order_value": money_avg(revenue, per_country["total_orders"]),
            "avg_revenue_per_customer": money_avg(revenue, per_country["unique_customers"]),
            "market_share_pct": exact_ratio(
                revenue, np.full(len(per_country), revenue.sum()), multiplier=100
            ),
        }
    )


def _period_totals(sales: pd.DataFrame, key: str, spine: pd.Index) -> pd.DataFrame:
    """Sums and counts per period, zero-filled over the spine, with the previous period's."""
    totals = (
        sales.groupby(key)
        .agg(
            revenue_cents=("total_cents", "sum"),
            total_orders=("purchase_id", "size"),
            unique_customers=("client_id", "nunique"),
            total_quantity=("quantity", "sum"),
        )
        .reindex(spine, fill_value=0)
    )
    totals.index.name = key
    return totals


def _growth_columns(totals: pd.DataFrame, customers: bool) -> dict[str, pd.Series]:
    previous = totals.shift()
    columns = {
        "revenue_growth_pct": exact_ratio(
            totals["revenue_cents"] - previous["revenue_cents"],
            previous["revenue_cents"],
            multiplier=100,
        ),
        "orders_growth_pct": exact_ratio(
            totals["total_orders"] - previous["total_orders"],
            previous["total_orders"],
            multiplier=100,
        ),
    }
    if customers:
        columns["customers_growth_pct"] = exact_ratio(
            totals["unique_customers"] - previous["unique_customers"],
            previous["unique_customers"],
            multiplier=100,
        )
    return columns


def _measures(totals: pd.DataFrame) -> dict[str, object]:
    return {
        "total_revenue": decimal_series(totals["revenue_cents"].to_numpy()),
        "total_orders": totals["total_orders"].to_numpy(),
        "unique_customers": totals["unique_customers"].to_numpy(),
        "total_quantity": totals["total_quantity"].to_numpy(),
        "avg_order_value": money_avg(totals["revenue_cents"], totals["total_orders"]),
    }


def sales_daily(sales: pd.DataFrame) -> pd.DataFrame:
    """Every calendar day from the first to the last sale, growth and 7/28-day moving averages."""
    spine = pd.date_range(sales["purchase_date"].min(), sales["purchase_date"].max(), freq="D")
    totals = _period_totals(sales, "purchase_date", spine)
    columns: dict[str, object] = {"sale_date": spine.to_numpy(dtype="datetime64[D]")}
    columns |= _measures(totals) | _growth_columns(totals, customers=False)
    for days in (7, 28):
        window = totals[["revenue_cents", "total_orders"]].rolling(days, min_periods=1).sum()
        count = np.minimum(np.arange(1, len(totals) + 1), days)
        columns[f"revenue_{days}d_avg"] = money_avg(window["revenue_cents"].astype("int64"), count)
        columns[f"orders_{days}d_avg"] = exact_ratio(window["total_orders"].astype("int64"), count)
    columns["is_partial_period"] = np.zeros(len(spine), dtype=bool)
    return pd.DataFrame(columns).reset_index(drop=True)


def sales_weekly(sales: pd.DataFrame) -> pd.DataFrame:
    """ISO weeks (Monday start) from the first sale's week to the last's, zero-filled."""
    first, last = sales["purchase_date"].min(), sales["purchase_date"].max()
    spine = pd.date_range(
        first - pd.Timedelta(days=first.weekday()),
        last - pd.Timedelta(days=last.weekday()),
        freq="7D",
    )
    totals = _period_totals(sales, "week_start_date", spine)
    iso = pd.Series(spine).dt.isocalendar()
    week_end = spine + pd.Timedelta(days=6)
    columns: dict[str, object] = {
        "week_start_date": spine.to_numpy(dtype="datetime64[D]"),
        "iso_year_week": (iso["year"].astype(str) + "-W" + iso["week"].astype(str).str.zfill(2)),
        "week_end_date": week_end.to_numpy(dtype="datetime64[D]"),
    }
    columns |= _measures(totals) | _growth_columns(totals, customers=True)
    columns["is_partial_period"] = (spine < first) | (week_end > last)
    return pd.DataFrame(columns).reset_index(drop=True)


def sales_monthly(sales: pd.DataFrame) -> pd.DataFrame:
    """Calendar months from the first sale's to the last's, zero-filled, per-customer revenue."""
    first, last = sales["purchase_date"].min(), sales["purchase_date"].max()
    spine = pd.date_range(first.to_period("M").start_time, last, freq="MS")
    totals = _period_totals(sales, "month_start_date", spine)
    month_end = spine + pd.offsets.MonthEnd(0)
    columns: dict[str, object] = {
        "year_month": spine.strftime("%Y-%m"),
        "month_start_date": spine.to_numpy(dtype="datetime64[D]"),
        "month_end_date": month_end.to_numpy(dtype="datetime64[D]"),
    }
    columns |= _measures(totals)
    columns["avg_revenue_per_customer"] = money_avg(
        totals["revenue_cents"], totals["unique_customers"]
    )
    columns |= _growth_columns(totals, customers=True)
    columns["is_partial_period"] = (spine < first) | (month_end > last)
    return pd.DataFrame(columns).reset_index(drop=True)


# --- the whole baseline --------------------------------------------------------------------------


def _money_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Integer-cent columns as DECIMAL(18,2) named without the suffix, for the Parquet files."""
    frame = frame.copy()
    for column in [c for c in frame.columns if c.endswith("_cents")]:
        frame[column.removesuffix("_cents")] = decimal_series(frame.pop(column).to_numpy())
    return frame


@dataclass
class BaselineResult:
    stages: dict[str, dict[str, float]] = field(default_factory=dict)
    bronze_rows: dict[str, int] = field(default_factory=dict)
    silver_rows: dict[str, int] = field(default_factory=dict)
    quarantine: dict[str, dict[str, int]] = field(default_factory=dict)
    gold_rows: dict[str, int] = field(default_factory=dict)
    rows_written: int = 0
    checks: dict[str, object] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


@contextmanager
def _timed(stages: dict[str, dict[str, float]], name: str) -> Iterator[None]:
    """Record a stage like the flow's summary does: start (epoch) and seconds."""
    started_at, started = time.time(), time.monotonic()
    try:
        yield
    finally:
        stages[name] = {"started_at": started_at, "seconds": round(time.monotonic() - started, 3)}


def run_baseline(
    sources: Path, out: Path, as_of: date, ingested_on: date | None = None
) -> BaselineResult:
    """Read every CSV of `sources`, build silver and gold, write them as Parquet under `out`."""
    result = BaselineResult()
    as_of_day = np.datetime64(as_of, "D")
    ingested = np.datetime64(ingested_on or datetime.now(UTC).date(), "D")
    with _timed(result.stages, "read"):
        batches = find_batches(sources)
        raw = {entity: read_entity(paths, entity) for entity, paths in batches.items()}
    with _timed(result.stages, "silver"):
        clients = silver_clients(raw["clients"], as_of_day)
        purchases = silver_purchases(
            raw["purchases"], clients.silver["client_id"].to_numpy(), as_of_day
        )
        del raw
    with _timed(result.stages, "gold"):
        versions = client_versions(clients.valid_copies, clients.silver["client_id"], ingested)
        sales = fct_sales(purchases.silver, clients.silver, versions)
        gold = {
            "fct_sales": sales,
            "rpt_client_kpis": client_kpis(sales, clients.silver, as_of_day),
            "rpt_product_analytics": product_analytics(sales),
            "rpt_country_analytics": country_analytics(sales),
            "rpt_sales_daily": sales_daily(sales),
            "rpt_sales_weekly": sales_weekly(sales),
            "rpt_sales_monthly": sales_monthly(sales),
        }
    with _timed(result.stages, "write"):
        out.mkdir(parents=True, exist_ok=True)
        outputs = {
            "stg_clients": clients.silver,
            "stg_clients_quarantine": clients.quarantine,
            "stg_purchases": _money_columns(purchases.silver),
            "stg_purchases_quarantine": purchases.quarantine,
            **gold,
            "fct_sales": _money_columns(sales),
        }
        for name, frame in outputs.items():
            frame.to_parquet(out / f"{name}.parquet", index=False, compression="zstd")
    result.rows_written = sum(len(frame) for frame in outputs.values())
    for name, entity in (("clients", clients), ("purchases", purchases)):
        result.bronze_rows[name] = entity.bronze_rows
        result.silver_rows[name] = len(entity.silver)
        result.quarantine[name] = entity.reasons()
    result.gold_rows = {name: len(frame) for name, frame in gold.items()}
    result.checks = gold_checks(sales, gold["rpt_client_kpis"])
    return result


def gold_checks(sales: pd.DataFrame, kpis: pd.DataFrame) -> dict[str, object]:
    """A few gold figures the bench compares with the pipeline's exports."""
    by_country = sales.groupby("country")["total_cents"].sum()
    return {
        "revenue_cents": int(sales["total_cents"].sum()),
        "revenue_cents_by_country": {str(k): int(v) for k, v in by_country.items()},
        "rfm_segments": {str(k): int(v) for k, v in kpis["rfm_segment"].value_counts().items()},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sources", type=Path, required=True, help="folder of CSV files")
    parser.add_argument("--out", type=Path, required=True, help="folder for the Parquet files")
    parser.add_argument("--as-of", type=date.fromisoformat, required=True)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    result = run_baseline(args.sources, args.out, args.as_of)
    document = json.dumps(result.as_dict(), indent=2)
    if args.json:
        args.json.write_text(document + "\n", encoding="utf-8")
    print(document)


if __name__ == "__main__":
    main()
