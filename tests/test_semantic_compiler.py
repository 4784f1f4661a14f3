"""The semantic compiler: SQL shape (engine-safe, prunable, minimal joins) and numbers.

Numbers are checked against pandas on the same tiny in-memory tables, so the metric
definitions (margin, AOV, revenue per customer, quarter, growth, share) are tested
independently of the SQL that implements them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest
import sqlglot
from sqlglot import exp

from workbench.errors import NotFoundError, PlanningError
from workbench.semantic.compiler import compile_query, compile_sql
from workbench.semantic.model import SemanticModel, load_model
from workbench.semantic.query import Comparison, Filter, OrderBy, SemanticQuery, TimeRange

Q = SemanticQuery


@pytest.fixture(scope="module")
def model() -> SemanticModel:
    return load_model()


def _tables(n: int = 600, seed: int = 3) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    products = pd.DataFrame(
        {
            "product_id": [f"P{i}" for i in range(12)],
            "product_name": [f"Product {i}" for i in range(12)],
            "category": ["Electronics", "Toys", "Books"] * 4,
            "subcategory": ["TVs", "Dolls", "Comics", "Audio"] * 3,
            "brand": ["Acme", "Zen", "Nova"] * 4,
        }
    )
    stores = pd.DataFrame(
        {
            "store_id": [f"S{i}" for i in range(6)],
            "store_name": [f"Store {i}" for i in range(6)],
            "city": ["Oslo", "Rome", "Lima", "Oslo", "Rome", "Lima"],
            "region": ["North", "South", "East", "West", "North", "South"],
            "store_type": ["Flagship", "Outlet", "Online", "Standard", "Outlet", "Online"],
        }
    )
    customers = pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(40)],
            "segment": rng.choice(["Consumer", "Corporate"], 40),
            "loyalty_tier": rng.choice(["Gold", "Silver"], 40),
            "region": rng.choice(["North", "South"], 40),
        }
    )
    dates = pd.to_datetime("2022-01-01") + pd.to_timedelta(rng.integers(0, 3 * 365, n), unit="D")
    pidx = rng.integers(0, 12, n)
    sidx = rng.integers(0, 6, n)
    qty = rng.integers(1, 5, n)
    price = rng.uniform(5, 100, n).round(2)
    disc = rng.choice([0.0, 0.1, 0.25, 0.4], n)
    revenue = qty * price * (1 - disc)
    cost = qty * price * 0.6
    sales = pd.DataFrame(
        {
            "transaction_id": [f"T{i}" for i in range(n)],
            "date": dates.date,
            "year": dates.year.astype("int64"),
            "month": dates.month.astype("int64"),
            "region": stores["region"].to_numpy()[sidx],
            "store_id": stores["store_id"].to_numpy()[sidx],
            "channel": rng.choice(["In-Store", "Online", "Mobile"], n),
            "customer_id": rng.choice(customers["customer_id"].to_numpy()[:30], n),
            "product_id": products["product_id"].to_numpy()[pidx],
            "category": products["category"].to_numpy()[pidx],
            "quantity": qty.astype("int64"),
            "unit_price": price,
            "discount": disc,
            "revenue": revenue,
            "cost": cost,
            "profit": revenue - cost,
            "payment_method": rng.choice(["Card", "Cash"], n),
        }
    )
    return {"sales": sales, "products": products, "stores": stores, "customers": customers}


@pytest.fixture(scope="module")
def data() -> dict[str, pd.DataFrame]:
    return _tables()


@pytest.fixture(scope="module")
def con(data: dict[str, pd.DataFrame]) -> Iterator[duckdb.DuckDBPyConnection]:
    c = duckdb.connect()
    for name, df in data.items():
        c.register(name, df)
    yield c
    c.close()


def run(con: duckdb.DuckDBPyConnection, q: SemanticQuery, model: SemanticModel) -> pd.DataFrame:
    return con.execute(compile_sql(q, model)).df()


def test_scalar_metrics_match_pandas(con: Any, model: SemanticModel, data: dict[str, pd.DataFrame]) -> None:
    s = data["sales"]
    y = s[s.year == 2023]
    got = run(
        con,
        Q(metrics=["revenue", "margin", "aov", "revenue_per_customer", "units"], time_range=TimeRange(year=2023)),
        model,
    )
    assert got["revenue"][0] == pytest.approx(y.revenue.sum())
    assert got["profit_margin"][0] == pytest.approx(y.profit.sum() / y.revenue.sum() * 100)
    assert got["average_order_value"][0] == pytest.approx(y.revenue.sum() / y.transaction_id.nunique())
    assert got["revenue_per_customer"][0] == pytest.approx(y.revenue.sum() / y.customer_id.nunique())
    assert got["units"][0] == y.quantity.sum()


def test_quarter_grain_is_computed_in_a_subquery(con: Any, model: SemanticModel, data: dict[str, pd.DataFrame]) -> None:
    q = Q(metrics=["revenue"], dimensions=["quarter"], time_range=TimeRange(year=2024))
    sql = compile_sql(q, model)
    tree = sqlglot.parse_one(sql, read="duckdb")
    assert all(isinstance(g, exp.Column) for g in tree.args["group"].expressions)
    assert tree.find(exp.Subquery) is not None
    got = con.execute(sql).df()
    s = data["sales"][data["sales"].year == 2024]
    want = s.groupby((s.month - 1) // 3 + 1).revenue.sum()
    assert list(got["quarter"]) == [1, 2, 3, 4]
    assert list(got["revenue"]) == pytest.approx(list(want))


def test_no_engine_hostile_constructs(model: SemanticModel) -> None:
    queries = [
        Q(metrics=["revenue"], dimensions=["week", "brand"], time_range=TimeRange(year=2023, quarter=2)),
        Q(metrics=["growth"], dimensions=["quarter"], time_range=TimeRange(year=2024)),
        Q(
            metrics=["revenue"],
            dimensions=["month"],
            comparison=Comparison(kind="mom"),
            time_range=TimeRange(year=2024, month=1),
        ),
        Q(metrics=["transactions"], share=Filter(dimension="discount", op=">", values=[0.2])),
    ]
    for q in queries:
        tree = sqlglot.parse_one(compile_sql(q, model), read="duckdb")
        assert tree.find(exp.Window) is None
        assert tree.find(exp.DateTrunc, exp.TimestampTrunc) is None
        for select in tree.find_all(exp.Select):
            group = select.args.get("group")
            if group:
                assert all(isinstance(g, exp.Column) for g in group.expressions), select.sql()


def test_partition_filters_stay_plain(model: SemanticModel) -> None:
    q = Q(
        metrics=["revenue"],
        filters=[Filter(dimension="region", values=["North", "South"]), Filter(dimension="category", values=["Toys"])],
        time_range=TimeRange(year=2023, quarter=4),
    )
    sql = compile_sql(q, model)
    assert "region IN ('North', 'South')" in sql
    assert "year = 2023" in sql
    assert "month BETWEEN 10 AND 12" in sql
    assert "JOIN" not in sql  # category lives on sales too: no join


def test_only_needed_joins(model: SemanticModel) -> None:
    compiled = compile_query(
        Q(metrics=["revenue"], dimensions=["brand"], filters=[Filter(dimension="store_type", values=["Outlet"])]), model
    )
    assert compiled.tables == ["sales", "products", "stores"]
    assert "customers" not in compiled.sql
    assert compile_query(Q(metrics=["profit"], dimensions=["region"]), model).tables == ["sales"]


def test_join_dimensions_match_pandas(con: Any, model: SemanticModel, data: dict[str, pd.DataFrame]) -> None:
    s, st = data["sales"], data["stores"]
    got = run(con, Q(metrics=["revenue"], dimensions=["store_type"], time_range=TimeRange(year=2024)), model)
    m = s[s.year == 2024].merge(st[["store_id", "store_type"]], on="store_id")
    want = m.groupby("store_type").revenue.sum()
    assert dict(zip(got["store_type"], got["revenue"], strict=True)) == pytest.approx(want.to_dict())


def test_growth_and_share(con: Any, model: SemanticModel, data: dict[str, pd.DataFrame]) -> None:
    s = data["sales"]
    toys = s[s.category == "Toys"]
    cur, prev = toys[toys.year == 2024].revenue.sum(), toys[toys.year == 2022].revenue.sum()
    q = Q(
        metrics=["revenue"],
        filters=[Filter(dimension="category", values=["Toys"])],
        comparison=Comparison(kind="vs", dimension="year", members=[2022, 2024]),
    )
    got = run(con, q, model)
    assert got["revenue_growth_pct"][0] == pytest.approx((cur - prev) / prev * 100)
    yoy = run(con, Q(metrics=["growth"], time_range=TimeRange(year=2024)), model)
    a, b = s[s.year == 2024].revenue.sum(), s[s.year == 2023].revenue.sum()
    assert yoy["revenue_growth_pct"][0] == pytest.approx((a - b) / b * 100)
    share = run(
        con,
        Q(metrics=["revenue"], share=Filter(dimension="channel", values=["Online"]), time_range=TimeRange(year=2024)),
        model,
    )
    y = s[s.year == 2024]
    assert share["revenue_share_pct"][0] == pytest.approx(
        y[y.channel == "Online"].revenue.sum() / y.revenue.sum() * 100
    )
    count_share = run(con, Q(metrics=["transactions"], share=Filter(dimension="discount", op=">", values=[0.2])), model)
    assert count_share["transactions_share_pct"][0] == pytest.approx((s.discount > 0.2).mean() * 100)


def test_month_over_month_across_a_year_boundary(con: Any, model: SemanticModel, data: dict[str, pd.DataFrame]) -> None:
    s = data["sales"]
    got = run(
        con, Q(metrics=["revenue"], comparison=Comparison(kind="mom"), time_range=TimeRange(year=2024, month=1)), model
    )
    jan = s[(s.year == 2024) & (s.month == 1)].revenue.sum()
    dec = s[(s.year == 2023) & (s.month == 12)].revenue.sum()
    assert got["revenue_current"][0] == pytest.approx(jan)
    assert got["revenue_previous"][0] == pytest.approx(dec)


@pytest.mark.parametrize("year, quarter, prev", [(2024, 3, (2024, 2)), (2024, 1, (2023, 4))])
def test_quarter_over_quarter(
    con: Any, model: SemanticModel, data: dict[str, pd.DataFrame], year: int, quarter: int, prev: tuple[int, int]
) -> None:
    s = data["sales"]
    q = Q(
        metrics=["revenue"],
        dimensions=["region"],
        comparison=Comparison(kind="qoq"),
        time_range=TimeRange(year=year, quarter=quarter),
    )
    assert q.describe_period() == f"Q{quarter} {year} vs Q{prev[1]} {prev[0]}"
    got = run(con, q, model).set_index("region")

    def total(y: int, qq: int) -> pd.Series:
        rows = s[(s.year == y) & ((s.month - 1) // 3 + 1 == qq)]
        return rows.groupby("region").revenue.sum()

    cur, base = total(year, quarter), total(*prev)
    for region in cur.index:
        assert got.loc[region, "revenue_current"] == pytest.approx(cur[region])
        assert got.loc[region, "revenue_previous"] == pytest.approx(base[region])
        want = (cur[region] - base[region]) / base[region] * 100
        assert got.loc[region, "revenue_growth_pct"] == pytest.approx(want)


def test_entity_counts_use_the_entity_table_unless_sales_restrict_them(
    con: Any, model: SemanticModel, data: dict[str, pd.DataFrame]
) -> None:
    plain = compile_sql(Q(metrics=["customer_count"], dimensions=["customer_segment"]), model)
    assert "FROM customers" in plain and "sales" not in plain
    got = con.execute(plain).df()
    assert (
        dict(zip(got["customer_segment"], got["customer_count"], strict=True))
        == data["customers"].segment.value_counts().to_dict()
    )
    restricted = run(con, Q(metrics=["customer_count"], time_range=TimeRange(year=2023)), model)
    s = data["sales"]
    assert restricted["customer_count"][0] == s[s.year == 2023].customer_id.nunique()


def test_order_limit_and_date_range(con: Any, model: SemanticModel, data: dict[str, pd.DataFrame]) -> None:
    q = Q(
        metrics=["profit"],
        dimensions=["product"],
        time_range=TimeRange(start=dt.date(2023, 11, 15), end=dt.date(2024, 2, 10)),
        order=[OrderBy(by="profit", direction="asc")],
        limit=3,
    )
    got = run(con, q, model)
    s, p = data["sales"], data["products"]
    window = s[(s.date >= dt.date(2023, 11, 15)) & (s.date <= dt.date(2024, 2, 10))].merge(p, on="product_id")
    want = window.groupby("product_name").profit.sum().sort_values().head(3)
    assert list(got["product"]) == list(want.index)
    assert list(got["profit"]) == pytest.approx(list(want))


def test_unknown_names_suggest(model: SemanticModel) -> None:
    with pytest.raises(NotFoundError) as e:
        compile_sql(Q(metrics=["revenu"]), model)
    assert "revenue" in e.value.hint
    with pytest.raises(NotFoundError) as e:
        compile_sql(Q(metrics=["revenue"], dimensions=["regoin"]), model)
    assert "region" in e.value.hint
    with pytest.raises(NotFoundError) as e:
        compile_query(
            Q(metrics=["revenue"], filters=[Filter(dimension="category", values=["Electronic"])]),
            model,
            vocabulary={"category": ["Electronics", "Toys"]},
        )
    assert "Electronics" in e.value.hint


def test_comparison_needs_a_period(model: SemanticModel) -> None:
    with pytest.raises(PlanningError):
        compile_sql(Q(metrics=["revenue"], comparison=Comparison(kind="yoy")), model)


def test_share_of_total_by_a_dimension_matches_pandas(
    con: Any, model: SemanticModel, data: dict[str, pd.DataFrame]
) -> None:
    """Each group's percent of the total over the answer's rows (filters apply to the total too)."""
    s = data["sales"][data["sales"].year == 2023]
    q = SemanticQuery(metrics=["revenue"], dimensions=["channel"], time_range=TimeRange(year=2023), share_of_total=True)
    got = run(con, q, model).set_index("channel")
    want = s.groupby("channel").revenue.sum() / s.revenue.sum() * 100
    assert got["revenue_share_pct"].sort_index().tolist() == pytest.approx(want.sort_index().tolist())
    assert got["revenue_share_pct"].sum() == pytest.approx(100.0)
    # ranked: the top 2 keep their share of the whole, not of the two
    top = q.model_copy(update={"order": [OrderBy(by="revenue")], "limit": 2})
    ranked = run(con, top, model)
    assert ranked["revenue_share_pct"].tolist() == pytest.approx(want.sort_values(ascending=False).head(2).tolist())


@pytest.mark.parametrize(
    ("query", "why"),
    [
        (SemanticQuery(metrics=["aov"], dimensions=["region"], share_of_total=True), "does not add up"),
        (SemanticQuery(metrics=["revenue"], share_of_total=True), "needs a breakdown"),
    ],
)
def test_share_of_total_refuses_what_has_no_share(model: SemanticModel, query: SemanticQuery, why: str) -> None:
    with pytest.raises(PlanningError, match=why):
        compile_sql(query, model)
