"""The demo's example queries: each answer equals plain DuckDB's and prints sorted (issue 15).

The demo printed months "5, 9, 11, 2 ..." and labelled an example "refused by dask" right
before dask answered it.
"""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest
from deltalake import DeltaTable

import workbench
from workbench.sql.examples import EXAMPLES


def _plain(lake: str, sql: str) -> pd.DataFrame:
    con = duckdb.connect()
    for table in ("sales", "stores"):
        files = DeltaTable(f"{lake}/{table}").file_uris()
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet({files!r}, hive_partitioning = true)")
    return con.execute(sql).df()


@pytest.mark.parametrize(("title", "sql"), EXAMPLES, ids=[t for t, _ in EXAMPLES])
def test_example_equals_plain_duckdb_in_the_same_order(small_lake: str, title: str, sql: str) -> None:
    assert "ORDER BY" in sql.upper(), f"{title}: an example prints in a defined order"
    wb = workbench.connect(lake=small_lake)
    try:
        got = wb.sql(sql).df
    finally:
        wb.close()
    want = _plain(small_lake, sql)
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want) > 1
    for column in got.columns:
        if pd.api.types.is_float_dtype(want[column]):
            assert got[column].tolist() == pytest.approx(want[column].tolist(), rel=1e-9)
        else:
            assert [str(v) for v in got[column]] == [str(v) for v in want[column]]


def test_no_example_claims_an_engine_refuses_it() -> None:
    """Which engine answers is the router's business and changes (i18 replaces the dask engine)."""
    for title, _ in EXAMPLES:
        assert "refused" not in title.lower() and "dask" not in title.lower(), title
