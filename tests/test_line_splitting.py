"""The structural check of ingestion, on hand-written lines (SPEC §2, §3 malformed_line)."""

from __future__ import annotations

import csv
import random
from datetime import datetime

import pytest

from orchestration.ingest import split_lines

HEADER = ["id_client", "name", "email", "subscription_date", "country"]
WHEN = datetime(2025, 1, 1, 12, 0, 0)


def split(raw: bytes, first_line: int = 2) -> list[dict]:
    return split_lines(raw, first_line, HEADER, "clients", "f.csv", WHEN).to_pylist()


def test_plain_quoted_and_broken_lines_keep_their_line_numbers():
    raw = (
        b"1,Ann,a@x.com,2024-01-01,France\n"
        b'2,"Smith, J",b@x.com,2024-01-02,UK\n'
        b"3,Bad\xff,c@x.com,2024-01-01,France\n"
        b"4,too,few\n"
        b'5,"unterminated,x@y.com,2024-01-01,France\n'
        b"6,a,b,c,d,e\n"
        b"\n"
        b"7, spaced ,e@x.com,2024-01-01,  France  \r"
    )
    rows = split(raw)
    assert [r["_row_number"] for r in rows] == [2, 3, 4, 5, 6, 7, 9]
    good = [r for r in rows if r["_malformed_error"] is None]
    assert [r["id_client"] for r in good] == ["1", "2", "7"]
    assert good[1]["name"] == "Smith, J"
    assert good[2]["name"] == " spaced " and good[2]["country"] == "  France  "  # raw, untrimmed
    broken = {r["_row_number"]: r for r in rows if r["_malformed_error"] is not None}
    assert set(broken) == {4, 5, 6, 7}
    assert broken[4]["_malformed_error"] == "invalid UTF-8 bytes"
    assert broken[4]["_raw_line"] == "3,Bad\\xff,c@x.com,2024-01-01,France"
    assert broken[5]["_malformed_error"] == "expected 5 fields, found 3"
    assert "quot" in broken[6]["_malformed_error"]
    assert broken[7]["_malformed_error"] == "expected 5 fields, found 6"
    assert all(r["id_client"] is None for r in broken.values())


def test_a_nul_byte_makes_its_line_malformed_and_only_that_line():
    """SPEC §2: invalid bytes inside an otherwise good file make those lines malformed_line."""
    rows = split(
        b"1,Ann,a@x.com,2024-01-01,France\n"
        b"2,Bob,b@x.com,2024-01-01,Fra\x00nce\n"
        b'3,"Cy\x00",c@x.com,2024-01-01,UK\n'
        b"4,Di,d@x.com,2024-01-01,Spain\n"
    )
    assert [r["_row_number"] for r in rows] == [2, 3, 4, 5]
    assert [r["id_client"] for r in rows] == ["1", None, None, "4"]
    broken = [r for r in rows if r["_malformed_error"] is not None]
    assert [r["_malformed_error"] for r in broken] == ["a NUL byte (not text)"] * 2
    assert broken[0]["_raw_line"] == "2,Bob,b@x.com,2024-01-01,Fra\\x00nce"


def test_a_quoted_comma_does_not_count_as_a_field_separator():
    rows = split(b'1,"a, b, c",x@y.com,2024-01-01,"France"\n')
    assert rows[0]["_malformed_error"] is None
    assert rows[0]["name"] == "a, b, c" and rows[0]["country"] == "France"


def test_audit_columns():
    rows = split(b"1,Ann,a@x.com,2024-01-01,France\n", first_line=40)
    assert rows[0]["_source_file"] == "f.csv"
    assert rows[0]["_ingested_at"] == WHEN
    assert rows[0]["_row_number"] == 40


def test_invalid_bytes_on_several_lines_mark_exactly_those_lines():
    # Bad bytes on the first line, twice on one line, and after clean lines: each flagged line
    # is found by counting newlines once, in order (a per-byte recount was quadratic at scale).
    raw = (
        b"\xfe1,Ann,a@x.com,2024-01-01,France\n"
        b"2,Bob,b@x.com,2024-01-01,France\n"
        b"3,B\xffd\xff,c@x.com,2024-01-01,France\n"
        b"4,Cy,d@x.com,2024-01-01,France\n"
        b"5,Dee,e@x.com,2024-01-01,Fr\xc3\n"
    )
    rows = split(raw, first_line=10)
    broken = [r["_row_number"] for r in rows if r["_malformed_error"] == "invalid UTF-8 bytes"]
    assert broken == [10, 12, 14]
    assert [r["id_client"] for r in rows if r["_malformed_error"] is None] == ["2", "4"]


def test_a_file_split_by_a_thread_pool_equals_the_file_split_in_one_piece(tmp_path, monkeypatch):
    """parse_file hands the chunks of a large file to worker threads and writes their results
    in file order: the twin must be the one the whole file gives as a single chunk."""
    import pyarrow.parquet as pq

    from orchestration import ingest

    lines = []
    for number in range(2, 402):
        if number % 37 == 0:
            lines.append(f'{number},"Quoted, name",q{number}@x.com,2024-01-01,France')
        elif number % 53 == 0:
            lines.append(f"{number},too,few")
        else:
            lines.append(f"{number},Name {number},n{number}@x.com,2024-01-01,Spain")
    body = ("\n".join(lines) + "\n").encode()
    source = tmp_path / "clients.csv"
    source.write_bytes((",".join(HEADER) + "\n").encode() + body)

    whole = split_lines(body, 2, HEADER, "clients", "f.csv", WHEN).to_pylist()
    assert [r["_row_number"] for r in whole] == list(range(2, 402))

    monkeypatch.setattr(ingest, "CHUNK_BYTES", 1000)  # about 25 chunks
    for workers in (1, 2):
        target = tmp_path / f"twin{workers}.parquet"
        rows, malformed = ingest.parse_file(
            source, "clients", HEADER, "f.csv", WHEN, target, workers
        )
        assert pq.ParquetFile(target).metadata.num_row_groups > 2  # several chunks were written
        assert pq.read_table(target).to_pylist() == whole
        assert (rows, malformed) == (400, sum(1 for n in range(2, 402) if n % 53 == 0 and n % 37))


def reference_split(raw: bytes, first_line: int, width: int) -> list[tuple]:
    """SPEC §2, one line at a time in plain Python: (line number, fields, error, raw line).

    A line is what lies between two newlines, less one trailing carriage return; an empty line
    is no row; a line that is not UTF-8 is broken; a quote may protect a comma (strict CSV
    quoting), otherwise every comma separates; any other field count is broken."""
    rows = []
    for offset, line in enumerate(raw.split(b"\n")):
        line = line[:-1] if line.endswith(b"\r") else line
        if not line:
            continue
        number = first_line + offset
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raw_text = line.decode("utf-8", errors="backslashreplace")
            rows.append((number, None, "invalid UTF-8 bytes", raw_text))
            continue
        if '"' in text:
            try:
                fields = next(csv.reader([text], strict=True), [])
            except csv.Error:
                rows.append((number, None, "bad quoting", text))
                continue
        else:
            fields = text.split(",")
        if len(fields) != width:
            rows.append((number, None, f"expected {width} fields, found {len(fields)}", text))
        else:
            rows.append((number, fields, None, None))
    return rows


def _as_reference(rows: list[dict]) -> list[tuple]:
    out = []
    for row in rows:
        error = row["_malformed_error"]
        if error is not None and error.startswith("bad quoting"):
            error = "bad quoting"  # the csv module's own words follow
        fields = None if error is not None else [row[name] for name in HEADER]
        out.append((row["_row_number"], fields, error, row["_raw_line"]))
    return out


LINE_KINDS = [
    b"1,Ann,a@x.com,2024-01-01,France",
    b"2,Ren\xc3\xa9e,r@x.com,2024-01-01,Fran\xc3\xa7e",  # valid UTF-8, not ASCII
    b'3,"Smith, J",b@x.com,2024-01-01,"UK"',
    b'4,"unterminated,x@y.com,2024-01-01,France',
    b'5,a"b,x@y.com,2024-01-01,France',  # a quote inside an unquoted field: strict csv refuses
    b"6,Bad\xff,c@x.com,2024-01-01,France",
    b"7,Cut\xc3,c@x.com,2024-01-01,France",  # a multi-byte character cut short
    b"8,too,few",
    b"9,a,b,c,d,e",
    b",,,,",  # five empty fields
    b"",
    b" ",
    b"\r",
    b"10,Carriage\rinside,c@x.com,2024-01-01,France",
    b"11,Two ends,c@x.com,2024-01-01,France\r\r",
    b"12,Windows,c@x.com,2024-01-01,France\r",
    b"13," + b"," * 259 + b"x",  # 260 commas: a byte-sized count would wrap to 4, five fields
    b"14, spaced ,e@x.com,2024-01-01,  France  ",
    b"\xef\xbb\xbf15,Bom,b@x.com,2024-01-01,France",  # a byte order mark is text inside a line
    b"\xff\r\r",  # bad bytes, then a carriage return that is text and one that ends the line
]


@pytest.mark.parametrize("seed", range(6))
def test_the_vectorized_split_equals_the_line_by_line_reference(seed):
    """Random mixes of every kind of line, ending with or without a newline, split at once:
    the same rows, fields, errors and raw text as the reference, in line order."""
    rng = random.Random(seed)
    raw = b"\n".join(rng.choice(LINE_KINDS) for _ in range(rng.randint(1, 400)))
    raw += rng.choice([b"", b"\n", b"\n\n"])
    first_line = rng.randint(2, 10_000)
    rows = split_lines(raw, first_line, HEADER, "clients", "f.csv", WHEN).to_pylist()
    assert _as_reference(rows) == reference_split(raw, first_line, len(HEADER))


def test_a_byte_order_mark_inside_the_data_stays_in_its_field():
    """Arrow's CSV reader drops a byte order mark at the start of what it reads; a data line that
    starts with one (the file's own is skipped with the header) keeps it, wherever the chunk
    cut falls."""
    for raw in (
        b"\xef\xbb\xbf1,Ann,a@x.com,2024-01-01,France",
        b"x\n\xef\xbb\xbf1,Ann,a@x.com,2024-01-01,France\n\xef\xbb\xbf2,Bo,b@x.com,2024-01-01,UK",
    ):
        good = [r for r in split(raw) if r["_malformed_error"] is None]
        assert [r["id_client"][0] for r in good] == ["\ufeff"] * len(good)
        assert _as_reference(split(raw)) == reference_split(raw, 2, len(HEADER))


def test_a_chunk_of_plain_lines_only_and_an_empty_chunk():
    raw = b"1,Ann,a@x.com,2024-01-01,France\r\n2,Bob,b@x.com,2024-01-01,Spain"
    assert _as_reference(split(raw)) == reference_split(raw, 2, len(HEADER))
    assert split(b"") == [] and split(b"\n\n") == []


def test_threads_splitting_bad_bytes_at_once_flag_their_own_lines():
    """The offsets of invalid bytes are kept per thread: threads splitting chunks with bad bytes
    on different lines at the same time must each flag exactly their own (switching threads
    as often as possible, inside the codec's error handler too)."""
    import sys
    from concurrent.futures import ThreadPoolExecutor

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    good = b"1,Ann,a@x.com,2024-01-01,France"
    expected, chunks = [], []
    for k in range(8):
        lines = [good] * 3000
        bad = sorted({(k * 37 + 101 * i) % 3000 for i in range(60)})
        for index in bad:
            lines[index] = b"6,Bad\xff\xfe,c@x.com,2024-01-01,France"
        chunks.append(b"\n".join(lines))
        expected.append([2 + index for index in bad])
    try:
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(split, chunks * 3))
    finally:
        sys.setswitchinterval(interval)
    for k, rows in enumerate(results):
        broken = [r["_row_number"] for r in rows if r["_malformed_error"] is not None]
        assert broken == expected[k % 8]
