"""The export writes the sales fact in its EXPORT_ORDER, though it sorts on a packed integer key:
compared row by row with a plain `order by country, product, purchase_date, purchase_id` over
values chosen to break a wrong packing (NULLs, case, accents, dates before 1970 and BC, ties)."""

from __future__ import annotations

import itertools
import random

import duckdb
import pyarrow.parquet as pq

from orchestration.export import EXPORT_ORDER, _copy

COUNTRIES = ["France", "france", "Éire", "Zambia", "", "A b", None]
PRODUCTS = ["Laptop", "laptop", "Écran", None]
DATES = [
    "2025-06-30",
    "1970-01-01",
    "1969-12-31",
    "0044-03-15 (BC)",
    "5000-01-01",
    None,
]
IDS = [7, 3, None]


def test_sales_fact_export_is_in_the_plain_export_order(tmp_path):
    rows = [
        (purchase_id, country, product, day, index)
        for index, (country, product, day, purchase_id) in enumerate(
            itertools.product(COUNTRIES, PRODUCTS, DATES, IDS)
        )
    ]
    random.Random(7).shuffle(rows)  # stored in no particular order
    conn = duckdb.connect()
    conn.execute("create schema gold")
    conn.execute(
        "create table gold.fct_sales (purchase_id bigint, country varchar, product varchar, "
        "purchase_date date, total decimal(18, 2), _row_state ubigint)"
    )
    conn.executemany(
        "insert into gold.fct_sales values (?, ?, ?, cast(? as date), ? * 0.01, 1)", rows
    )
    target = tmp_path / "fct_sales.parquet"

    written = _copy(conn, "gold.fct_sales", str(target))

    expected = conn.execute(
        "select purchase_id, country, product, purchase_date, total from gold.fct_sales "
        f"order by {EXPORT_ORDER['fct_sales']}"
    ).fetchall()
    exported = conn.execute(f"select * from read_parquet('{target}')").fetchall()
    assert written == len(rows) == len(exported) == len(COUNTRIES) * 4 * 6 * 3
    assert pq.read_schema(target).names == [
        "purchase_id",
        "country",
        "product",
        "purchase_date",
        "total",
    ]  # _row_state is internal
    assert exported == expected
    # the order is the documented one, not merely the same as another implementation's
    assert exported[0][1:3] == ("", "Laptop") and exported[-1][1:4] == (None, None, None)
