"""Ingestion: landing area (`sources`) → immutable bronze (SPEC §2).

Each accepted file lands twice in bronze, both immutable and named by its content hash:
- the raw CSV, byte for byte (`bronze/<entity>/ingest_date=…/<entity>__<ts>__<sha12>.csv`);
- its line-split twin (`bronze/_parsed/<same path>.parquet`): one row per physical line, every
  column as text in canonical order, with `_source_file`, `_ingested_at`, `_row_number`, and for a
  structurally broken line `_malformed_error` and `_raw_line` instead of fields.

Splitting lines here, once, is what lets silver keep every broken line with its line number
(DuckDB's CSV rejects tables are per connection and invisible to other models) and gives every
engine the same input. A record is one physical line: a quote may protect a comma, never a newline.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from orchestration.layout import BRONZE_NAME, ENTITIES, PARSED_PREFIX, bronze_key, parsed_key
from orchestration.storage import Lake

CHUNK_BYTES = 32 * 1024 * 1024


class RefusedFile(Exception):
    """A file that cannot land in bronze at all (SPEC §2); the message says why."""


@dataclass
class Landed:
    source: str
    entity: str
    bronze_key: str
    rows: int
    malformed: int


@dataclass
class IngestReport:
    landed: list[Landed] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (file, why)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {
            "landed": [vars(item) for item in self.landed],
            "skipped": [{"file": f, "reason": r} for f, r in self.skipped],
            "refused": [{"file": f, "reason": r} for f, r in self.refused],
            "seconds": round(self.seconds, 3),
        }


# --- file checks ---------------------------------------------------------------------------


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(8 * 1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def classify(path: Path, name: str) -> tuple[str, list[str]]:
    """Return (entity, header columns as written) or raise RefusedFile naming the problem."""
    with open(path, "rb") as handle:
        head = handle.read(64 * 1024)
    if not head:
        raise RefusedFile(f"{name}: empty file (0 bytes)")
    if head.startswith(b"\x1f\x8b"):
        raise RefusedFile(f"{name}: gzip-compressed, not a CSV text file; decompress it first")
    if head.startswith(b"PK\x03\x04"):
        raise RefusedFile(f"{name}: a zip archive, not a CSV text file; extract it first")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise RefusedFile(f"{name}: UTF-16 text; save it as UTF-8 and ingest it again")
    if b"\x00" in head:
        raise RefusedFile(f"{name}: binary content (NUL bytes), not a CSV text file")
    first = head.split(b"\n", 1)[0].rstrip(b"\r")
    if first.startswith(codecs.BOM_UTF8):
        first = first[len(codecs.BOM_UTF8) :]
    try:
        header_text = first.decode("utf-8")
    except UnicodeDecodeError:
        raise RefusedFile(
            f"{name}: the header line is not UTF-8 text (another encoding, or not text at all); "
            "save the file as UTF-8"
        ) from None
    columns = [c.strip().strip('"').strip().lower() for c in header_text.split(",")]
    for entity, expected in ENTITIES.items():
        if sorted(columns) == sorted(expected):
            if len(head.split(b"\n", 1)) < 2 or not head.split(b"\n", 1)[1].strip():
                raise RefusedFile(f"{name}: header only, no data rows")
            return entity, columns
    best = min(ENTITIES, key=lambda e: len(set(ENTITIES[e]) ^ set(columns)))
    missing = [c for c in ENTITIES[best] if c not in columns]
    extra = [c for c in columns if c not in ENTITIES[best]]
    details = "; ".join(
        part
        for part in (
            f"missing {', '.join(missing)}" if missing else "",
            f"unexpected {', '.join(extra)}" if extra else "",
        )
        if part
    )
    raise RefusedFile(
        f"{name}: wrong header {header_text[:200]!r} — expected the columns of {best} "
        f"({', '.join(ENTITIES[best])}): {details or 'duplicated columns'}"
    )


# --- line splitting ------------------------------------------------------------------------
#
# Everything below is vectorized: numpy finds the line breaks, Arrow splits the fields, and
# Python only looks at the few lines that are not plain (quoted fields, invalid bytes, wrong
# field counts). A 10-million-line file splits in seconds, with bounded memory (one chunk of
# whole lines at a time, a couple of chunks in flight on the worker threads).


def _iter_chunks(path: Path, skip_header: bool = True) -> Iterator[tuple[int, bytes]]:
    """Yield (line number of the chunk's first line, bytes of whole lines)."""
    with open(path, "rb") as handle:
        line_number = 1
        carry = b""
        if skip_header:
            handle.readline()
            line_number = 2
        while True:
            block = handle.read(CHUNK_BYTES)
            if not block:
                if carry:
                    yield line_number, carry
                return
            block = carry + block
            cut = block.rfind(b"\n")
            if cut < 0:
                carry = block
                continue
            whole, carry = block[:cut], block[cut + 1 :]
            yield line_number, whole
            line_number += whole.count(b"\n") + 1


def _split_quoted(line: str, width: int) -> tuple[list[str] | None, str | None]:
    try:
        rows = list(csv.reader([line], strict=True))
    except csv.Error as exc:
        return None, f"bad quoting ({exc})"
    fields = rows[0] if rows else []
    if len(fields) != width:
        return None, f"expected {width} fields, found {len(fields)}"
    return fields, None


def _line_bounds(chunk: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The chunk's bytes, and start and end offsets of every line (end excludes the line break
    and one CR before it)."""
    data = np.frombuffer(chunk, dtype=np.uint8)
    breaks = np.flatnonzero(data == 10)
    starts = np.concatenate(([0], breaks + 1)).astype(np.int64)
    ends = np.concatenate((breaks, [len(data)])).astype(np.int64)
    nonempty = ends > starts
    last = np.where(nonempty, ends - 1, 0)
    has_cr = nonempty & (data[last] == 13) if len(data) else nonempty
    return data, starts, ends - has_cr


def _lines_of(positions: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Index of the line holding each byte position (positions sorted)."""
    return np.searchsorted(starts, positions, side="right") - 1


def _invalid_lines(chunk: bytes, data: np.ndarray, starts: np.ndarray, ends: np.ndarray):
    """Indexes of the lines holding invalid UTF-8. Only lines with a byte >= 0x80 can (ASCII is
    valid UTF-8), so only those few are decoded one by one."""
    high = np.flatnonzero(data >= 0x80)
    if not len(high):
        return np.zeros(0, dtype=np.int64)
    bad = []
    for index in np.unique(_lines_of(high, starts)).tolist():
        try:
            chunk[starts[index] : ends[index]].decode("utf-8")
        except UnicodeDecodeError:
            bad.append(index)
    return np.array(bad, dtype=np.int64)


def _slices(buffer: bytearray, starts: np.ndarray, ends: np.ndarray, valid: np.ndarray) -> pa.Array:
    """Byte slices [start, end) of the buffer as one Arrow string array (null where not `valid`),
    without a Python object per value: offsets interleave starts and ends over the buffer
    (values alternate slice / gap), and taking the even values copies the slices out once."""
    count = len(starts)
    small = len(buffer) < 2**31 - 1  # the twin's columns are plain strings (int32 offsets)
    offsets = np.empty(2 * count + 1, dtype=np.int32 if small else np.int64)
    offsets[0:-1:2] = starts
    offsets[1::2] = ends
    offsets[-1] = len(buffer)
    kind = pa.string() if small else pa.large_string()
    both = pa.Array.from_buffers(
        kind, 2 * count, [None, pa.py_buffer(offsets), pa.py_buffer(buffer)]
    )
    taken = both.take(pa.array(np.arange(0, 2 * count, 2, dtype=np.int64)))
    validity = pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(kind, count, [validity, *taken.buffers()[1:]])


def _sparse(count: int, values: dict[int, str]) -> pa.Array:
    """A mostly-null string column with `values` at their indexes."""
    if not values:
        return pa.nulls(count, pa.string())
    column: list[str | None] = [None] * count
    for index, value in values.items():
        column[index] = value
    return pa.array(column, pa.string())


def split_lines(
    chunk: bytes,
    first_line: int,
    header: list[str],
    entity: str,
    source_file: str,
    ingested_at: datetime,
) -> pa.Table:
    """Split a chunk of whole CSV lines into rows of the parsed twin, in line order.

    numpy finds line breaks, commas, quotes and non-ASCII bytes in the raw bytes; a plain line
    (no quote, valid UTF-8, the right number of commas) is cut at its commas without ever
    becoming a Python object. The few other lines are looked at one by one: the csv module
    (strict quoting) parses a quoted line, and its fields are written back over the line's own
    bytes (they are never longer), so every field is a slice of one buffer; a broken line gets
    its error and raw text instead.
    """
    width = len(header)
    buffer = bytearray(chunk)
    data, starts, ends = _line_bounds(chunk)
    keep = ends > starts  # blank lines are not rows
    if not keep.all():
        starts, ends = starts[keep], ends[keep]
    line_numbers = np.arange(first_line, first_line + len(keep), dtype=np.int64)[keep]
    count = len(starts)
    bad = np.zeros(count, dtype=bool)
    bad[_invalid_lines(chunk, data, starts, ends)] = True
    quoted = np.zeros(count, dtype=bool)
    quoted[_lines_of(np.flatnonzero(data == 34), starts)] = True
    commas = np.flatnonzero(data == 44)
    first_comma = np.searchsorted(commas, starts)
    fields_per_line = np.diff(np.append(first_comma, np.searchsorted(commas, ends[-1:] + 1))) + 1
    plain = ~bad & ~quoted & (fields_per_line == width)

    # Field k of a plain line spans [cut[k], cut[k + 1] - 1) with cut = start, each of its
    # width - 1 commas + 1, end + 1. Other lines start with empty slices (null).
    cuts = np.empty((count, width + 1), dtype=np.int64)
    cuts[:, 0] = starts
    cuts[:, width] = ends + 1
    if len(commas):
        owned = np.minimum(first_comma[:, None] + np.arange(width - 1), len(commas) - 1)
        cuts[:, 1:width] = commas[owned] + 1
    field_starts, field_ends = cuts[:, :width].copy(), cuts[:, 1:] - 1
    field_starts[~plain] = field_ends[~plain] = starts[~plain, None]

    errors: dict[int, str] = {}
    raws: dict[int, str] = {}
    for index in np.flatnonzero(~plain).tolist():
        text = chunk[starts[index] : ends[index]]
        if bad[index]:
            errors[index] = "invalid UTF-8 bytes"
            raws[index] = text.rstrip(b"\r").decode("utf-8", errors="backslashreplace")
            continue
        line = text.decode("utf-8")
        if quoted[index]:
            parsed, problem = _split_quoted(line, width)
        else:
            parsed, problem = None, f"expected {width} fields, found {fields_per_line[index]}"
        if parsed is None:
            errors[index], raws[index] = problem, line
            continue
        position = int(starts[index])
        for k, value in enumerate(parsed):
            encoded = value.encode("utf-8")
            buffer[position : position + len(encoded)] = encoded
            field_starts[index, k], field_ends[index, k] = position, position + len(encoded)
            position += len(encoded)
        plain[index] = True

    columns = {}
    for name in ENTITIES[entity]:
        k = header.index(name)
        columns[name] = _slices(buffer, field_starts[:, k], field_ends[:, k], plain)
    return pa.table(
        {
            "_source_file": pa.DictionaryArray.from_arrays(
                pa.array(np.zeros(count, dtype=np.int32)), pa.array([source_file], pa.string())
            ),
            "_ingested_at": pa.repeat(pa.scalar(ingested_at, pa.timestamp("us")), count),
            "_row_number": pa.array(line_numbers),
            **columns,
            "_malformed_error": _sparse(count, errors),
            "_raw_line": _sparse(count, raws),
        }
    )


PARSED_SCHEMA_META = {b"lakehouse": b"bronze parsed twin v1"}
# Dictionary encoding and statistics only where they pay: low-cardinality columns and the audit
# columns readers filter on. zstd level 1 keeps the files small at a fraction of the CPU.
_TWIN_DICTIONARY = ["_source_file", "product", "quantity", "country", "_malformed_error"]
_TWIN_STATISTICS = ["_source_file", "_ingested_at", "_row_number"]


def parse_file(
    path: Path,
    entity: str,
    header: list[str],
    source_file: str,
    ingested_at: datetime,
    target: Path,
) -> tuple[int, int]:
    """Write the parsed twin of one CSV to `target`; return (rows, malformed rows).

    One chunk of whole lines at a time (bounded memory at any file size): the next chunk is split
    on a worker thread while the current one is written (numpy, Arrow and the Parquet writer
    release the GIL).
    """
    rows = malformed = 0
    writer: pq.ParquetWriter | None = None

    def split(item: tuple[int, bytes]) -> pa.Table:
        first_line, chunk = item
        return split_lines(chunk, first_line, header, entity, source_file, ingested_at)

    def write(table: pa.Table) -> None:
        nonlocal writer, rows, malformed
        table = table.replace_schema_metadata(PARSED_SCHEMA_META)
        if writer is None:
            writer = pq.ParquetWriter(
                target,
                table.schema,
                compression="zstd",
                compression_level=1,
                use_dictionary=[c for c in _TWIN_DICTIONARY if c in table.column_names],
                write_statistics=_TWIN_STATISTICS,
            )
        writer.write_table(table)
        rows += table.num_rows
        malformed += table.num_rows - table["_malformed_error"].null_count

    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending: deque = deque()
            for item in _iter_chunks(path):
                pending.append(pool.submit(split, item))
                if len(pending) > 1:
                    write(pending.popleft().result())
            while pending:
                write(pending.popleft().result())
        if writer is None:  # header only: still write an empty, well-typed twin
            write(split((2, b"")).slice(0, 0))
    finally:
        if writer is not None:
            writer.close()
        pa.default_memory_pool().release_unused()
    return rows, malformed


# --- the ingestion step ----------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def existing_hashes(lake: Lake) -> dict[str, str]:
    """sha256[:12] → bronze key, for every CSV already landed."""
    found: dict[str, str] = {}
    for entity in ENTITIES:
        for key in lake.list("bronze", f"{entity}/"):
            match = BRONZE_NAME.match(key)
            if match:
                found.setdefault(match["sha"], key)
    return found


def remove_orphan_twins(lake: Lake) -> list[str]:
    """Drop parsed twins whose raw CSV never landed (an ingest killed between the two writes).

    The twin is written first and the raw CSV last, so a raw CSV in bronze always has its twin;
    a twin alone is an unfinished landing, not data, and would otherwise be read twice.
    """
    raws = set()
    for entity in ENTITIES:
        raws.update(lake.list("bronze", f"{entity}/"))
    removed = []
    for key in lake.list("bronze", f"{PARSED_PREFIX}/"):
        raw = key[len(PARSED_PREFIX) + 1 : -len(".parquet")] + ".csv"
        if raw not in raws:
            lake.delete_key("bronze", key)
            removed.append(key)
    return removed


def csv_files(paths: Iterable[Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Expand files and folders: `*.csv` files are taken, anything else is listed as skipped."""
    taken: list[Path] = []
    skipped: list[tuple[str, str]] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            for child in sorted(path.iterdir()):
                if child.is_file() and child.suffix.lower() == ".csv":
                    taken.append(child)
                elif child.is_file():
                    skipped.append((str(child), "not a .csv file"))
        elif path.is_file():
            taken.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder to ingest")
    return taken, skipped


def upload_sources(lake: Lake, files: list[Path]) -> list[str]:
    """Copy local files into the landing area; return their landing keys."""
    keys = []
    for path in files:
        lake.upload_file("sources", path.name, path)
        keys.append(path.name)
    return keys


def ingest_sources(
    lake: Lake,
    keys: list[str] | None = None,
    local_copies: dict[str, Path] | None = None,
    progress: Callable[[str], None] | None = None,
    hashes: dict[str, str] | None = None,
) -> IngestReport:
    """Land every landing-area file not yet in bronze (by content hash), in file-name order.

    `hashes` (landing key → sha256) spares hashing a local copy twice."""
    started = time.monotonic()
    report = IngestReport()
    lake.ensure_layers()
    remove_orphan_twins(lake)
    known = existing_hashes(lake)
    keys = sorted(keys if keys is not None else lake.list("sources"))
    local_copies = local_copies or {}
    with tempfile.TemporaryDirectory(prefix="lakehouse-ingest-") as tmp:
        for key in keys:
            name = key.rsplit("/", 1)[-1]
            if not name.lower().endswith(".csv"):
                report.skipped.append((key, "not a .csv file"))
                continue
            if progress:
                progress(key)
            path = local_copies.get(key)
            if path is None:
                path = Path(tmp) / "landing.csv"
                lake.download_file("sources", key, path)
            sha = (hashes or {}).get(key) or sha256_of(path)
            if sha[:12] in known:
                report.skipped.append((key, f"already in bronze as {known[sha[:12]]}"))
                continue
            try:
                entity, header = classify(path, key)
            except RefusedFile as refusal:
                report.refused.append((key, str(refusal)))
                continue
            landed_at = _now()
            target_key = bronze_key(entity, landed_at, sha)
            twin = Path(tmp) / "twin.parquet"
            rows, malformed = parse_file(path, entity, header, target_key, landed_at, twin)
            lake.upload_file("bronze", parsed_key(target_key), twin)
            if lake.is_local or key not in local_copies:
                lake.upload_file("bronze", target_key, path)
            else:
                lake.copy("sources", key, "bronze", target_key)
            known[sha[:12]] = target_key
            report.landed.append(Landed(key, entity, target_key, rows, malformed))
            time.sleep(0.000002)  # distinct microsecond stamps keep batch order strict
    report.seconds = time.monotonic() - started
    return report


def ingest(
    lake: Lake, paths: Iterable[Path] | None = None, progress: Callable[[str], None] | None = None
) -> IngestReport:
    """`lakehouse ingest`: upload the given files or folders (if any), then land them."""
    if paths is None:
        return ingest_sources(lake, progress=progress)
    files, skipped = csv_files(paths)
    lake.ensure_layers()
    # A file already in bronze and in the landing area is not copied again (at ten million
    # lines a copy costs seconds on every run); it is still reported as skipped below.
    hashes = {path.name: sha256_of(path) for path in files}
    known = existing_hashes(lake)
    landed = {p.name for p in files if hashes[p.name][:12] in known}
    upload_sources(
        lake, [p for p in files if p.name not in landed or not lake.exists("sources", p.name)]
    )
    keys = [path.name for path in files]
    report = ingest_sources(
        lake,
        keys=keys,
        local_copies=dict(zip(keys, files, strict=True)),
        progress=progress,
        hashes=hashes,
    )
    report.skipped = skipped + report.skipped
    return report
