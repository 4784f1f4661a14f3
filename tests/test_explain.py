"""`workbench sql --explain` runs nothing, on any engine (issue 15).

On the dask engine explain used to load (and persist on the cluster) every dimension table
the query joined. Here the cluster's task stream must stay empty while a join is explained,
and DuckDB must read no data file (its EXPLAIN is a plan, not EXPLAIN ANALYZE).
The engines' error path is checked here too: an unknown column gets the nearest real one.
"""

from __future__ import annotations

from typing import Any

import pytest

from workbench.session import Workbench

JOIN = (
    "SELECT st.store_type, SUM(s.revenue) AS revenue FROM sales s JOIN stores st ON s.store_id = st.store_id "
    "WHERE s.year = 2023 GROUP BY st.store_type"
)


def test_explain_on_dask_runs_no_task(small_lake: str, dask_client: Any) -> None:
    from distributed import get_task_stream

    with Workbench.open(small_lake, dask_client=dask_client) as wb:
        with get_task_stream(client=dask_client) as stream:
            result = wb.sql(JOIN, engine="dask", explain=True)
        assert result.explain and "stores" in result.explain.lower()
        assert result.df.empty
        assert stream.data == [], [t["key"] for t in stream.data][:5]
        # and the query itself still runs (and so does run tasks) on the same engine afterwards
        with get_task_stream(client=dask_client) as stream:
            ran = wb.sql(JOIN, engine="dask")
        assert len(ran.df) > 0 and stream.data


@pytest.mark.parametrize("engine", ["duckdb", "auto"])
def test_explain_on_duckdb_returns_a_plan_and_no_rows(small_lake: str, engine: str) -> None:
    with Workbench.open(small_lake) as wb:
        result = wb.sql(JOIN, engine=engine, explain=True)
    assert result.df.empty
    assert result.explain and "EXPLAIN ANALYZE" not in result.explain


@pytest.mark.parametrize("engine", ["duckdb", "dask"])
def test_unknown_column_gets_the_nearest_real_one(small_lake: str, dask_client: Any, engine: str) -> None:
    from workbench.errors import QueryFailed

    with Workbench.open(small_lake, dask_client=dask_client) as wb, pytest.raises(QueryFailed) as info:
        wb.sql("SELECT regoin, SUM(revenue) AS revenue FROM sales GROUP BY regoin", engine=engine)
    assert "did you mean 'region'?" in info.value.hint
    assert "`workbench columns sales`" in info.value.hint
