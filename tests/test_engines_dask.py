"""The cluster engine's own behaviour: what splits, what moves to the tasks, what it refuses.

The answers of whole suites are checked in tests/test_differential.py; here each mechanism is
checked where it can fail: the split's shapes and reasons (pure sqlglot), which filters a
task may apply (a filter moved wrongly is a silently wrong answer), many-task combines and
gathers against DuckDB on the same lake, refusals by name, pruning, and task errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlglot
from deltalake import DeltaTable
from sqlglot import exp

from workbench.errors import QueryFailed, QueryTimeout, UnsupportedQuery
from workbench.session import Workbench
from workbench.sql.engines import dask as dask_engine
from workbench.sql.engines import dask_frames, dask_tasks
from workbench.sql.engines.dask_frames import group_files
from workbench.sql.engines.scan_needs import table_needs
from workbench.sql.engines.split import AggregateSplit, shuffle_keys, split_aggregate
from workbench.sql.guard import check_sql

SCHEMA = {
    "sales": ["transaction_id", "store_id", "product_id", "customer_id", "revenue", "quantity", "year", "region"],
    "stores": ["store_id", "store_type", "region"],
    "products": ["product_id", "category"],
}


def _split(sql: str) -> AggregateSplit | str:
    return split_aggregate(check_sql(sql).expression, "sales", SCHEMA)


def test_decomposable_aggregates_split_into_partial_combine_final() -> None:
    cut = _split(
        "SELECT st.store_type, SUM(s.revenue) AS r, AVG(s.quantity) AS q, COUNT(*) AS n, MIN(s.revenue), "
        "RANK() OVER (ORDER BY SUM(s.revenue) DESC) AS rk FROM sales s JOIN stores st ON s.store_id = st.store_id "
        "LEFT JOIN products p ON s.product_id = p.product_id WHERE s.year = 2024 GROUP BY 1 HAVING COUNT(*) > 2"
    )
    assert isinstance(cut, AggregateSplit)
    partial = cut.partial.sql()
    assert cut.partial.find(exp.Window) is None and "JOIN stores" in partial and "WHERE s.year = 2024" in partial
    assert "SUM(s.quantity) AS _a1_s" in partial and "COUNT(s.quantity) AS _a1_c" in partial  # AVG = SUM / COUNT
    combine = cut.combine.sql()
    assert "COALESCE(SUM(_a2), 0)" in combine and "MIN(_a3)" in combine and "GROUP BY _k0" in combine
    assert cut.final.find(exp.Window) is not None
    assert {t.name for t in cut.final.find_all(exp.Table)} == {"_stage"}


@pytest.mark.parametrize(
    ("sql", "why"),
    [
        ("SELECT region FROM sales UNION SELECT region FROM stores", "set operation"),
        ("SELECT region, COUNT(DISTINCT customer_id), COUNT(DISTINCT store_id) FROM sales GROUP BY 1", "more than one"),
        ("SELECT region, SUM(DISTINCT revenue) FROM sales GROUP BY 1", "does not combine"),
        ("SELECT region, MEDIAN(revenue) FROM sales GROUP BY 1", "does not combine"),
        (
            "SELECT region, SUM(revenue) FROM sales WHERE store_id IN (SELECT store_id FROM stores) GROUP BY 1",
            "subquery",
        ),
        (
            "SELECT st.region, COUNT(s.revenue) FROM stores st LEFT JOIN sales s ON s.store_id = st.store_id "
            "GROUP BY 1",
            "nullable",
        ),
        (
            "SELECT st.region, SUM(revenue) FROM sales s RIGHT JOIN stores st ON s.store_id = st.store_id GROUP BY 1",
            "RIGHT",
        ),
        ("SELECT region, year, SUM(revenue) FROM sales GROUP BY ROLLUP (region, year)", "ROLLUP"),
        ("SELECT UPPER(region) AS region, SUM(revenue) FROM sales GROUP BY region", "both a column and an alias"),
        ("SELECT region, SUM(revenue) FILTER (WHERE year = 2024) FROM sales GROUP BY 1", "FILTER"),
        ("SELECT region, revenue FROM sales ORDER BY revenue DESC LIMIT 5", "no aggregate"),
        (
            "SELECT a.region, SUM(a.revenue) FROM sales a JOIN sales b USING (transaction_id) GROUP BY 1",
            "more than once",
        ),
    ],
)
def test_what_does_not_split_says_why(sql: str, why: str) -> None:
    cut = _split(sql)
    assert isinstance(cut, str) and why.lower() in cut.lower()


def test_two_large_tables_are_hashed_on_their_join_key() -> None:
    tpch = {"lineitem": ["l_orderkey", "l_qty"], "orders": ["o_orderkey", "o_prio"], "nation": ["n_key"]}

    def keys(sql: str) -> tuple[str, str] | str:
        return shuffle_keys(check_sql(sql, tables=set(tpch)).expression, "lineitem", "orders", tpch)

    comma = "SELECT o_prio, SUM(l_qty) FROM orders, lineitem WHERE o_orderkey = l_orderkey GROUP BY 1"
    assert keys(comma) == ("l_orderkey", "o_orderkey")
    on = "SELECT o.o_prio, SUM(l.l_qty) FROM lineitem l JOIN orders o ON o.o_orderkey = l.l_orderkey GROUP BY 1"
    assert keys(on) == ("l_orderkey", "o_orderkey")
    outer = "SELECT o.o_prio, SUM(l.l_qty) FROM lineitem l LEFT JOIN orders o ON o.o_orderkey = l.l_orderkey GROUP BY 1"
    assert "outer join" in str(keys(outer))
    assert "no equality" in str(
        keys("SELECT o_prio, SUM(l_qty) FROM orders, lineitem WHERE o_orderkey < l_orderkey GROUP BY 1")
    )


def _filters(sql: str) -> dict[str, str | None]:
    needs = table_needs(check_sql(sql).expression, SCHEMA)
    return {t: (f.sql() if (f := n.row_filter()) is not None else None) for t, n in needs.items()}


def test_task_filters_only_where_no_reference_needs_other_rows() -> None:
    assert _filters(
        "SELECT * FROM sales s JOIN stores st USING (store_id) WHERE s.year = 2024 AND st.region = 'North'"
    ) == {
        "sales": "year = 2024",
        "stores": "region = 'North'",
        "products": None,
    }
    # the nullable side of an outer join keeps every row (its predicate may hold on NULLs)
    left = "SELECT COUNT(*) FROM stores st LEFT JOIN sales s ON s.store_id = st.store_id WHERE s.year IS NULL"
    assert _filters(left)["sales"] is None and _filters(left)["stores"] is None
    # two references: a task keeps the rows of either
    both = "SELECT (SELECT SUM(revenue) FROM sales WHERE year = 2023), SUM(revenue) FROM sales WHERE year = 2024"
    assert _filters(both)["sales"] == "year = 2023 OR year = 2024"
    # one unfiltered reference means every row; a correlated predicate never moves
    corr = (
        "SELECT store_id FROM stores st WHERE EXISTS (SELECT 1 FROM sales s WHERE s.store_id = st.store_id) "
        "AND st.store_type = 'Mall'"
    )
    assert _filters(corr) == {"sales": None, "stores": "store_type = 'Mall'", "products": None}
    volatile = table_needs(sqlglot.parse_one("SELECT * FROM sales WHERE RANDOM() < 0.5", read="duckdb"), SCHEMA)
    assert volatile["sales"].row_filter() is None


def test_task_columns_are_those_the_query_reads() -> None:
    needs = table_needs(
        check_sql("SELECT s.region, SUM(revenue) FROM sales s JOIN stores USING (store_id) GROUP BY 1").expression,
        SCHEMA,
    )
    assert needs["sales"].columns == {"region", "revenue", "store_id"}
    assert needs["stores"].columns == {"store_id"}
    star = table_needs(check_sql("SELECT * FROM stores").expression, SCHEMA)
    assert star["stores"].columns == set(SCHEMA["stores"])


def test_file_groups() -> None:
    files = [f"f{i}" for i in range(300)]
    assert len(group_files(files, [10_000] * 300)) == 2  # at most 256 tiny files per task
    assert len(group_files(files[:60], [2**20] * 60, min_partitions=2)) == 2  # 60 MB: one per thread
    big = group_files(files[:10], [40 * 2**20] * 10, target=64 * 2**20)
    assert len(big) == 7 and sum(len(g) for g in big) == 10
    default = group_files(files[:10], [40 * 2**20] * 10)  # 400 MB in tasks of ~256 MB
    assert len(default) == 2 and sum(len(g) for g in default) == 10


# --- on the cluster --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wb(sql_lake: str, dask_client: Any) -> Iterator[Workbench]:
    session = Workbench.open(lake=sql_lake, dask_client=dask_client)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dask_frames, "MAX_FILES_PER_PARTITION", 8)  # dozens of tasks on the small lake
        yield session
    session.close()


def _same_as_duckdb(wb: Workbench, sql: str) -> str:
    got = wb.sql(sql, engine="dask", use_cache=False)
    want = wb.sql(sql, engine="duckdb", use_cache=False)
    assert got.df.columns.tolist() == want.df.columns.tolist()
    key = list(want.df.columns)
    a = got.df.sort_values(key).reset_index(drop=True)
    b = want.df.sort_values(key).reset_index(drop=True)
    assert a.shape == b.shape
    for col in key:
        if a[col].dtype.kind == "f":
            assert ((a[col] - b[col]).abs() <= 1e-9 * b[col].abs().clip(lower=1)).all() or a[col].equals(b[col]), col
        else:
            assert a[col].astype(str).tolist() == b[col].astype(str).tolist(), col
    return wb.sql(sql, engine="dask", explain=True).explain or ""


SPLIT = [
    "SELECT region, month, SUM(revenue) AS r, AVG(quantity) AS q, COUNT(*) AS n, MIN(revenue) AS lo, "
    "MAX(revenue) AS hi FROM sales WHERE year = 2023 GROUP BY region, month",
    "SELECT COUNT(*) AS n, SUM(revenue) AS r, AVG(revenue) AS a, MIN(date) AS d FROM sales "
    "WHERE year = 2024 AND quantity < 0",
    "SELECT category, SUM(revenue) AS r, RANK() OVER (ORDER BY SUM(revenue) DESC) AS rk FROM sales "
    "WHERE year = 2024 GROUP BY category HAVING COUNT(*) > 10 ORDER BY rk LIMIT 3",
    "SELECT st.store_type, p.category, SUM(s.revenue) / NULLIF(SUM(s.quantity), 0) AS per_unit FROM sales s "
    "JOIN stores st ON s.store_id = st.store_id LEFT JOIN products p ON s.product_id = p.product_id GROUP BY 1, 2",
    # exact COUNT(DISTINCT): partial rows hash-partitioned on the value, one merge task per bucket
    "SELECT region, COUNT(DISTINCT customer_id) AS c, SUM(revenue) AS r, AVG(quantity) AS q, MAX(date) AS d "
    "FROM sales GROUP BY region",
    "SELECT COUNT(DISTINCT product_id) AS p, COUNT(*) AS n FROM sales WHERE year = 2024",
    "SELECT COUNT(DISTINCT product_id) AS p FROM sales WHERE year = 2024 AND quantity < 0",
]


@pytest.mark.parametrize("sql", SPLIT)
def test_split_over_many_tasks_matches_duckdb(wb: Workbench, sql: str) -> None:
    explain = _same_as_duckdb(wb, sql)
    assert "route: split aggregate" in explain
    tasks = int(explain.split("tasks: {'sales': ")[1].split("}")[0])
    assert tasks > 1, explain


GLOBAL = [  # each needs all of its rows at once: gathered, never run per task
    "SELECT region FROM sales WHERE year = 2024 EXCEPT SELECT region FROM stores WHERE store_type = 'Mall'",
    "SELECT customer_id FROM sales WHERE year = 2023 INTERSECT SELECT customer_id FROM sales WHERE year = 2024",
    "SELECT COUNT(DISTINCT customer_id) AS c, COUNT(DISTINCT product_id) AS p FROM sales",
    "SELECT DISTINCT region, channel FROM sales",
    "SELECT transaction_id, revenue FROM sales ORDER BY revenue DESC, transaction_id LIMIT 7",
    "SELECT transaction_id, SUM(revenue) OVER (PARTITION BY region ORDER BY date, transaction_id) AS run "
    "FROM sales WHERE year = 2024 AND month = 3",
    "SELECT s.transaction_id FROM sales s WHERE s.year = 2024 AND s.month = 1 AND s.revenue > "
    "(SELECT AVG(t.revenue) * 3 FROM sales t WHERE t.region = s.region AND t.year = 2024)",
]


@pytest.mark.parametrize("sql", GLOBAL)
def test_global_operations_see_all_rows(wb: Workbench, sql: str) -> None:
    assert "route: gather" in _same_as_duckdb(wb, sql)


SHUFFLED = [  # customers made "too large to broadcast": both tables hash-partitioned on the join key
    "SELECT c.segment, s.channel, SUM(s.revenue) AS r, COUNT(*) AS n, AVG(s.quantity) AS q FROM sales s "
    "JOIN customers c ON s.customer_id = c.customer_id JOIN stores st ON s.store_id = st.store_id "
    "WHERE s.year = 2024 AND c.loyalty_tier <> 'Bronze' GROUP BY 1, 2",
    "SELECT MAX(c.signup_date) AS latest, MIN(s.revenue) AS lo FROM sales s, customers c "
    "WHERE s.customer_id = c.customer_id",
]


@pytest.mark.parametrize("sql", SHUFFLED)
def test_join_of_two_large_tables_by_hash_buckets(
    wb: Workbench, sql_lake: str, sql: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    stores = sum(Path(f.removeprefix("file://")).stat().st_size for f in DeltaTable(f"{sql_lake}/stores").file_uris())
    monkeypatch.setattr(dask_engine, "BROADCAST_MAX_BYTES", stores)  # stores broadcast, customers not
    explain = _same_as_duckdb(wb, sql)
    assert (
        "route: split aggregate" in explain and "'customers':" in explain and "broadcast: ['customers']" not in explain
    )


def test_gathering_more_than_the_bound_is_refused_by_name(wb: Workbench, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dask_engine, "GATHER_MAX_BYTES", 10_000)
    with pytest.raises(UnsupportedQuery) as info:
        wb.sql("SELECT DISTINCT customer_id, product_id FROM sales", engine="dask", use_cache=False)
    assert "gathers rows" in info.value.message and "no aggregate" in info.value.message
    assert info.value.hint and "--engine duckdb" in info.value.hint


def test_a_task_error_is_reported_not_hidden(wb: Workbench) -> None:
    with pytest.raises(QueryFailed) as info:
        wb.sql("SELECT SUM(CAST(region AS INTEGER)) FROM sales", engine="dask", use_cache=False)
    assert "cluster task failed" in info.value.message and "Conversion" in info.value.message


def test_dask_prunes_partitions(wb: Workbench, sql_lake: str) -> None:
    sql = "SELECT COUNT(*) AS n FROM sales WHERE year = 2024 AND region = 'North'"
    result = wb.sql(sql, engine="dask", use_cache=False)
    files = DeltaTable(f"{sql_lake}/sales").file_uris(
        partition_filters=[("year", "=", "2024"), ("region", "=", "North")]
    )
    assert 0 < result.files_scanned == len(files)
    assert result.rows == wb.sql(sql, engine="duckdb", use_cache=False).rows


def test_partition_columns_keep_their_types(wb: Workbench) -> None:
    sql = "SELECT DISTINCT year, month, region FROM sales WHERE year = 2023"
    got, want = wb.sql(sql, engine="dask").df, wb.sql(sql, engine="duckdb").df
    assert got.dtypes.astype(str).tolist() == want.dtypes.astype(str).tolist()
    assert len(got) == len(want)


def test_time_limit_cancels_the_cluster_tasks(sql_lake: str, dask_client: Any) -> None:
    with (
        Workbench.open(lake=sql_lake, dask_client=dask_client, timeout_s=0.001) as hurried,
        pytest.raises(QueryTimeout) as info,
    ):
        hurried.sql("SELECT region, SUM(revenue) FROM sales GROUP BY 1", engine="dask", use_cache=False)
    assert "cancelled" in info.value.message and "WORKBENCH_TIMEOUT_S" in (info.value.hint or "")


def test_with_queries_that_split_run_on_the_cluster_first(wb: Workbench) -> None:
    sql = (
        "WITH by_store AS (SELECT store_id, SUM(revenue) AS r, COUNT(*) AS n FROM sales WHERE year = 2024 "
        "GROUP BY store_id), top AS (SELECT MAX(r) AS m FROM by_store) "
        "SELECT st.region, COUNT(*) AS stores, SUM(b.r) AS revenue FROM by_store b JOIN stores st "
        "ON b.store_id = st.store_id WHERE b.r > (SELECT m / 4 FROM top) GROUP BY st.region"
    )
    explain = _same_as_duckdb(wb, sql)
    assert explain.count("WITH by_store: route: split aggregate") == 1  # 'top' reads a WITH query: left in place
    assert "not split: its WITH queries ran split on the cluster first" in explain


def test_a_repeated_query_reuses_its_plan_until_the_files_change(
    wb: Workbench, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same SQL over the same files plans once; other filters (other files) plan anew."""
    engine = wb.router.engine("dask")
    assert isinstance(engine, dask_engine.DaskEngine)
    calls: list[str] = []
    real_plan = engine.plan

    def counting(tree: exp.Expression, *args: Any, **kwargs: Any) -> Any:
        calls.append(tree.sql())
        return real_plan(tree, *args, **kwargs)

    monkeypatch.setattr(engine, "plan", counting)
    sql = "SELECT region, SUM(revenue) AS r FROM sales WHERE year = 2023 AND month = 4 GROUP BY region ORDER BY region"
    first = wb.sql(sql, engine="dask", use_cache=False).df
    again = wb.sql(sql, engine="dask", use_cache=False).df
    assert len(calls) == 1 and first.equals(again)
    wb.sql(sql.replace("month = 4", "month = 5"), engine="dask", use_cache=False)
    assert len(calls) == 2


# --- one-round queries: direct calls to the workers' DuckDB runners ---------------------------------

ONE_ROUND = [
    "SELECT month, SUM(revenue) AS r, COUNT(*) AS n FROM sales WHERE year = 2024 AND region = 'North' "
    "GROUP BY month ORDER BY month",
    # a broadcast join: the runner takes products from its own worker's memory
    "SELECT p.category, SUM(s.revenue) AS r, AVG(s.quantity) AS q FROM sales s JOIN products p "
    "ON s.product_id = p.product_id WHERE s.year = 2024 AND s.region = 'North' GROUP BY 1 ORDER BY 1",
]


def _same(a: Any, b: Any) -> None:
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9)


@pytest.fixture
def one_round(sql_lake: str, dask_client: Any) -> Iterator[Workbench]:
    """A session with the default task size: a pruned query on the small lake is one round of tasks."""
    session = Workbench.open(lake=sql_lake, dask_client=dask_client)
    yield session
    session.close()


def _tasks_run(client: Any, run: Any) -> int:
    """How many DuckDB tasks (``run_sql``) the scheduler ran during ``run()``."""
    from distributed import get_task_stream

    with get_task_stream(client) as ts:
        run()
    return sum(1 for t in ts.data if "run_sql" in str(t["key"]))


@pytest.mark.parametrize("sql", ONE_ROUND)
def test_a_one_round_query_goes_to_the_workers_runners(one_round: Workbench, dask_client: Any, sql: str) -> None:
    explain = _same_as_duckdb(one_round, sql)  # also reads the broadcast once
    assert "direct calls to the workers' DuckDB runners" in explain
    got: list[Any] = []
    assert _tasks_run(dask_client, lambda: got.append(one_round.sql(sql, engine="dask", use_cache=False).df)) == 0
    _same(got[0], one_round.sql(sql, engine="duckdb", use_cache=False).df)
    actors = dask_client.run(lambda dask_worker: len(dask_worker.state.actors))
    assert len(actors) == 2 and all(n >= 1 for n in actors.values())


def test_without_direct_calls_every_query_is_a_task(sql_lake: str, dask_client: Any) -> None:
    with Workbench.open(lake=sql_lake, dask_client=dask_client, dask_direct=False) as tasks_only:
        sql = ONE_ROUND[0]
        explain = _same_as_duckdb(tasks_only, sql)
        assert "route: split aggregate" in explain and "direct calls" not in explain
        assert _tasks_run(dask_client, lambda: tasks_only.sql(sql, engine="dask", use_cache=False)) >= 1


def test_runners_lost_with_their_workers_start_again(sql_lake: str) -> None:
    """A restarted cluster (new worker processes, every actor gone) answers the next query, right."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
        Workbench.open(lake=sql_lake, dask_client=client) as session,
    ):
        sql = ONE_ROUND[0]
        want = session.sql(sql, engine="duckdb", use_cache=False).df
        _same(session.sql(sql, engine="dask", use_cache=False).df, want)  # runners started
        client.restart()
        _same(session.sql(sql, engine="dask", use_cache=False).df, want)
        assert sum(client.run(lambda dask_worker: len(dask_worker.state.actors)).values()) >= 1


def test_runners_the_client_cannot_reach_leave_the_engine_on_tasks(
    sql_lake: str, dask_client: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """As behind a gateway whose workers only its proxy reaches: warned once, then tasks, right answers."""

    def unreachable(self: Any) -> bool:
        raise OSError("Unable to contact Actor's worker")

    monkeypatch.setattr(dask_tasks.Runner, "ping", unreachable)  # the test cluster's workers share this process
    with Workbench.open(lake=sql_lake, dask_client=dask_client) as session:
        sql = ONE_ROUND[0]
        want = session.sql(sql, engine="duckdb", use_cache=False).df
        with caplog.at_level("WARNING", logger="workbench.sql.engines.dask"):
            got: list[Any] = []
            ran = _tasks_run(dask_client, lambda: got.append(session.sql(sql, engine="dask", use_cache=False).df))
        assert ran >= 1 and "not reachable" in caplog.text and "WORKBENCH_DASK_DIRECT" in caplog.text
        _same(got[0], want)
        assert "direct calls" not in (session.sql(sql, engine="dask", explain=True).explain or "")
        assert _tasks_run(dask_client, lambda: session.sql(sql, engine="dask", use_cache=False)) >= 1


def test_a_runners_query_error_is_reported_as_a_tasks(one_round: Workbench) -> None:
    where = " FROM sales WHERE year = 2024 AND region = 'North'"
    with pytest.raises(QueryFailed) as info:
        one_round.sql("SELECT SUM(CAST(region AS INTEGER)) AS x" + where, engine="dask", use_cache=False)
    assert "cluster task failed" in info.value.message and "Conversion" in info.value.message
    assert info.value.hint and "--engine duckdb" in info.value.hint


def test_a_runners_query_past_its_time_limit_times_out(sql_lake: str, dask_client: Any) -> None:
    with (
        Workbench.open(lake=sql_lake, dask_client=dask_client, timeout_s=0.001) as hurried,
        pytest.raises(QueryTimeout) as info,
    ):
        hurried.sql(ONE_ROUND[0], engine="dask", use_cache=False)
    assert "WORKBENCH_TIMEOUT_S" in (info.value.hint or "")
