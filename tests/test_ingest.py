"""Ingestion: refusals, idempotency and the line-split bronze twin (SPEC §2)."""

from __future__ import annotations

import gzip
import json
import os
import random
import time
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest

from orchestration.cli import _skipped_lines
from orchestration.layout import BRONZE_NAME, parsed_key
from tests.conftest import clean_env, lakehouse

CLIENT_HEADER = "id_client,name,email,subscription_date,country"
PURCHASE_HEADER = "id_purchase,id_client,product,price,quantity,purchase_date,total"


@pytest.fixture(scope="module")
def landed(tmp_path_factory):
    """One ingestion of a folder holding good files and every kind of bad one."""
    src = tmp_path_factory.mktemp("ingest-src")
    (src / "a_clients.csv").write_text(f"{CLIENT_HEADER}\n1,Ann,ann@x.com,2024-01-01,France\n")
    (src / "b_purchases.csv").write_text(
        f"{PURCHASE_HEADER}\n1,1,Laptop,10.00,1,2024-02-01,10.00\n"
    )
    # BOM, CRLF line endings and a trailing empty line: accepted and parsed correctly.
    (src / "c_clients_bom.csv").write_bytes(
        b"\xef\xbb\xbf" + f"{CLIENT_HEADER}\r\n2,Bob,bob@x.com,2024-01-02,Spain\r\n\r\n".encode()
    )
    # The right columns in another order: accepted, fields mapped by name.
    (src / "d_reordered.csv").write_text(
        "country,email,id_client,name,subscription_date\nItaly,cy@x.com,3,Cy,2024-01-03\n"
    )
    (src / "e_empty.csv").write_bytes(b"")
    (src / "f_wrong_header.csv").write_text("id,label\n1,x\n")
    (src / "g_extra_column.csv").write_text(f"{CLIENT_HEADER},vip\n4,D,d@x.com,2024-01-01,UK,y\n")
    (src / "h_missing_column.csv").write_text("id_client,name,email,country\n5,E,e@x.com,France\n")
    (src / "i_gzipped.csv").write_bytes(gzip.compress(f"{CLIENT_HEADER}\n".encode()))
    # Named as compressed: meant as data, so refused with what to do rather than skipped.
    (src / "o_clients.csv.gz").write_bytes(
        gzip.compress(f"{CLIENT_HEADER}\n10,Gz,gz@x.com,2024-01-01,UK\n".encode())
    )
    rng = random.Random(3)
    (src / "j_random.csv").write_bytes(bytes(rng.randrange(256) for _ in range(4096)))
    (src / "k_latin1.csv").write_bytes(
        "id_client,name,email,subscription_date,country,région\n6,Zoë\n".encode("latin-1")
    )
    (src / "l_utf16.csv").write_text(f"{CLIENT_HEADER}\n7,Al,al@x.com,2024-01-01,UK\n", "utf-16")
    (src / "notes.txt").write_text("not data")
    # A NUL byte in a data line: that line is malformed, the file lands (SPEC §2). In the header
    # it is no text file: refused.
    (src / "m_clients_nul.csv").write_bytes(
        f"{CLIENT_HEADER}\n8,Nu\x00l,nu@x.com,2024-01-01,UK\n9,Ok,ok@x.com,2024-01-01,UK\n".encode()
    )
    (src / "n_nul_header.csv").write_bytes(f"{CLIENT_HEADER}\x00\n".encode())
    lake = tmp_path_factory.mktemp("ingest-lake")
    env = clean_env(LAKE_DIR=str(lake), LAKEHOUSE_STATE_DIR=str(lake / "state"))
    result = lakehouse("ingest", str(src), "--json", env=env)
    return src, lake, env, json.loads(result.stdout)


def test_good_files_land_once(landed):
    _, lake, _, report = landed
    sources = sorted(item["source"] for item in report["landed"])
    assert sources == [
        "a_clients.csv",
        "b_purchases.csv",
        "c_clients_bom.csv",
        "d_reordered.csv",
        "m_clients_nul.csv",
    ]
    keys = sorted(
        p.relative_to(lake / "bronze").as_posix() for p in (lake / "bronze").rglob("*.csv")
    )
    assert len(keys) == 5
    assert all(BRONZE_NAME.match(k) for k in keys)


def test_each_refusal_names_the_file_and_the_problem(landed):
    _, _, _, report = landed
    refused = {item["file"]: item["reason"] for item in report["refused"]}
    assert set(refused) == {
        "e_empty.csv",
        "f_wrong_header.csv",
        "g_extra_column.csv",
        "h_missing_column.csv",
        "i_gzipped.csv",
        "j_random.csv",
        "k_latin1.csv",
        "l_utf16.csv",
        "n_nul_header.csv",
        "o_clients.csv.gz",
    }
    for name, reason in refused.items():
        assert reason.startswith(name), reason
    assert "empty" in refused["e_empty.csv"]
    assert "gzip" in refused["i_gzipped.csv"]
    assert "not UTF-8" in refused["k_latin1.csv"]
    assert "UTF-16" in refused["l_utf16.csv"]
    assert "NUL bytes" in refused["n_nul_header.csv"]
    assert "unexpected vip" in refused["g_extra_column.csv"]
    assert "missing subscription_date" in refused["h_missing_column.csv"]
    assert "decompress it to o_clients.csv" in refused["o_clients.csv.gz"]
    skipped = {item["file"]: item["reason"] for item in report["skipped"]}
    assert any(f.endswith("notes.txt") for f in skipped)


def test_twins_parse_bom_crlf_and_reordered_headers(landed):
    _, lake, _, report = landed
    rows = {}
    for item in report["landed"]:
        table = pq.read_table(lake / "bronze" / parsed_key(item["bronze_key"])).to_pylist()
        rows[item["source"]] = table
    bom = rows["c_clients_bom.csv"]
    assert len(bom) == 1  # the trailing empty line is not a row
    assert bom[0]["id_client"] == "2" and bom[0]["country"] == "Spain"  # no BOM, no \r
    assert bom[0]["_row_number"] == 2
    reordered = rows["d_reordered.csv"][0]
    assert (reordered["id_client"], reordered["name"], reordered["country"]) == ("3", "Cy", "Italy")


def test_a_nul_byte_in_a_data_line_makes_only_that_line_malformed(landed):
    _, lake, _, report = landed
    (item,) = [item for item in report["landed"] if item["source"] == "m_clients_nul.csv"]
    rows = pq.read_table(lake / "bronze" / parsed_key(item["bronze_key"])).to_pylist()
    assert [(r["_row_number"], r["id_client"]) for r in rows] == [(2, None), (3, "9")]
    assert rows[0]["_malformed_error"] == "a NUL byte (not text)"


def test_an_empty_folder_says_there_is_nothing_to_ingest(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    env = clean_env(LAKE_DIR=str(tmp_path / "lake"), COLUMNS="250")
    result = lakehouse("ingest", str(empty), env=env)
    assert "no files to ingest: give CSV files, or folders holding" in result.stdout
    assert "Ingestion" not in result.stdout  # no empty table


def test_second_ingest_skips_everything_already_landed(landed):
    src, lake, env, _ = landed
    again = json.loads(lakehouse("ingest", str(src), "--json", env=env).stdout)
    assert again["landed"] == []
    assert sum("already in bronze" in s["reason"] for s in again["skipped"]) == 5
    assert len(list((lake / "bronze").rglob("*.csv"))) == 5
    # The run's summary groups them: one line per reason, a few names, then how many more.
    lines = _skipped_lines(again["skipped"], shown=3)
    assert len(lines) == 2, lines  # "already in bronze" and "not a .csv file" (notes.txt)
    already = next(line for line in lines if "already in bronze" in line)
    assert already.endswith(" and 2 more") and already.count(".csv") == 3, already
    assert "notes.txt" in next(line for line in lines if "not a .csv file" in line)


def test_a_run_without_purchases_in_bronze_builds_nothing_and_says_what_to_land(tmp_path):
    src = tmp_path / "only-clients"
    src.mkdir()
    (src / "clients.csv").write_text(f"{CLIENT_HEADER}\n1,Ann,ann@x.com,2024-01-01,France\n")
    lake = tmp_path / "lake"
    env = clean_env(LAKE_DIR=str(lake), LAKEHOUSE_STATE_DIR=str(tmp_path / "state"), COLUMNS="300")
    result = lakehouse("run", "--sources", str(src), "--json", env=env, check=False)
    message = " ".join(result.stderr.split())
    assert result.returncode == 1, message
    assert "bronze holds no purchases file yet, so there is nothing to build" in message
    assert "lakehouse run --sources FOLDER" in message
    # --json: the summary of the failed run on stdout, as far as it went.
    summary = json.loads(result.stdout)
    assert summary["status"] == "failed", summary
    assert "nothing to build" in summary["error"]
    assert [landed["source"] for landed in summary["ingest"]["landed"]] == ["clients.csv"]
    assert set(summary["stages"]) == {"check object store", "ingest"}
    assert len(list((lake / "bronze").rglob("clients__*.csv"))) == 1  # what landed stays
    assert not (lake / "warehouse" / "lakehouse.duckdb").exists()  # dbt never started


# --- files already read ----------------------------------------------------------------------


@pytest.fixture
def reads(monkeypatch):
    """Every file ingestion hashes (reads whole) and every upload to the landing area."""
    import orchestration.ingest as ingest_module
    from orchestration.storage import Lake

    seen = SimpleNamespace(hashed=0, landing_uploads=[])
    hash_file, upload = ingest_module.sha256_of, Lake.upload_file

    def sha256_of(path):
        seen.hashed += 1
        return hash_file(path)

    def upload_file(self, layer, key, source):
        if layer == "sources":
            seen.landing_uploads.append(key)
        upload(self, layer, key, source)

    monkeypatch.setattr(ingest_module, "sha256_of", sha256_of)
    monkeypatch.setattr(Lake, "upload_file", upload_file)
    return seen


def local(lake_dir, state_dir):
    from orchestration.settings import Settings
    from orchestration.storage import Lake

    return Lake(Settings(_env_file=None, lake_dir=lake_dir, LAKEHOUSE_STATE_DIR=state_dir))


def test_a_file_already_in_bronze_is_not_read_again_until_it_changes(tmp_path, reads):
    """The landing area grows every day: a file read once (and in bronze) is not copied or
    hashed again while its stamp is unchanged, from `--sources` or from the landing area."""
    from orchestration.ingest import HashedFiles, ingest

    src = tmp_path / "src"
    src.mkdir()
    purchases = src / "purchases.csv"
    (src / "clients.csv").write_text(f"{CLIENT_HEADER}\n1,Ann,ann@x.com,2024-01-01,France\n")
    purchases.write_text(f"{PURCHASE_HEADER}\n1,1,Laptop,10.00,1,2024-02-01,10.00\n")
    lake = local(tmp_path / "lake", tmp_path / "state")

    first = ingest(lake, [src])
    assert [item.source for item in first.landed] == ["clients.csv", "purchases.csv"]
    assert (reads.hashed, reads.landing_uploads) == (2, ["clients.csv", "purchases.csv"])

    again = ingest(lake, [src])
    assert (
        again.landed == [] and [why[:17] for _, why in again.skipped] == ["already in bronze"] * 2
    )
    assert (reads.hashed, reads.landing_uploads) == (2, ["clients.csv", "purchases.csv"])

    # The landing area's copies are other files: each is read once, then no more.
    assert [name for name, _ in ingest(lake).skipped] == ["clients.csv", "purchases.csv"]
    assert reads.hashed == 4
    assert len(ingest(lake).skipped) == 2 and reads.hashed == 4

    # Rewritten in place with the same size and its old modification time put back: the
    # change time still moves, so the file is read, and its new content lands.
    before = purchases.stat()
    time.sleep(0.05)
    purchases.write_text(f"{PURCHASE_HEADER}\n1,1,Laptop,20.00,1,2024-02-01,20.00\n")
    os.utime(purchases, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert purchases.stat().st_size == before.st_size
    changed = ingest(lake, [src])
    assert [item.source for item in changed.landed] == ["purchases.csv"]
    assert reads.hashed == 5

    # Another lake with the same state folder: bronze there holds none of the hashes recorded.
    other = ingest(local(tmp_path / "other-lake", tmp_path / "state"), [src])
    assert len(other.landed) == 2 and reads.hashed == 7

    # An unreadable index is an empty one: every file is read, nothing is lost.
    index = HashedFiles(lake.settings).path
    index.write_text("{not json")
    assert len(ingest(lake, [src]).skipped) == 2 and reads.hashed == 9
    assert sorted(json.loads(index.read_text())) == [str(src / "clients.csv"), str(purchases)]


def test_the_index_forgets_files_that_are_gone(tmp_path, reads):
    """A file deleted from a `--sources` folder or the landing area leaves the index, which
    would otherwise grow with every file ever ingested; a file that comes back is read again."""
    from orchestration.ingest import HashedFiles, ingest

    src = tmp_path / "src"
    src.mkdir()
    (src / "clients.csv").write_text(f"{CLIENT_HEADER}\n1,Ann,ann@x.com,2024-01-01,France\n")
    (src / "purchases.csv").write_text(f"{PURCHASE_HEADER}\n1,1,Laptop,10.00,1,2024-02-01,10.00\n")
    lake = local(tmp_path / "lake", tmp_path / "state")
    ingest(lake, [src])
    ingest(lake)  # the landing area's copies are indexed too
    index = HashedFiles(lake.settings).path
    landing = tmp_path / "lake" / "sources"
    assert sorted(json.loads(index.read_text())) == sorted(
        str(folder / name) for folder in (src, landing) for name in ("clients.csv", "purchases.csv")
    )

    (src / "purchases.csv").unlink()
    assert len(ingest(lake, [src]).skipped) == 1
    (landing / "clients.csv").unlink()
    assert len(ingest(lake).skipped) == 1
    assert sorted(json.loads(index.read_text())) == [
        str(landing / "purchases.csv"), str(src / "clients.csv")
    ]  # fmt: skip
    assert reads.hashed == 4

    # An object store's landing area: what a full listing no longer holds is dropped, and the
    # entries of other roots (another lake's landing area) stay.
    hashed = HashedFiles(lake.settings)
    hashed.entries = {
        "s3://sources/a.csv": ["1:e:t", "a" * 64],
        "s3://sources/day/b.csv": ["1:e:t", "b" * 64],
        "s3://other-sources/c.csv": ["1:e:t", "c" * 64],
    }
    hashed.forget_gone("s3://sources", {"s3://sources/a.csv"})
    assert sorted(hashed.entries) == ["s3://other-sources/c.csv", "s3://sources/a.csv"]
    assert hashed.changed
