"""The structural check of ingestion, on hand-written lines (SPEC §2, §3 malformed_line)."""

from __future__ import annotations

from datetime import datetime

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


def test_a_file_split_by_a_process_pool_equals_the_file_split_in_one_piece(tmp_path, monkeypatch):
    """parse_file hands the chunks of a large file to worker processes and writes their results
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
