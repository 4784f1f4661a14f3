"""The router: every route with its reason, the cache, the query log, invalidation and outages.

Numbers are checked against plain DuckDB over the same Delta files (``lake_duckdb``), never
against the workbench itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.test_rollup_rewrite import lake_duckdb, same_rows
from workbench.config import get_settings
from workbench.errors import QueryRefused
from workbench.session import Workbench

ELIGIBLE = "SELECT region, SUM(revenue) AS revenue, COUNT(*) AS n FROM sales WHERE year = 2024 GROUP BY region"
#: the rollups small enough and covering region x year (which one wins depends on their sizes)
REGION_ROLLUPS = {"rollup:monthly_store", "rollup:monthly_region_category_channel"}
DISTINCT = "SELECT region, COUNT(DISTINCT customer_id) AS buyers FROM sales WHERE year = 2023 GROUP BY region"
JOIN = (
    "SELECT p.category, p.brand, SUM(s.revenue) AS revenue FROM sales s JOIN products p "
    "ON s.product_id = p.product_id WHERE s.year = 2023 GROUP BY p.category, p.brand ORDER BY revenue DESC LIMIT 5"
)


@pytest.fixture(params=["sqlite", "postgres"])
def catalog_env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test over the default SQLite catalog and over a real PostgreSQL catalog."""
    if request.param == "postgres":
        monkeypatch.setenv("WORKBENCH_CATALOG_URL", request.getfixturevalue("postgres_url"))
    return str(request.param)


@pytest.fixture
def wb(small_lake: str, catalog_env: str) -> Iterator[Workbench]:
    with Workbench.open(small_lake) as session:
        yield session


def test_routes_reasons_and_answers(wb: Workbench, small_lake: str) -> None:
    con = lake_duckdb(small_lake)
    first = wb.sql(ELIGIBLE)
    assert first.route in REGION_ROLLUPS and not first.cached
    assert "fresh" in first.reason and "covered by rollup" in first.reason
    assert same_rows(first.df, con.execute(ELIGIBLE).df())

    again = wb.sql(ELIGIBLE)
    assert again.route == "cache" and again.cached and "cache hit" in again.reason
    assert same_rows(again.df, first.df)

    base = wb.sql(DISTINCT)
    assert base.route == "duckdb" and base.reason.startswith("no rollup: COUNT(DISTINCT")
    assert "after pruning" in base.reason and base.files_scanned > 0 and base.bytes_scanned > 0
    assert base.details["estimated_bytes"] >= base.bytes_scanned > 0  # stats never under-estimate
    assert same_rows(base.df, con.execute(DISTINCT).df())

    joined = wb.sql(JOIN)
    assert joined.route in {"rollup:monthly_product", "rollup:monthly_product_store"}  # the smaller one
    assert same_rows(joined.df, con.execute(JOIN).df(), ordered=True)

    explicit = wb.sql(ELIGIBLE, engine="duckdb")
    assert explicit.route == "duckdb" and not explicit.cached and "requested" in explicit.reason
    assert same_rows(explicit.df, first.df)


def test_every_query_is_logged_with_its_route(wb: Workbench) -> None:
    wb.sql(ELIGIBLE, user="admin")
    wb.sql(ELIGIBLE, user="admin")
    wb.sql(DISTINCT, user="admin")
    with pytest.raises(QueryRefused):
        wb.sql("DELETE FROM sales", user="admin")
    wb.router.flush()  # rows are written by a background thread, after the answer
    log = list(reversed(wb.router.catalog.query_log(limit=10)))
    assert [e.route for e in log][1:] == ["cache", "duckdb", None] and log[0].route in REGION_ROLLUPS
    assert [e.cache_hit for e in log] == [False, True, False, False]
    assert all(e.latency_ms is not None and e.user == "admin" for e in log)
    assert log[2].files_scanned and log[2].bytes_scanned and log[2].rows == 5
    assert log[3].error and "QueryRefused" in log[3].error
    audit = list(reversed(wb.router.catalog.audit_entries(limit=10)))
    assert [a.outcome for a in audit] == ["ok", "ok", "ok", "refused"]


def test_explain_and_json_show_route_reason_and_scans(small_lake: str) -> None:
    from workbench.cli import main

    runner = CliRunner()
    out = runner.invoke(main, ["--lake", small_lake, "sql", "--json", ELIGIBLE])
    assert out.exit_code == 0, out.output
    body = json.loads(out.stdout)
    assert {"route", "reason", "cached", "files_scanned", "bytes_scanned"} <= set(body)
    assert body["route"].startswith("rollup:") and body["files_scanned"] > 0
    out = runner.invoke(main, ["--lake", small_lake, "sql", "--explain", DISTINCT])
    assert out.exit_code == 0, out.output
    assert "route: duckdb" in out.stdout and "reason: no rollup" in out.stdout and "estimated:" in out.stdout


def test_ingest_invalidates_cache_and_refreshes_rollups(fresh_lake: str, tmp_path: Path) -> None:
    import datetime as dt

    from workbench.cache import open_cache
    from workbench.lake.generate import generate
    from workbench.lake.ingest import ingest
    from workbench.lake.storage import Lake

    sql = "SELECT SUM(revenue) AS r, COUNT(*) AS n FROM sales WHERE year = 2024"
    with Workbench.open(fresh_lake) as wb:
        before = wb.sql(sql)
        assert wb.sql(sql).cached
        assert open_cache(get_settings()).stats().entries == 1
        landing = tmp_path / "more"
        generate(1_500, str(landing), seed=5, start=dt.date(2024, 12, 1), end=dt.date(2024, 12, 31), chunk_rows=1_500)
        ingest(str(landing), Lake(fresh_lake))
        assert open_cache(get_settings()).stats().entries == 0  # invalidated by the post-ingest hook
        after = wb.sql(sql)
        assert not after.cached and after.route.startswith("rollup:")  # refreshed rollup is fresh again
        assert after.df.iloc[0]["n"] > before.df.iloc[0]["n"]
        assert same_rows(after.df, lake_duckdb(fresh_lake).execute(sql).df())


def test_stale_rollup_is_never_used(fresh_lake: str) -> None:
    from workbench.lake.storage import Lake

    Lake(fresh_lake).table("sales").delete("region = 'North' AND year = 2024")
    with Workbench.open(fresh_lake) as wb:
        result = wb.sql(ELIGIBLE)
    assert result.route == "duckdb" and "no rollup is fresh" in result.reason
    assert same_rows(result.df, lake_duckdb(fresh_lake).execute(ELIGIBLE).df())
    assert "North" not in set(result.df["region"])


def test_row_filter_policy_applies_to_the_rollup(small_lake: str, monkeypatch: pytest.MonkeyPatch) -> None:
    policies = Path(__file__).parents[1] / "policies.yaml"
    if not policies.exists():
        pytest.skip("policies.yaml not in the repository")
    monkeypatch.setenv("WORKBENCH_POLICIES", str(policies))
    sql = "SELECT year, SUM(revenue) AS r FROM sales GROUP BY year"
    with Workbench.open(small_lake) as wb:
        north = wb.sql(sql, user="north_analyst")
        admin = wb.sql(sql, user="admin")
    assert north.route.startswith("rollup:") and north.route != "rollup:monthly_product"  # needs region
    expected = lake_duckdb(small_lake).execute(
        "SELECT year, SUM(revenue) AS r FROM sales WHERE region = 'North' GROUP BY year"
    )
    assert same_rows(north.df, expected.df())
    assert not same_rows(north.df, admin.df)  # different policy fingerprint: no shared cache entry


def test_redis_stopped_mid_run_loses_no_answers(small_lake: str, redis_server_factory, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    server = redis_server_factory()
    monkeypatch.setenv("WORKBENCH_REDIS_URL", server.url)
    con = lake_duckdb(small_lake)
    with Workbench.open(small_lake) as wb:
        assert not wb.sql(DISTINCT).cached
    with Workbench.open(small_lake) as wb:  # a new session: the hit comes from Redis
        hit = wb.sql(DISTINCT)
        assert hit.route == "cache" and "shared cache" in hit.reason
        server.stop()
        for sql in (ELIGIBLE, JOIN, ELIGIBLE, DISTINCT):
            result = wb.sql(sql)
            assert "shared cache" not in result.reason
            assert same_rows(result.df, con.execute(sql).df())


@pytest.mark.slow
def test_large_estimate_routes_to_the_cluster(small_lake: str) -> None:
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address="127.0.0.1:0")
    client = Client(cluster)
    try:
        with Workbench.open(small_lake, dask_client=client, duckdb_max_bytes=1) as wb:
            result = wb.sql(DISTINCT)
            assert result.route == "dask" and "duckdb_max_bytes" in result.reason
            assert same_rows(result.df, lake_duckdb(small_lake).execute(DISTINCT).df())
            assert wb.sql(ELIGIBLE).route.startswith("rollup:")  # a rollup beats the cluster
    finally:
        client.close()
        cluster.close()


def test_a_large_scan_the_cluster_could_only_gather_stays_in_process(small_lake: str) -> None:
    """Auto routing asks the cluster engine whether it suits the query, not only whether it can run it.

    A window over the raw rows cannot split across tasks: on the cluster every row would travel
    to one process, which DuckDB in-process does better. No cluster is started to decide this.
    """
    from workbench import cluster

    window = (
        "SELECT transaction_id, revenue, RANK() OVER (PARTITION BY region ORDER BY revenue DESC) AS r "
        "FROM sales WHERE year = 2023 ORDER BY r, transaction_id LIMIT 5"
    )
    with Workbench.open(small_lake, duckdb_max_bytes=1) as wb:
        result = wb.sql(window)
        assert result.route == "duckdb"
        assert "cannot be split across tasks" in result.reason and "gathered to one process" in result.reason
        assert same_rows(result.df, lake_duckdb(small_lake).execute(window).df(), ordered=True)
        assert cluster._current is None  # deciding started no cluster


def test_a_rollup_plan_is_remembered_per_statement_and_policy(
    wb: Workbench, small_lake: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Matching the rollups is planning like any other: done once per statement, versions and policy."""
    calls: list[str] = []
    real = wb.router.rollup_plan

    def counting(*args: object, **kwargs: object) -> object:
        calls.append("plan")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(wb.router, "rollup_plan", counting)
    con = lake_duckdb(small_lake)
    first = wb.sql(ELIGIBLE, use_cache=False, user="analyst")
    again = wb.sql(ELIGIBLE, use_cache=False, user="analyst")
    assert first.route in REGION_ROLLUPS and again.route == first.route and len(calls) == 1
    assert same_rows(again.df, con.execute(ELIGIBLE).df())
    north = wb.sql(ELIGIBLE, use_cache=False, user="north_analyst")  # another policy: planned again
    assert len(calls) == 2 and north.df["region"].tolist() == ["North"]
