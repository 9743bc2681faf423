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
import itertools
import json
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from orchestration.layout import BRONZE_NAME, ENTITIES, PARSED_PREFIX, bronze_key, parsed_key
from orchestration.settings import Settings
from orchestration.storage import Lake, file_stamp, replace_file

# A chunk of whole lines is split at once (here or by a worker thread): its Arrow arrays take
# several times its size, so the chunk bounds ingestion's memory per thread.
CHUNK_BYTES = 16 * 1024 * 1024
_decoding = threading.local()  # the offsets of invalid bytes the current thread's decode met


def _mark_invalid(exc: UnicodeDecodeError) -> tuple[str, int]:
    """Codec error handler: remember where invalid bytes are, keep decoding at C speed."""
    _decoding.bad_offsets.append(exc.start)
    return "\ufffd", exc.end


codecs.register_error("lakehouse_mark_invalid", _mark_invalid)


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
    # Entities with no file in bronze yet, after this ingestion: silver reads both.
    missing_entities: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {
            "landed": [vars(item) for item in self.landed],
            "skipped": [{"file": f, "reason": r} for f, r in self.skipped],
            "refused": [{"file": f, "reason": r} for f, r in self.refused],
            "missing_entities": self.missing_entities,
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
    first = head.split(b"\n", 1)[0].rstrip(b"\r")
    # A NUL byte in the header: not text (UTF-16 without a byte order mark, a binary file). In a
    # later line it makes that line malformed and the file lands (SPEC §2).
    if b"\x00" in first:
        raise RefusedFile(f"{name}: binary content (NUL bytes), not a CSV text file")
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


def _bad_lines(chunk: bytes, newlines: np.ndarray) -> np.ndarray:
    """Indexes of the lines holding bytes that are not UTF-8 (none in an ASCII chunk)."""
    if chunk.isascii():
        return np.empty(0, np.int64)
    _decoding.bad_offsets = []
    chunk.decode("utf-8", errors="lakehouse_mark_invalid")
    # A byte before the k-th newline (and after the one before) is on line k.
    return np.unique(np.searchsorted(newlines, np.array(_decoding.bad_offsets, np.int64)))


def _positions(chunk: bytes, needle: bytes) -> np.ndarray:
    """Where `needle` starts in `chunk` (for a rare one: a Python loop over its occurrences)."""
    found = []
    position = chunk.find(needle)
    while position >= 0:
        found.append(position)
        position = chunk.find(needle, position + 1)
    return np.array(found, np.int64)


def _commas_per_line(data: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """How many commas each line holds (a line's segment here ends with its newline)."""
    counts = np.zeros(len(starts), np.int32)
    inside = starts < len(data)  # a chunk ending with an empty line: that line is empty
    if inside.any():
        counts[inside] = np.add.reduceat(
            (data == ord(",")).view(np.uint8), starts[inside], dtype=np.int32
        )
    return counts


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


def _split_plain(body: bytes, header: list[str]) -> pa.Table:
    """Split lines that hold no quote, no stray carriage return and the right number of commas:
    Arrow's CSV reader with quoting off cuts them at every comma, keeping every value as text."""
    return pa_csv.read_csv(
        pa.BufferReader(body),
        read_options=pa_csv.ReadOptions(
            column_names=header, use_threads=False, block_size=max(len(body) + 1, 1 << 20)
        ),
        parse_options=pa_csv.ParseOptions(quote_char=False, ignore_empty_lines=False),
        convert_options=pa_csv.ConvertOptions(
            column_types=dict.fromkeys(header, pa.string()),
            strings_can_be_null=False,
            check_utf8=False,  # checked before: a line with bad bytes is never plain
        ),
    )


def _split_one(line: bytes, width: int) -> tuple[list[str] | None, str | None, str]:
    """(fields, None, text) or (None, why it is malformed, raw text) for one line that is not
    plain: quoted fields, a carriage return inside, bad bytes (not UTF-8, or NUL), or a wrong
    field count."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return None, "invalid UTF-8 bytes", line.decode("utf-8", errors="backslashreplace")
    if "\x00" in text:
        return None, "a NUL byte (not text)", text.replace("\x00", "\\x00")
    if '"' in text:
        try:
            rows = list(csv.reader([text], strict=True))
        except csv.Error as exc:
            return None, f"bad quoting ({exc})", text
        fields = rows[0] if rows else []
    else:
        fields = text.split(",")
    if len(fields) != width:
        return None, f"expected {width} fields, found {len(fields)}", text
    return fields, None, text


def split_lines(
    chunk: bytes,
    first_line: int,
    header: list[str],
    entity: str,
    source_file: str,
    ingested_at: datetime,
) -> pa.Table:
    """Split a chunk of CSV lines into the parsed-twin table, in line order.

    A line is what lies between two newlines, less one trailing carriage return (Windows line
    ends); an empty line is no row. Plain lines (all but a few) are found with vectorized byte
    counts and split by Arrow's CSV reader in one call; the others go through Python one by
    one: quoted fields (the csv module, strict), a carriage return inside the line, a byte
    order mark, bytes that are not UTF-8 or NUL (malformed), or a wrong number of fields.
    """
    columns = ENTITIES[entity]
    width = len(header)
    data = np.frombuffer(chunk, np.uint8)
    newlines = np.flatnonzero(data == ord("\n"))
    starts = np.concatenate(([0], newlines + 1))
    ends = np.append(newlines, len(chunk))  # exclusive; a line's newline is not part of it
    odd = np.zeros(len(starts), bool)  # a quote or a carriage return inside: not plain
    if b"\r" in chunk:  # one at the very end of a line is a Windows line end, not content
        returns = np.flatnonzero(data == ord("\r"))
        line_of = np.searchsorted(newlines, returns)
        at_end = returns + 1 == ends[line_of]
        ends[line_of[at_end]] -= 1
        odd[line_of[~at_end]] = True
    if b'"' in chunk:
        odd[np.searchsorted(newlines, np.flatnonzero(data == ord('"')))] = True
    if codecs.BOM_UTF8 in chunk:  # Arrow drops one at the start of what it reads: keep it, as text
        odd[np.searchsorted(newlines, _positions(chunk, codecs.BOM_UTF8))] = True
    if b"\x00" in chunk:  # not text: the line is malformed
        odd[np.searchsorted(newlines, np.flatnonzero(data == 0))] = True
    plain = (ends > starts) & ~odd & (_commas_per_line(data, starts) == width - 1)
    plain[_bad_lines(chunk, newlines)] = False
    plain_rows = np.flatnonzero(plain)
    if len(plain_rows) == len(starts):
        body = chunk
    else:  # the plain lines' bytes, each with its newline (and its Windows carriage return)
        kept = np.repeat(plain, np.diff(np.append(starts, len(chunk) + 1)))
        body = data[kept[: len(chunk)]].tobytes()
    split = _split_plain(body, header) if len(plain_rows) else None

    # Every other line that is not empty: Python, one by one.
    fields: dict[int, list[str]] = {}
    errors: dict[int, tuple[str, str]] = {}
    for index in np.flatnonzero(~plain & (ends > starts)).tolist():
        parsed, problem, text = _split_one(chunk[starts[index] : ends[index]], width)
        if parsed is None:
            errors[index] = (problem, text)
        else:
            fields[index] = parsed

    extra = sorted(fields) + sorted(errors)
    numbers = [pa.array(plain_rows + first_line, pa.int64())]
    out_cols: dict[str, list[pa.Array]] = {
        name: split.column(name).chunks if split is not None else [] for name in columns
    }
    out_error: list[pa.Array] = [pa.nulls(len(plain_rows), pa.string())]
    out_raw: list[pa.Array] = [pa.nulls(len(plain_rows), pa.string())]
    if extra:
        numbers.append(pa.array([first_line + i for i in extra], pa.int64()))
        for name in columns:
            position = header.index(name)
            out_cols[name].append(
                pa.array(
                    [fields[i][position] for i in sorted(fields)] + [None] * len(errors),
                    pa.string(),
                )
            )
        out_error.append(pa.array([None] * len(fields) + [errors[i][0] for i in sorted(errors)]))
        out_raw.append(pa.array([None] * len(fields) + [errors[i][1] for i in sorted(errors)]))

    def cat(arrays: list[pa.Array], kind: pa.DataType) -> pa.ChunkedArray:
        return pa.chunked_array([a.cast(kind) for a in arrays], kind)

    row_number = cat(numbers, pa.int64())
    n = len(row_number)
    table = pa.table(
        {
            # One value for the whole file, as a dictionary: a plain string column repeats it on
            # every row (twice the chunk's size to pickle back from a worker).
            "_source_file": pa.DictionaryArray.from_arrays(
                pa.repeat(pa.scalar(0, pa.int32()), n), pa.array([source_file], pa.string())
            ),
            "_ingested_at": pa.repeat(pa.scalar(ingested_at, pa.timestamp("us")), n),
            "_row_number": row_number,
            **{name: cat(out_cols[name], pa.string()) for name in columns},
            "_malformed_error": cat(out_error, pa.string()),
            "_raw_line": cat(out_raw, pa.string()),
        }
    )
    if not extra:  # plain lines only: already in line order
        return table
    return table.take(pc.sort_indices(table["_row_number"]))


PARSED_SCHEMA_META = {b"lakehouse": b"bronze parsed twin v1"}

# How the twin is written. Dictionaries only for the columns with few distinct values: Arrow's
# default builds one for every column and drops it for ids, names and totals once it is full,
# and statistics only where DuckDB uses them (an incremental build keeps the row groups of the
# new files by `_source_file`): two million purchase lines are written in 0.72 s instead of
# 1.18 s, and take 28 MB instead of 34.
TWIN_WRITE_OPTIONS = {
    "compression": "zstd",
    "use_dictionary": [
        "_source_file",
        "_malformed_error",
        "product",
        "price",
        "quantity",
        "purchase_date",
        "subscription_date",
        "country",
    ],
    "write_statistics": ["_source_file", "_ingested_at", "_row_number"],
}


def parse_file(
    path: Path,
    entity: str,
    header: list[str],
    source_file: str,
    ingested_at: datetime,
    target: Path,
    workers: int = 1,
) -> tuple[int, int]:
    """Write the parsed twin of one CSV to `target`; return (rows, malformed rows).

    A file of several chunks is split by `workers` threads (chunks are independent: each
    knows its first line number) while this one reads the next chunks and writes the results
    in file order; a file of one chunk is split here.
    """
    rows = malformed = 0
    writer: pq.ParquetWriter | None = None
    chunks = _iter_chunks(path)
    head = list(itertools.islice(chunks, 2))  # a pool only pays for a file of several chunks
    try:
        with _splitter(workers if len(head) > 1 else 1) as split:
            for table in split(
                itertools.chain(head, chunks), header, entity, source_file, ingested_at
            ):
                if writer is None:
                    schema = table.schema.with_metadata(PARSED_SCHEMA_META)
                    writer = pq.ParquetWriter(target, schema, **TWIN_WRITE_OPTIONS)
                writer.write_table(table.replace_schema_metadata(PARSED_SCHEMA_META))
                rows += table.num_rows
                malformed += table.num_rows - pc.sum(pc.is_null(table["_malformed_error"])).as_py()
        if writer is None:  # header only: still write an empty, well-typed twin
            empty = split_lines(b"", 2, header, entity, source_file, ingested_at).slice(0, 0)
            writer = pq.ParquetWriter(
                target, empty.schema.with_metadata(PARSED_SCHEMA_META), **TWIN_WRITE_OPTIONS
            )
            writer.write_table(empty.replace_schema_metadata(PARSED_SCHEMA_META))
    finally:
        if writer is not None:
            writer.close()
    return rows, malformed


@contextmanager
def _splitter(workers: int) -> Iterator[Callable[..., Iterator[pa.Table]]]:
    """A function mapping chunks to split tables, in order: here, or on a pool of threads.

    Threads, not processes: splitting is numpy and Arrow work that releases the GIL, and a
    process pool spent a third of the CPU time pickling chunks and tables between processes
    (at ten million lines the main process, which also writes the twin, was the bottleneck)."""

    def here(chunks, *args) -> Iterator[pa.Table]:
        for first_line, chunk in chunks:
            yield split_lines(chunk, first_line, *args)

    if workers <= 1:
        yield here
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="ingest-split") as pool:

        def pooled(chunks, *args) -> Iterator[pa.Table]:
            pending: deque[Future[pa.Table]] = deque()
            for first_line, chunk in chunks:
                pending.append(pool.submit(split_lines, chunk, first_line, *args))
                if len(pending) > workers:  # bounded: at most workers + 1 chunks in flight
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

        yield pooled


# --- the ingestion step ----------------------------------------------------------------------


class HashedFiles:
    """The sha256 of the files ingestion has already read, by location and stamp.

    A run lists the whole landing area (or the `--sources` folder), and a daily batch makes it
    grow: reading every file again to learn that it is already in bronze costs a copy and a hash
    of the whole history on each run (0.6 GB at 2M clients, ~6 GB at 100M lines; on the object
    store every file is downloaded first). A file whose location and stamp (`file_stamp`,
    `Lake.stamps`) are those recorded when it was read, and whose hash bronze holds, is not read
    again. Anything else is read as before: a new file, a rewritten one, a hash that bronze does
    not hold (another lake), a missing or unreadable index. Kept in the state folder.
    """

    def __init__(self, settings: Settings):
        self.path = settings.state_dir / "ingest" / "hashed-files.json"
        try:
            self.entries: dict[str, list[str]] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.entries = {}
        if not isinstance(self.entries, dict):
            self.entries = {}
        self.changed = False

    def known_sha(self, location: str, stamp: str | None) -> str | None:
        """The hash read from `location` when it had this stamp, if it was read then."""
        entry = self.entries.get(location)
        if stamp is None or not isinstance(entry, list) or len(entry) != 2:
            return None
        return entry[1] if entry[0] == stamp else None

    def remember(self, location: str, stamp: str | None, sha: str) -> None:
        if stamp is not None and self.known_sha(location, stamp) != sha:
            self.entries[location] = [stamp, sha]
            self.changed = True

    def forget_gone(self, listed_root: str | None = None, listed: set[str] = frozenset()) -> None:
        """Drop the entries of files that are gone, so that the index does not keep every file
        that ever passed through the landing area or a `--sources` folder: an object under
        `listed_root` (a folder just listed in full) that `listed` does not hold, and a local
        file that no longer exists. A file that comes back is read again, once."""
        for location in list(self.entries):
            if listed_root is not None and location.startswith(f"{listed_root}/"):
                gone = location not in listed
            else:
                gone = Path(location).is_absolute() and not Path(location).exists()
            if gone:
                del self.entries[location]
                self.changed = True

    def save(self) -> None:
        """Write the index in one step (a lost write only costs one more read of the files)."""
        if self.changed:
            replace_file(self.path, json.dumps(self.entries, indent=0, sort_keys=True).encode())
            self.changed = False


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


COMPRESSED_SUFFIXES = (".gz", ".zip", ".bz2", ".xz", ".zst")


def is_compressed_csv(name: str) -> bool:
    """`clients.csv.gz` and the like: meant as data, so refused with a reason, not skipped."""
    stem, dot, suffix = name.lower().rpartition(".")
    return bool(dot) and f".{suffix}" in COMPRESSED_SUFFIXES and stem.endswith(".csv")


def csv_files(paths: Iterable[Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Expand files and folders: `*.csv` files are taken, anything else is listed as skipped.

    A compressed CSV is taken too, so that ingestion refuses it with a reason (SPEC §2).
    """
    taken: list[Path] = []
    skipped: list[tuple[str, str]] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            for child in sorted(path.iterdir()):
                if child.is_file() and (
                    child.suffix.lower() == ".csv" or is_compressed_csv(child.name)
                ):
                    taken.append(child)
                elif child.is_file():
                    skipped.append((str(child), "not a .csv file"))
        elif path.is_file():
            taken.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder to ingest")
    return taken, skipped


def ingest_sources(
    lake: Lake,
    keys: list[str] | None = None,
    local_copies: dict[str, Path] | None = None,
    progress: Callable[[str], None] | None = None,
) -> IngestReport:
    """Land every landing-area file not yet in bronze (by content hash), in file-name order.

    `local_copies` maps landing keys to the local files they come from (`lakehouse ingest
    <paths>`, `run --sources`): a CSV is uploaded to the landing area when it is read, and one
    that `HashedFiles` shows is already in bronze is neither uploaded nor read.
    """
    started = time.monotonic()
    report = IngestReport()
    lake.ensure_layers()
    remove_orphan_twins(lake)
    known = existing_hashes(lake)
    hashed = HashedFiles(lake.settings)
    local_copies = local_copies or {}
    listed_landing = keys is None
    stamps = lake.stamps("sources") if listed_landing else {}
    keys = sorted(keys if keys is not None else stamps)
    with tempfile.TemporaryDirectory(prefix="lakehouse-ingest-") as tmp:
        for key in keys:
            name = key.rsplit("/", 1)[-1]
            if is_compressed_csv(name):
                report.refused.append(
                    (
                        key,
                        f"{key}: a compressed file, not a CSV text file; decompress it to "
                        f"{name.rpartition('.')[0]} and ingest that",
                    )
                )
                continue
            if not name.lower().endswith(".csv"):
                report.skipped.append((key, "not a .csv file"))
                continue
            if progress:
                progress(key)
            path = local_copies.get(key)
            if path is None:
                location, stamp = lake.uri("sources", key), stamps.get(key)
            else:
                location, stamp = str(path.resolve()), file_stamp(path)
            sha = hashed.known_sha(location, stamp)
            if sha is None or sha[:12] not in known:
                if path is None:
                    path = Path(tmp) / "landing.csv"
                    lake.download_file("sources", key, path)
                else:
                    lake.upload_file("sources", key, path)
                sha = sha256_of(path)
                hashed.remember(location, stamp, sha)
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
            rows, malformed = parse_file(
                path, entity, header, target_key, landed_at, twin, lake.settings.ingest_workers
            )
            lake.upload_file("bronze", parsed_key(target_key), twin)
            if lake.is_local or key not in local_copies:
                lake.upload_file("bronze", target_key, path)
            else:
                lake.copy("sources", key, "bronze", target_key)
            known[sha[:12]] = target_key
            report.landed.append(Landed(key, entity, target_key, rows, malformed))
            time.sleep(0.000002)  # distinct microsecond stamps keep batch order strict
    if listed_landing:
        hashed.forget_gone(lake.uri("sources"), {lake.uri("sources", key) for key in keys})
    else:
        hashed.forget_gone()
    hashed.save()
    stored = {key.split("/", 1)[0] for key in known.values()}
    report.missing_entities = [entity for entity in ENTITIES if entity not in stored]
    report.seconds = time.monotonic() - started
    return report


def ingest(
    lake: Lake, paths: Iterable[Path] | None = None, progress: Callable[[str], None] | None = None
) -> IngestReport:
    """`lakehouse ingest`: land the given files or folders (default: the landing area)."""
    if paths is None:
        return ingest_sources(lake, progress=progress)
    files, skipped = csv_files(paths)
    local_copies = {path.name: path for path in files}
    report = ingest_sources(
        lake, keys=list(local_copies), local_copies=local_copies, progress=progress
    )
    report.skipped = skipped + report.skipped
    return report
