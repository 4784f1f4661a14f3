"""Dashboard numbers and behaviour without a browser.

Every number the dashboard shows is checked against plain DuckDB over the Delta table's
current files (read from the Delta log, not through the workbench), so a bug in the query
builder, the router or the KPI maths shows up as a mismatch.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import duckdb
import pandas as pd
import pytest
from click.testing import CliRunner

from workbench.ui.data import Kpi, format_value, kpis_from_totals, load_view
from workbench.ui.queries import Filters, dashboard_queries, where


@pytest.fixture(scope="module")
def sales_sql(small_lake: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Plain DuckDB over the current sales files: the independent reference."""
    from workbench.config import Settings
    from workbench.lake.storage import Lake

    home = tmp_path_factory.mktemp("ref_home")
    lake = Lake(small_lake, Settings(home=str(home), pii_key="test-only-key", lake=small_lake))
    files = list(lake.files("sales"))
    con = duckdb.connect()
    con.execute(f"CREATE VIEW sales AS SELECT * FROM read_parquet({files!r}, hive_partitioning = true)")

    def query(sql: str) -> pd.DataFrame:
        return con.execute(sql).df()

    yield query
    con.close()


@pytest.fixture(scope="module")
def wb(small_lake: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    import workbench

    session = workbench.connect(small_lake, home=str(tmp_path_factory.mktemp("wb_home")), pii_key="test-only-key")
    yield session
    session.close()


def _totals(sales_sql: Any, cond: str = "TRUE") -> dict[str, float]:
    row = sales_sql(f"SELECT SUM(revenue) r, SUM(profit) p, COUNT(*) n FROM sales WHERE {cond}").iloc[0]
    return {"revenue": float(row.r or 0), "profit": float(row.p or 0), "transactions": float(row.n)}


def test_filter_values_are_quoted_literals() -> None:
    hostile = "East' OR 1=1 --"
    sql = dashboard_queries(Filters(region=(hostile,)))[0].sql
    assert "'East'' OR 1=1 --'" in sql
    assert "GROUP BY year, month" in sql


def test_queries_are_rollup_friendly() -> None:
    f = Filters(start=dt.date(2024, 1, 1), end=dt.date(2024, 3, 31), category=("Books", "Toys"), channel=("Online",))
    for q in dashboard_queries(f):
        group = q.expression.args.get("group")
        if group:
            assert all(e.__class__.__name__ == "Column" for e in group.expressions), q.sql
        assert "year = 2024" in q.sql or q.name == "previous"  # the pruner sees the year


@pytest.mark.parametrize("columns", [(), ("region",), ("category",), ("channel",), ("region", "category", "channel")])
def test_every_dashboard_query_is_covered_by_a_default_rollup(columns: tuple[str, ...]) -> None:
    """Whatever the filters, a refresh over whole months never scans sales (the < 1 s target)."""
    from workbench.config import Settings
    from workbench.sql.guard import check_sql
    from workbench.sql.rollup_rewrite import RollupMatch, rewrite
    from workbench.sql.rollups import configured

    values = {"region": ("North", "West"), "category": ("Books",), "channel": ("Online",)}
    f = Filters(start=dt.date(2023, 4, 1), end=dt.date(2024, 3, 31), **{c: values[c] for c in columns})
    rollups = configured(Settings())
    for q in dashboard_queries(f):
        match = rewrite(check_sql(q.sql).expression, rollups, size=lambda r: 1)
        assert isinstance(match, RollupMatch), f"{q.name} not covered: {match}"


def test_previous_period_has_equal_length() -> None:
    f = Filters(start=dt.date(2024, 3, 1), end=dt.date(2024, 3, 31))
    prev = f.previous()
    assert prev is not None
    assert (prev.start, prev.end) == (dt.date(2024, 1, 30), dt.date(2024, 2, 29))
    assert Filters().previous() is None
    assert where(Filters()) == []


def test_kpi_maths_and_format() -> None:
    kpis = {k.name: k for k in kpis_from_totals({"revenue": 200.0, "profit": 50.0, "transactions": 4}, None)}
    assert kpis["margin"].value == 25.0 and kpis["aov"].value == 50.0
    assert kpis["revenue"].change_text() == "no previous period"
    k = Kpi("revenue", 110.0, 100.0)
    assert math.isclose(k.change_pct or 0, 10.0)
    assert Kpi("margin", 30.0, 25.0).change_text().startswith("▲ +5.0 pp")
    assert format_value(1_234_567.0, "currency") == "$1.23M"
    assert format_value(37.25, "percent") == "37.2%"
    assert format_value(None, "count") == "–"


@pytest.mark.parametrize(
    "filters, cond, prev_cond",
    [
        (Filters(region=("East",)), "region = 'East'", None),
        (
            Filters(
                start=dt.date(2024, 1, 1),
                end=dt.date(2024, 6, 30),
                category=("Electronics", "Books"),
                channel=("Online",),
            ),
            "date BETWEEN DATE '2024-01-01' AND DATE '2024-06-30' AND category IN ('Electronics', 'Books')"
            " AND channel = 'Online'",
            # 182 days (2024 is a leap year) before 2024-01-01
            "date BETWEEN DATE '2023-07-03' AND DATE '2023-12-31' AND category IN ('Electronics', 'Books')"
            " AND channel = 'Online'",
        ),
    ],
)
def test_view_numbers_match_duckdb(wb: Any, sales_sql: Any, filters: Filters, cond: str, prev_cond: str | None) -> None:
    data = load_view(wb, filters)
    kpis = {k.name: k for k in data.kpis}
    want = _totals(sales_sql, cond)
    assert math.isclose(kpis["revenue"].value or 0, want["revenue"], rel_tol=1e-9)
    assert math.isclose(kpis["profit"].value or 0, want["profit"], rel_tol=1e-9)
    assert kpis["transactions"].value == want["transactions"]
    assert math.isclose(kpis["aov"].value or 0, want["revenue"] / want["transactions"], rel_tol=1e-9)
    if prev_cond is None:
        assert kpis["revenue"].previous is None
    else:
        prev = _totals(sales_sql, prev_cond)
        assert math.isclose(kpis["revenue"].previous or 0, prev["revenue"], rel_tol=1e-9)
        assert math.isclose(
            kpis["revenue"].change_pct or 0, (want["revenue"] - prev["revenue"]) / prev["revenue"] * 100, rel_tol=1e-9
        )

    by_region = sales_sql(f"SELECT region, SUM(revenue) AS revenue FROM sales WHERE {cond} GROUP BY region")
    got = data.breakdown("region").set_index("region")["revenue"]
    for region, revenue in zip(by_region.region, by_region.revenue, strict=True):
        assert math.isclose(got[region], revenue, rel_tol=1e-9)

    monthly = sales_sql(
        f"SELECT year, month, SUM(revenue) AS revenue FROM sales WHERE {cond} GROUP BY year, month ORDER BY year, month"
    )
    assert len(data.trend) == len(monthly)
    assert all(math.isclose(a, b, rel_tol=1e-9) for a, b in zip(data.trend.revenue, monthly.revenue, strict=True))

    top = sales_sql(
        f"SELECT s.product_id, p.product_name, SUM(s.revenue) AS revenue FROM (SELECT * FROM sales WHERE {cond}) s "
        f"JOIN (SELECT product_id, product_name FROM read_parquet({_files(wb, 'products')!r})) p USING (product_id) "
        "GROUP BY ALL ORDER BY revenue DESC LIMIT 10"
    )
    assert list(data.top_products.name) == list(top.product_name)


def test_dashboard_object_refreshes_on_filters(wb: Any, sales_sql: Any) -> None:
    from workbench.ui.dashboard import build_dashboard

    dash = build_dashboard(wb)
    page = dash.layout()
    assert page is not None and dash.refreshes == 1
    assert "data-kpi='revenue'" in dash.kpis.object
    dash.region.value = ["West"]  # outside a server the scheduled refresh runs at once
    data = dash.data
    assert data is not None and data.filters.region == ("West",)
    want = _totals(sales_sql, "region = 'West'")
    assert math.isclose(data.kpis[0].value or 0, want["revenue"], rel_tol=1e-9)
    assert dash.refreshes == 2 and "region: West" in dash.status.object
    start, end = dash.preset_range("Year to date")
    assert start == dt.date(end.year, 1, 1) if end else start is None


def test_a_failed_refresh_finishes_and_shows_its_error(wb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The async refresh that fails still completes: the count moves, the status and the alert say so."""
    import asyncio
    import threading

    from workbench.errors import QueryFailed
    from workbench.ui import dashboard as module

    dash = module.build_dashboard(wb)
    dash.layout()
    before = dash.refreshes

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise QueryFailed("the lake went away", "check the lake folder")

    monkeypatch.setattr(module, "load_view", broken)
    # a loop of its own in a thread: an earlier test (the browser's) may leave one running in this thread
    worker = threading.Thread(target=lambda: asyncio.run(dash.refresh()))
    worker.start()
    worker.join(timeout=60)
    assert dash.refreshes == before + 1
    assert "Update failed" in dash.status.object and "data-busy='false'" in dash.status.object
    assert dash.error.visible and "the lake went away" in str(dash.error.object)


def test_serve_command_is_registered() -> None:
    from workbench.cli import main

    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    assert "--port" in result.output and "127.0.0.1" in result.output


def test_routes_extension_point() -> None:
    from tornado.web import RequestHandler

    from workbench.ui.routes import add_route, routes

    class Hello(RequestHandler):
        def get(self) -> None:
            self.write("hi")

    add_route(r"/hello", Hello)
    patterns = [r[0] for r in routes()]
    assert r"/healthz" in patterns and r"/hello" in patterns


def _files(wb: Any, table: str) -> list[str]:
    return list(wb.lake.files(table))


@pytest.mark.parametrize(
    "start, end",
    [
        (dt.date(2023, 4, 1), dt.date(2024, 3, 31)),  # whole months across a year boundary
        (dt.date(2024, 10, 1), dt.date(2024, 12, 31)),  # a quarter
        (dt.date(2022, 1, 1), dt.date(2024, 12, 31)),  # whole years
        (dt.date(2023, 2, 14), dt.date(2024, 1, 9)),  # arbitrary days
    ],
)
def test_period_predicates_select_the_same_rows_as_dates(sales_sql: Any, start: dt.date, end: dt.date) -> None:
    from workbench.ui.queries import period

    cond = " AND ".join(p.sql(dialect="duckdb") for p in period(start, end))
    got = sales_sql(f"SELECT COUNT(*) AS n FROM sales WHERE {cond}").n[0]
    want = sales_sql(f"SELECT COUNT(*) AS n FROM sales WHERE date BETWEEN DATE '{start}' AND DATE '{end}'").n[0]
    assert got == want > 0
