"""The offline planner: structure of its plans, relative dates, refusals, and answers.

The paraphrases below are not in questions-dev.jsonl; their expected SQL is written by hand
in plain SQL (no semantic model) and both run on the same small lake.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from workbench.assistant.planners.base import Plan, PlanContext
from workbench.assistant.planners.offline import OfflinePlanner
from workbench.errors import PlanningError, QueryRefused
from workbench.semantic.model import SemanticModel, load_model
from workbench.semantic.query import SemanticQuery

VOCABULARY = {
    "region": ["North", "South", "East", "West", "Central"],
    "channel": ["In-Store", "Online", "Mobile"],
    "category": ["Electronics", "Clothing", "Home & Garden", "Grocery", "Sports & Outdoors", "Beauty", "Toys", "Books"],
    "payment_method": ["Card", "Cash", "Wallet", "Gift Card"],
    "store_type": ["Flagship", "Standard", "Outlet", "Online"],
    "customer_segment": ["Consumer", "Corporate", "Small Business"],
    "loyalty_tier": ["Bronze", "Silver", "Gold", "Platinum"],
    "subcategory": ["TVs", "Laptops", "Phones", "Audio", "Accessories"],
}
LATEST = dt.date(2024, 12, 31)


@pytest.fixture(scope="module")
def context() -> PlanContext:
    return PlanContext(model=load_model(), latest_date=LATEST, vocabulary=VOCABULARY)


@pytest.fixture(scope="module")
def planner() -> OfflinePlanner:
    return OfflinePlanner()


def q(planner: OfflinePlanner, context: PlanContext, question: str) -> tuple[SemanticQuery, Plan]:
    plan = planner.plan(question, context)
    assert plan.query is not None
    return plan.query, plan


# --- structure ---------------------------------------------------------------------------------
def test_breakdowns_filters_and_top_n(planner: OfflinePlanner, context: PlanContext) -> None:
    query, plan = q(planner, context, "Show the 4 best brands by margin for Mobile shoppers in H1 2024")
    assert query.metrics == ["profit_margin"]
    assert query.dimensions == ["brand"]
    assert [(f.dimension, f.values) for f in query.filters] == [("channel", ["Mobile"])]
    assert query.limit == 4 and query.order[0].direction == "desc"
    assert plan.period == "H1 2024"


def test_which_lowest_is_ascending_with_limit_one(planner: OfflinePlanner, context: PlanContext) -> None:
    query, _ = q(planner, context, "In which region were units smallest during 2022?")
    assert query.dimensions == ["region"] and query.limit == 1 and query.order[0].direction == "asc"
    assert query.metrics == ["units"]


@pytest.mark.parametrize(
    ("question", "limit", "year"),
    [
        ("stores with the most transactions in 2024", 5, 2024),  # "stores" opens the clause: the breakdown
        ("Which stores have the most transactions?", 5, None),  # plural: a ranking, not one store
        ("which store had the most orders in 2023", 1, 2023),  # singular: the one
    ],
)
def test_an_entity_ranked_by_a_count_is_a_breakdown(
    planner: OfflinePlanner, context: PlanContext, question: str, limit: int, year: int | None
) -> None:
    query, plan = q(planner, context, question)
    assert query.metrics == ["transactions"] and query.dimensions == ["store"]
    assert query.limit == limit and query.order[0].direction == "desc"
    assert plan.period == (str(year) if year else "all data")


def test_a_counted_entity_asked_one_by_one_is_declined_for_that_reason(
    planner: OfflinePlanner, context: PlanContext
) -> None:
    """No breakdown lists customers (their names are personal data): say so, and offer their attributes."""
    with pytest.raises(PlanningError) as info:
        planner.plan("customers with the highest revenue", context)
    assert "not list them one by one" in info.value.message and "different tables" not in info.value.message
    assert info.value.hint and "'revenue by customer segment'" in info.value.hint and "loyalty tier" in info.value.hint


@pytest.mark.parametrize(
    "question",
    ["products with a loss in 2023", "Which brands had a loss in 2023?", "categories that posted a loss in 2023"],
)
def test_loss_phrases_are_a_profit_below_zero(planner: OfflinePlanner, context: PlanContext, question: str) -> None:
    query, plan = q(planner, context, question)
    assert [(h.metric, h.op, h.value) for h in query.having] == [("profit", "<", 0)]
    assert len(query.dimensions) == 1 and plan.period == "2023"


def test_per_and_for_each_group(planner: OfflinePlanner, context: PlanContext) -> None:
    assert q(planner, context, "profit per segment")[0].dimensions == ["customer_segment"]
    assert q(planner, context, "cost for each channel and payment method")[0].dimensions == [
        "channel",
        "payment_method",
    ]


def test_value_read_with_its_dimension_word(planner: OfflinePlanner, context: PlanContext) -> None:
    query, _ = q(planner, context, "AOV of Online stores in 2023")
    assert [(f.dimension, f.values) for f in query.filters] == [("store_type", ["Online"])]
    query, _ = q(planner, context, "AOV of Online orders in 2023")
    assert [(f.dimension, f.values) for f in query.filters] == [("channel", ["Online"])]
    assert query.metrics == ["average_order_value"]


def test_comparisons(planner: OfflinePlanner, context: PlanContext) -> None:
    query, _ = q(planner, context, "Toys versus Books profit in 2023")
    assert query.comparison is not None and query.comparison.kind == "vs"
    assert query.comparison.dimension == "category" and query.comparison.members == ["Toys", "Books"]
    query, plan = q(planner, context, "How much did Grocery sales increase between 2022 and 2023?")
    assert query.comparison is not None and query.comparison.members == [2022, 2023]
    assert plan.period == "2023 vs 2022"
    query, plan = q(planner, context, "units in Q2 2024 compared to the same period last year")
    assert query.comparison is not None and query.comparison.kind == "yoy"
    assert plan.period == "Q2 2024 vs Q2 2023"


def test_share(planner: OfflinePlanner, context: PlanContext) -> None:
    query, _ = q(planner, context, "What proportion of 2024 profit in the North came from Cash payments?")
    assert query.share is not None and query.share.dimension == "payment_method" and query.share.values == ["Cash"]
    assert [(f.dimension, f.values) for f in query.filters] == [("region", ["North"])]


def test_numeric_condition(planner: OfflinePlanner, context: PlanContext) -> None:
    query, _ = q(planner, context, "revenue of orders with a discount of at least 30 percent by category")
    assert [(f.dimension, f.op, f.values) for f in query.filters] == [("discount", ">=", [0.3])]


# --- relative dates ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("question", "period"),
    [
        ("revenue last year", "2023 (last year of the data)"),
        ("revenue this year", "2024 (this year of the data)"),
        ("profit in Q3", "Q3 2024 (latest Q3 in the data)"),
        ("units this month", "December 2024 (this month of the data)"),
        ("units last month", "November 2024 (last month of the data)"),
        ("revenue last quarter", "Q3 2024 (last quarter of the data)"),
        ("revenue in the last 3 months", "last 3 months (2024-10-01 .. 2024-12-31)"),
        ("revenue in the past two years", "last 2 years (2023-01-01 .. 2024-12-31)"),
        ("sales year to date", "year to date (2024-01-01 .. 2024-12-31)"),
        ("revenue in March", "March 2024 (latest March in the data)"),
    ],
)
def test_relative_dates_resolve_against_the_data(
    planner: OfflinePlanner, context: PlanContext, question: str, period: str
) -> None:
    plan = planner.plan(question, context)
    assert plan.period == period


def test_relative_dates_need_a_latest_date(planner: OfflinePlanner) -> None:
    bare = PlanContext(model=load_model(), latest_date=None, vocabulary=VOCABULARY)
    with pytest.raises(PlanningError) as e:
        planner.plan("revenue last year", bare)
    assert "2024" in e.value.hint
    assert planner.plan("revenue in 2023", bare).period == "2023"


# --- refusing and not guessing -----------------------------------------------------------------
def test_a_drop_in_sales_is_a_question_not_a_command(planner: OfflinePlanner, context: PlanContext) -> None:
    query, plan = q(planner, context, "Did sales drop in Q3 2024?")
    assert query.comparison is not None and plan.period == "Q3 2024 vs Q3 2023"


@pytest.mark.parametrize(
    "question", ["delete the sales table", "DROP TABLE customers", "please update all rows", "remove all customers"]
)
def test_changes_are_refused(planner: OfflinePlanner, context: PlanContext, question: str) -> None:
    with pytest.raises(QueryRefused):
        planner.plan(question, context)


@pytest.mark.parametrize(
    "question",
    [
        "What will the weather be tomorrow?",
        "forecast revenue for next year",
        "tell me a joke",
        "average salary of store staff in 2023",
        "how many employees work in the North?",
        "inventory by category",
    ],
)
def test_out_of_model_questions_are_refused_with_examples(
    planner: OfflinePlanner, context: PlanContext, question: str
) -> None:
    with pytest.raises(QueryRefused) as e:
        planner.plan(question, context)
    assert "outside what the retail data can answer" in e.value.message
    assert "revenue by region" in e.value.hint


def test_a_question_with_nothing_recognisable_fails_with_rephrasings(
    planner: OfflinePlanner, context: PlanContext
) -> None:
    with pytest.raises(PlanningError) as e:
        planner.plan("How are you today?", context)
    assert not isinstance(e.value, QueryRefused) and "revenue by region" in e.value.hint


@pytest.mark.parametrize(
    "question, year, quarter",
    [
        ("revenue by region quarter over quarter in Q3 2024", 2024, 3),
        ("How did profit change in Q1 2024 compared to the previous quarter?", 2024, 1),
        ("Q2 2023 vs Q1 2023 revenue", 2023, 2),
        ("qoq revenue growth for Electronics in Q4 2022", 2022, 4),
    ],
)
def test_quarter_over_quarter(
    planner: OfflinePlanner, context: PlanContext, question: str, year: int, quarter: int
) -> None:
    plan = planner.plan(question, context)
    assert plan.query is not None and plan.query.comparison is not None
    assert plan.query.comparison.kind == "qoq"
    tr = plan.query.time_range
    assert tr is not None and (tr.year, tr.quarter) == (year, quarter)


def test_quarter_over_quarter_needs_adjacent_quarters(planner: OfflinePlanner, context: PlanContext) -> None:
    with pytest.raises(PlanningError) as e:
        planner.plan("revenue growth Q3 2024 vs Q1 2024", context)
    assert "quarter" in e.value.message
    with pytest.raises(PlanningError):
        planner.plan("revenue in 2024 quarter over quarter", context)


def test_unknown_words_are_reported_not_guessed(planner: OfflinePlanner, context: PlanContext) -> None:
    with pytest.raises(PlanningError) as e:
        planner.plan("revenue by categroy", context)
    assert "category" in e.value.hint
    with pytest.raises(PlanningError) as e:
        planner.plan("Revenue in Atlantis last year", context)
    assert "Atlantis" in e.value.message


def test_default_metric_is_stated(planner: OfflinePlanner, context: PlanContext) -> None:
    query, plan = q(planner, context, "Toys by region in 2022")
    assert query.metrics == ["revenue"]
    assert any("revenue" in n for n in plan.notes) and plan.confidence < 1
    # a verb names the metric: "sell" is sales, nothing is assumed
    query, plan = q(planner, context, "How much did we sell in Toys in 2022?")
    assert query.metrics == ["revenue"] and not any("no metric" in n for n in plan.notes)


def test_a_users_own_model(planner: OfflinePlanner, tmp_path: Path) -> None:
    """Nothing retail-specific is hard-coded: another model file brings its own words."""
    path = tmp_path / "shop.yaml"
    path.write_text(
        """
name: shop
fact: orders
tables: {orders: {alias: o, partitions: [year, month]}, sellers: {alias: sl, key: seller_id}}
joins: [{left: orders, right: sellers, column: seller_id}]
metrics:
  gmv: {sql: SUM(amount), synonyms: [gross merchandise value, turnover]}
  refunds: {sql: SUM(refund_amount), synonyms: [refunded]}
dimensions:
  year: {column: year, kind: time}
  month: {column: month, with: [year], kind: time, synonyms: [monthly]}
  country: {column: country, vocabulary: true, synonyms: [countries, market, markets]}
  seller_tier: {table: sellers, column: tier, vocabulary: true, synonyms: [seller tier]}
"""
    )
    model = SemanticModel.load(path)
    ctx = PlanContext(model=model, latest_date=dt.date(2025, 6, 30), vocabulary={"country": ["Norway", "Peru"]})
    plan = planner.plan("monthly turnover in Peru this year", ctx)
    assert plan.query is not None
    assert plan.query.metrics == ["gmv"]
    assert plan.query.dimensions in (["year", "month"], ["month"])
    assert plan.query.filters[0].values == ["Peru"]
    assert plan.period.startswith("2025")


# --- answers on a real lake ------------------------------------------------------------------
#: (question, reference SQL, compare) — paraphrases not in questions-dev.jsonl
PARAPHRASES: list[tuple[str, str, str]] = [
    ("How much revenue did we make last year?", "SELECT SUM(revenue) FROM sales WHERE year = 2023", "value"),
    ("Sales by channel this year", "SELECT channel, SUM(revenue) FROM sales WHERE year = 2024 GROUP BY 1", "set"),
    (
        "What were total sales in Q3?",
        "SELECT SUM(revenue) FROM sales WHERE year = 2024 AND month IN (7, 8, 9)",
        "value",
    ),
    (
        "Show me the monthly sales trend for Electronics in 2023",
        "SELECT month, SUM(revenue) FROM sales WHERE year = 2023 AND category = 'Electronics' GROUP BY 1 ORDER BY 1",
        "ordered",
    ),
    (
        "Which store type generated the most profit in 2024?",
        "SELECT st.store_type, SUM(s.profit) AS p FROM sales s JOIN stores st ON s.store_id = st.store_id "
        "WHERE s.year = 2024 GROUP BY 1 ORDER BY p DESC LIMIT 1",
        "ordered",
    ),
    (
        "Bottom 3 brands by margin in Books",
        "SELECT p.brand, 100.0 * SUM(s.profit) / SUM(s.revenue) AS m FROM sales s JOIN products p "
        "ON s.product_id = p.product_id WHERE s.category = 'Books' GROUP BY 1 ORDER BY m LIMIT 3",
        "ordered",
    ),
    (
        "AOV per payment method last quarter",
        "SELECT payment_method, SUM(revenue) / COUNT(*) FROM sales WHERE year = 2024 AND month >= 7 AND month <= 9 "
        "GROUP BY 1",
        "set",
    ),
    (
        "How many orders came through Mobile in the last 3 months?",
        "SELECT COUNT(*) FROM sales WHERE channel = 'Mobile' AND date >= DATE '2024-10-01'",
        "value",
    ),
    (
        "Give me units sold for each loyalty tier",
        "SELECT c.loyalty_tier, SUM(s.quantity) FROM sales s JOIN customers c ON s.customer_id = c.customer_id "
        "GROUP BY 1",
        "set",
    ),
    (
        "Revenue growth year over year by region",
        "WITH y AS (SELECT region, SUM(revenue) FILTER (WHERE year = 2024) AS a, "
        "SUM(revenue) FILTER (WHERE year = 2023) AS b FROM sales GROUP BY region) "
        "SELECT region, (a - b) / b * 100 FROM y",
        "set",
    ),
    (
        "What percentage of 2023 sales came from the Grocery category?",
        "SELECT 100 * SUM(revenue) FILTER (WHERE category = 'Grocery') / SUM(revenue) FROM sales WHERE year = 2023",
        "value",
    ),
    (
        "Compare profit for Online and In-Store in 2023",
        "SELECT channel, SUM(profit) FROM sales WHERE year = 2023 AND channel <> 'Mobile' GROUP BY 1",
        "set",
    ),
    (
        "Which quarter of 2024 had the lowest revenue?",
        "SELECT CEIL(month / 3.0) AS q, SUM(revenue) AS r FROM sales WHERE year = 2024 GROUP BY 1 ORDER BY r LIMIT 1",
        "ordered",
    ),
    (
        "Revenue for East vs West this month",
        "SELECT region, SUM(revenue) FROM sales WHERE region IN ('East', 'West') AND year = 2024 AND month = 12 "
        "GROUP BY 1",
        "set",
    ),
    (
        "profit margin by channel and year",
        "SELECT channel, year, SUM(profit) * 100 / SUM(revenue) FROM sales GROUP BY 1, 2",
        "set",
    ),
    (
        "What was the average discount in Clothing in 2022?",
        "SELECT AVG(discount) FROM sales WHERE category = 'Clothing' AND year = 2022",
        "value",
    ),
    ("Number of customers by loyalty tier", "SELECT loyalty_tier, COUNT(*) FROM customers GROUP BY 1", "set"),
    (
        "How did Toys revenue change from 2023 to 2024?",
        "SELECT 100 * (SUM(revenue) FILTER (WHERE year = 2024) / SUM(revenue) FILTER (WHERE year = 2023) - 1) "
        "FROM sales WHERE category = 'Toys'",
        "value",
    ),
    (
        "Month over month revenue growth in November 2024",
        "SELECT 100 * (SUM(revenue) FILTER (WHERE month = 11) / SUM(revenue) FILTER (WHERE month = 10) - 1) "
        "FROM sales WHERE year = 2024",
        "value",
    ),
    (
        "Top 3 subcategories by revenue in Electronics last year",
        "SELECT p.subcategory, SUM(s.revenue) AS r FROM sales s JOIN products p ON s.product_id = p.product_id "
        "WHERE s.category = 'Electronics' AND s.year = 2023 GROUP BY 1 ORDER BY r DESC LIMIT 3",
        "ordered",
    ),
    (
        "Break down 2024 revenue by category and channel",
        "SELECT category, channel, SUM(revenue) FROM sales WHERE year = 2024 GROUP BY 1, 2",
        "set",
    ),
    (
        "Which city brought in the most revenue last year?",
        "SELECT st.city, SUM(s.revenue) AS r FROM sales s JOIN stores st ON s.store_id = st.store_id "
        "WHERE s.year = 2023 GROUP BY 1 ORDER BY r DESC LIMIT 1",
        "ordered",
    ),
    (
        "What fraction of units were sold with a discount?",
        "SELECT 100.0 * SUM(CASE WHEN discount > 0 THEN quantity ELSE 0 END) / SUM(quantity) FROM sales",
        "value",
    ),
    (
        "Q4 2024 vs Q4 2023 revenue",
        "SELECT 100 * (SUM(revenue) FILTER (WHERE year = 2024) / SUM(revenue) FILTER (WHERE year = 2023) - 1) "
        "FROM sales WHERE month >= 10",
        "value",
    ),
    (
        "Revenue from Gold customers in 2024",
        "SELECT SUM(revenue) FROM sales WHERE year = 2024 AND customer_id IN "
        "(SELECT customer_id FROM customers WHERE loyalty_tier = 'Gold')",
        "value",
    ),
]


@pytest.fixture(scope="module")
def evaluator(small_lake: str):  # type: ignore[no-untyped-def]
    from workbench.assistant.eval import Evaluator
    from workbench.session import Workbench

    with Workbench.open(lake=small_lake) as wb:
        yield Evaluator(wb, engine="duckdb")


def test_small_lake_ends_where_the_expected_sql_assumes(evaluator) -> None:  # type: ignore[no-untyped-def]
    assert evaluator.context.latest_date == LATEST
    assert set(evaluator.context.vocabulary["channel"]) == {"In-Store", "Online", "Mobile"}


@pytest.mark.parametrize(("question", "sql", "compare"), PARAPHRASES, ids=[p[0][:40] for p in PARAPHRASES])
def test_paraphrases_answer_like_hand_written_sql(evaluator, question: str, sql: str, compare: str) -> None:  # type: ignore[no-untyped-def]
    from workbench.assistant.eval import EvalCase

    result = evaluator.run_case(EvalCase(id="p", question=question, sql=sql, compare=compare))
    assert result.ok, f"{question}: {result.reason}\n{result.sql}"


def test_several_years_and_conditions_without_ranking(planner: OfflinePlanner, context: PlanContext) -> None:
    query, _ = q(planner, context, "Revenue in 2022 and 2024")
    assert query.dimensions == ["year"] and query.filters[0].values == [2022, 2024]
    query, plan = q(planner, context, "Revenue from 2022 to 2023")
    assert query.dimensions == [] and plan.period == "2022-2023"
    query, _ = q(planner, context, "orders with a discount of more than 30% by channel")
    assert query.order == [] and query.limit is None  # "more than" is a condition, not a ranking
    query, _ = q(planner, context, "Are Flagship stores more profitable than Outlets?")
    assert query.comparison is not None and query.comparison.members == ["Flagship", "Outlet"]


@pytest.mark.parametrize(
    "question", ["What was revenue on 2024-03-15?", "revenue on March 15, 2024", "revenue on 15 March 2024"]
)
def test_single_days(planner: OfflinePlanner, context: PlanContext, question: str) -> None:
    query, plan = q(planner, context, question)
    assert query.time_range is not None and query.time_range.bounds() == (dt.date(2024, 3, 15), dt.date(2024, 3, 15))
    assert plan.period == "2024-03-15"


@pytest.mark.parametrize(
    "question, year, quarter, month",
    [
        ("revenue quarter over quarter", 2024, 3, None),
        ("revenue month over month", 2024, None, 10),
        ("revenue growth year over year", 2023, None, None),
    ],
)
def test_relative_comparisons_skip_an_incomplete_latest_period(
    planner: OfflinePlanner, question: str, year: int, quarter: int | None, month: int | None
) -> None:
    """Data ending mid-November: the newest month, quarter and year are partial, so not compared."""
    ctx = PlanContext(model=load_model(), latest_date=dt.date(2024, 11, 15), vocabulary=VOCABULARY)
    plan = planner.plan(question, ctx)
    tr = plan.query.time_range if plan.query else None
    assert tr is not None and tr.year == year
    if "quarter" in question:
        assert tr.quarter == quarter
    if "month" in question:
        assert tr.month == month
    assert any("incomplete" in n and "2024-11-15" in n for n in plan.notes), plan.notes


def test_a_complete_latest_period_is_used(planner: OfflinePlanner, context: PlanContext) -> None:
    plan = planner.plan("revenue quarter over quarter", context)  # data ends 2024-12-31
    tr = plan.query.time_range if plan.query else None
    assert tr is not None and (tr.year, tr.quarter) == (2024, 4)
    assert not any("incomplete" in n for n in plan.notes)
