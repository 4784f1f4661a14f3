"""Ingest: cleaning, dedupe, idempotence and numbers checked independently with DuckDB."""

from __future__ import annotations

from pathlib import Path

import duckdb

from workbench.lake.storage import Lake


def _lake_sql(lake: Lake, table: str, sql: str) -> list[tuple]:
    files = lake.files(table)
    con = duckdb.connect()
    con.execute(f"create view {table} as select * from read_parquet({files!r}, hive_partitioning=true)")
    return con.execute(sql).fetchall()


def test_small_lake_has_four_tables(small_lake: str) -> None:
    lake = Lake(small_lake)
    assert lake.tables() == ["customers", "products", "sales", "stores"]
    ((n, distinct),) = _lake_sql(lake, "sales", "select count(*), count(distinct transaction_id) from sales")
    assert n == distinct > 25_000


def test_landing_dir_fixture(landing_dir: Path) -> None:
    assert sorted(p.name for p in landing_dir.iterdir())[:2] == ["customers.csv", "products.csv"]
