"""Pure pieces of an answer: narrative, chart spec, follow-up edits, session store, LLM plan parsing."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from tests.fixtures.llm_server import ScriptedLLM
from workbench.assistant.answer import Answer, chart_spec
from workbench.assistant.memory import SessionStore, looks_like_follow_up, resolve_follow_up
from workbench.assistant.narrative import describe_result
from workbench.assistant.planners.llm import is_complex, parse_plan
from workbench.errors import DataError, PlanningError, QueryRefused
from workbench.semantic.model import load_model
from workbench.semantic.query import Filter, SemanticQuery, TimeRange

VOCAB = {"category": ["Electronics", "Clothing"], "region": ["North", "South"], "channel": ["Online", "Mobile"]}


def test_large_results_are_summarised_not_pasted() -> None:
    df = pd.DataFrame({"product": [f"P{i}" for i in range(200)], "revenue": [float(i) for i in range(200)]})
    text = describe_result(df, {"revenue": "currency"}, "2023", additive=frozenset({"revenue"}))
    assert "rows" not in text and "P199 ($199.00)" in text and "lowest P0" in text
    assert "total $19.9K over 200 products" in text and "median" in text  # workbench.formatting.money
    assert "P100" not in text


def test_single_value_and_trend_narratives() -> None:
    assert describe_result(pd.DataFrame({"revenue": [1_234_567.0]}), {"revenue": "currency"}, "2023") == (
        "The revenue (2023) is $1.23M."
    )
    trend = pd.DataFrame({"year": [2023] * 3, "month": [1, 2, 3], "revenue": [10.0, 30.0, 20.0]})
    text = describe_result(trend, {"revenue": "currency"}, "2023")
    assert "highest in 2023-02" in text and "(+100.0%)" in text


def test_chart_specs() -> None:
    by_region = pd.DataFrame({"region": ["North", "South"], "revenue": [1.0, 2.0]})
    assert chart_spec(["region", "revenue"], by_region, "t") == {
        "kind": "bar",
        "x": "region",
        "y": "revenue",
        "title": "t",
    }
    monthly = pd.DataFrame({"year": [2023] * 3, "month": [1, 2, 3], "revenue": [1.0, 2.0, 3.0]})
    assert chart_spec(["year", "month", "revenue"], monthly, "t")["kind"] == "line"
    assert chart_spec(["revenue"], pd.DataFrame({"revenue": [1.0]}), "t")["kind"] == "table"
    assert chart_spec([], pd.DataFrame(), "t") is None


def test_answer_json_shape() -> None:
    body = Answer(question="q", answer="a").to_dict()
    assert list(body)[:16] == [
        "question",
        "answer",
        "interpretation",
        "sql",
        "semantic_query",
        "columns",
        "rows",
        "chart",
        "sources",
        "route",
        "timings",
        "tokens",
        "cost_usd",
        "cached",
        "period",
        "planner",
    ]


@pytest.mark.parametrize(
    ("question", "check"),
    [
        ("and in 2022?", lambda q: q.time_range.year == 2022),
        ("what about Q3 2024", lambda q: (q.time_range.year, q.time_range.quarter) == (2024, 3)),
        ("only Electronics", lambda q: q.filters[-1] == Filter(dimension="category", op="in", values=["Electronics"])),
        ("break that down by channel", lambda q: q.dimensions == ["region", "channel"]),
        (
            "just the North and South",
            lambda q: "region" not in q.dimensions or q.filters[-1].values == ["North", "South"],
        ),
    ],
)
def test_follow_up_edits(question: str, check) -> None:  # type: ignore[no-untyped-def]
    previous = SemanticQuery(metrics=["revenue"], dimensions=["region"], time_range=TimeRange(year=2023))
    edited = resolve_follow_up(question, previous, load_model(), VOCAB)
    assert edited is not None and check(edited)
    assert previous.time_range is not None and previous.time_range.year == 2023, "the previous query is not mutated"


def test_new_questions_are_not_follow_ups() -> None:
    assert not looks_like_follow_up("What was the total revenue by region in 2023?")
    previous = SemanticQuery(metrics=["revenue"])
    assert resolve_follow_up("and then?", previous, load_model(), VOCAB) is None


def test_session_store(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = SessionStore()
    store.append("s-1", {"question": "q", "semantic_query": {"metrics": ["revenue"]}})
    assert SessionStore().last_query("s-1") == SemanticQuery(metrics=["revenue"])
    with pytest.raises(DataError):
        store.history("../etc/passwd")
    store.clear("s-1")
    assert store.history("s-1") == []


def test_parse_plan_shapes() -> None:
    assert parse_plan('{"metrics": ["revenue"]}').query == SemanticQuery(metrics=["revenue"])
    assert parse_plan("```sql\nSELECT 1\n```").sql == "SELECT 1"
    with pytest.raises(QueryRefused):
        parse_plan('{"refuse": "not about the data"}')
    with pytest.raises(PlanningError, match="does not validate"):
        parse_plan('{"semantic_query": {"metrics": []}}')
    with pytest.raises(PlanningError):
        parse_plan('{"answer": 42}')


def test_complexity_routing() -> None:
    assert not is_complex("revenue by region in 2023")
    assert is_complex("compare revenue growth of North vs South")


def test_llm_rephrases_summaries_in_batches(scripted_llm: ScriptedLLM) -> None:
    from workbench.assistant.retrieval.summaries import _rephrase_batches
    from workbench.config import get_settings

    records = [{"id": f"r{i}", "text": f"fact {i}"} for i in range(3)]
    rewritten = {f"r{i}": f"Rewritten fact {i}." for i in range(3)}
    scripted_llm.queue(rewritten, rewritten)  # either batch may arrive first: both replies cover every id
    asyncio.run(_rephrase_batches(records, get_settings(), batch=2))
    assert [r["text"] for r in records] == ["Rewritten fact 0.", "Rewritten fact 1.", "Rewritten fact 2."]
    assert len(scripted_llm.chat_requests) == 2
    assert all('untrusted="true"' in r["messages"][-1]["content"] for r in scripted_llm.chat_requests)


def test_failed_llm_batch_keeps_template_text(scripted_llm: ScriptedLLM) -> None:
    from workbench.assistant.retrieval.summaries import _rephrase_batches
    from workbench.config import get_settings

    records = [{"id": "r0", "text": "fact 0"}]
    scripted_llm.queue("not json at all")
    asyncio.run(_rephrase_batches(records, get_settings()))
    assert records[0]["text"] == "fact 0"


def test_comparison_narrative_states_the_change_first() -> None:
    df = pd.DataFrame(
        {
            "region": ["North", "South", "West"],
            "revenue_current": [120.0, 90.0, 200.0],
            "revenue_previous": [100.0, 100.0, 160.0],
        }
    )
    df["revenue_growth_pct"] = (df.revenue_current - df.revenue_previous) / df.revenue_previous * 100
    text = describe_result(df, {}, "Q3 2024 vs Q2 2024", additive=frozenset({"revenue_current", "revenue_previous"}))
    total = (410 - 360) / 360 * 100
    assert text.startswith(f"Revenue (Q3 2024 vs Q2 2024): 410 against 360 ({total:+.1f}%)")
    assert "fastest growth West (+25.0%)" in text and "slowest South (-10.0%)" in text
    single = describe_result(df.iloc[[0]].drop(columns="region"), {}, "2024 vs 2023")
    assert single == "Revenue (2024 vs 2023): 120 against 100 (+20.0%)."


def test_a_ratio_per_group_gets_no_total() -> None:
    """Revenue per customer by tier does not add up: the narrative states no total, then or now."""
    import sqlglot

    from workbench.semantic.model import is_additive as additive

    by_tier = pd.DataFrame({"loyalty_tier": ["Gold", "Silver"], "revenue_per_customer": [120.0, 80.0]})
    text = describe_result(by_tier, {"revenue_per_customer": "currency"}, "2024")
    assert "total" not in text and "200" not in text
    growth = pd.DataFrame(
        {
            "region": ["East", "West"],
            "aov_current": [50.0, 60.0],
            "aov_previous": [40.0, 60.0],
            "aov_growth_pct": [25.0, 0.0],
        }
    )
    text = describe_result(growth, {"aov_current": "currency", "aov_previous": "currency"}, "2024 vs 2023")
    assert "110" not in text and "100" not in text and "East (+25.0%)" in text
    for sql, want in [
        ("SUM(revenue)", True),
        ("COUNT(*)", True),
        ("COUNT(DISTINCT customer_id)", False),
        ("SUM(revenue) / COUNT(DISTINCT customer_id)", False),
        ("AVG(discount)", False),
        ("MAX(revenue)", False),
    ]:
        assert additive(sqlglot.parse_one(sql)) is want, sql
