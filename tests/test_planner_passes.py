"""The offline parser's small passes, each on its own (issue 12, item 4)."""

from __future__ import annotations

import datetime as dt

import pytest

from workbench.assistant.planners.base import PlanContext
from workbench.assistant.planners.dates import find_time
from workbench.assistant.planners.lexicon import Lexicon, normalise
from workbench.assistant.planners.offline import OfflinePlanner
from workbench.assistant.planners.passes import (
    count_before,
    entity_counts,
    leads_metric,
    resolve_entity_count,
    verb_metric,
)
from workbench.errors import PlanningError
from workbench.semantic.model import SemanticModel, load_model
from workbench.semantic.query import TimeRange

MODEL = load_model()
VOCAB = {"channel": ["Online", "In-Store", "Mobile"], "region": ["North", "South", "East"], "loyalty_tier": ["Silver"]}
LEX = Lexicon(MODEL, VOCAB)
CONTEXT = PlanContext(model=MODEL, latest_date=dt.date(2024, 12, 31), vocabulary=VOCAB)


def tokens(text: str) -> list[str]:
    return normalise(text).split()


@pytest.mark.parametrize(
    ("question", "metric"),
    [
        ("how much did we sell in 2023", "revenue"),
        ("how many did we sell", "units"),
        ("what did it cost us", "cost"),
        ("how much did we earn", "revenue"),
    ],
)
def test_verbs_name_metrics_through_the_model_synonyms(question: str, metric: str) -> None:
    found = verb_metric(tokens(question), set(), LEX)
    assert found is not None and found[1] == metric


def test_no_verb_no_metric() -> None:
    assert verb_metric(tokens("which region is largest"), set(), LEX) is None


@pytest.mark.parametrize(
    ("question", "n"),
    [("which 4 channels had the most revenue", 4), ("the 3 least profitable regions", 3), ("the best regions", None)],
)
def test_a_count_anywhere_in_the_ranking_phrase(question: str, n: int | None) -> None:
    toks = tokens(question)
    hits = LEX.scan(toks, set())
    grouped = [h for h in hits if h.kind == "dimension"]
    found = count_before(toks, hits, grouped)
    assert (found[1] if found else None) == n


def test_a_leading_dimension_noun_is_a_breakdown() -> None:
    hits = LEX.scan(tokens("store type revenue"), set())
    assert leads_metric(hits[0], hits)
    hits = LEX.scan(tokens("revenue store type"), set())
    assert not any(leads_metric(h, hits) for h in hits)


def test_entity_counts_come_from_the_model() -> None:
    pairs = {p.entity: (p.on_file, p.active) for p in entity_counts(MODEL)}
    assert pairs["customers"] == ("customer_count", "customers")


#: a drafted order-lines model: ``returns`` is keyed by ``order_id`` but lists returns, not orders
LINES = SemanticModel.model_validate(
    {
        "fact": "order_lines",
        "tables": {
            "order_lines": {"alias": "ol"},
            "returns": {"alias": "r", "key": "order_id"},
            "customers": {"alias": "c", "key": "customer_id"},
        },
        "joins": [
            {"left": "order_lines", "right": "returns", "column": "order_id"},
            {"left": "order_lines", "right": "customers", "column": "customer_id"},
        ],
        "time": {"date": "order_date"},
        "metrics": {
            "returns_count": {
                "sql": "COUNT(*)",
                "table": "returns",
                "format": "count",
                "synonyms": ["how many returns"],
            },
            "customers_count": {"sql": "COUNT(*)", "table": "customers", "format": "count"},
            "orders": {"sql": "COUNT(DISTINCT order_id)", "format": "count", "synonyms": ["number of orders"]},
            "customers": {"sql": "COUNT(DISTINCT customer_id)", "format": "count"},
            "sales": {"sql": "SUM(sales)", "format": "currency"},
        },
        "dimensions": {"year": {"column": "year", "kind": "time"}},
    }
)


def test_how_many_entity_is_its_distinct_count_never_another_tables_rows() -> None:
    """A table pairs with a distinct count only when it lists that entity: "how many orders" once
    counted the rows of ``returns`` (keyed by order id) and showed 37 instead of 400."""
    assert {p.entity: (p.on_file, p.active) for p in entity_counts(LINES)} == {
        "customers": ("customers_count", "customers")
    }
    context = PlanContext(model=LINES, latest_date=dt.date(2024, 12, 31), vocabulary={})
    for question in ("how many orders", "number of orders in 2024", "how many orders do we have"):
        q = OfflinePlanner().plan(question, context).query
        assert q is not None and q.metrics == ["orders"], question
    q = OfflinePlanner().plan("how many returns", context).query
    assert q is not None and q.metrics == ["returns_count"]


def test_on_file_or_active_is_decided_by_the_words_or_asked() -> None:
    assert resolve_entity_count(["customers"], tokens("how many customers do we have"), MODEL, False) == (
        ["customer_count"],
        {"have"},
    )
    assert resolve_entity_count(["customer_count"], tokens("how many customers bought"), MODEL, True)[0] == [
        "customers"
    ]
    with pytest.raises(PlanningError) as e:
        resolve_entity_count(["customer_count"], tokens("how many customers in 2024"), MODEL, True)
    assert e.value.details["clarify"]["choices"] == {
        "customers on file": "customer_count",
        "customers who bought": "customers",
    }
    preferred = resolve_entity_count(["customer_count"], tokens("how many customers in 2024"), MODEL, True, "customers")
    assert preferred == (["customers"], set())


def test_between_two_periods_is_one_span() -> None:
    text = normalise("revenue between March and June 2024")
    [span] = find_time(text, dt.date(2024, 12, 31))
    assert span.range == TimeRange(start=dt.date(2024, 3, 1), end=dt.date(2024, 6, 30), label="March 2024 to June 2024")


def test_several_unrelated_periods_are_declined_not_guessed() -> None:
    with pytest.raises(PlanningError):
        OfflinePlanner().plan("revenue in March and June 2024", CONTEXT)


@pytest.mark.parametrize(
    ("question", "dims", "limit", "metrics"),
    [
        ("which 4 channels had the most revenue", ["channel"], 4, ["revenue"]),
        ("store-type revenue in the East for H1 2023", ["store_type"], None, ["revenue"]),
        ("how many Silver customers do we have", [], None, ["customer_count"]),
        ("what did customers spend in 2024", [], None, ["revenue"]),
    ],
)
def test_the_issue_patterns_plan_right(question: str, dims: list[str], limit: int | None, metrics: list[str]) -> None:
    q = OfflinePlanner().plan(question, CONTEXT).query
    assert q is not None
    assert (q.dimensions, q.limit, q.metrics) == (dims, limit, metrics)


def test_a_participle_before_a_value_links_it() -> None:
    from workbench.assistant.planners.passes import verbs_of_values

    toks = tokens("number of orders paid by Online")
    assert verbs_of_values(toks, set(), [5]) == {3}
    assert verbs_of_values(tokens("orders weather by Online"), set(), [3]) == set()


@pytest.mark.parametrize(
    ("question", "metrics", "per"),
    [
        ("revenue per order in 2024", ["revenue"], "transactions"),
        ("average profit per unit by category", ["profit"], "units"),
        ("revenue per region", ["revenue"], None),  # "per" before a dimension is a breakdown
    ],
)
def test_a_metric_after_per_divides(question: str, metrics: list[str], per: str | None) -> None:
    q = OfflinePlanner().plan(question, CONTEXT).query
    assert q is not None and (q.metrics, q.per) == (metrics, per)
