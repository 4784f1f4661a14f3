"""Narratives never invent a number (issue 12, item 5): template rules and the LLM-written check."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

import workbench
from tests.fixtures.llm_server import ScriptedLLM
from tests.test_graph_llm import GOOD, QUESTION, expected
from workbench.assistant import ask
from workbench.assistant.narrative import cited_sources, describe_result, numbers_in, unsupported_numbers
from workbench.assistant.retrieval.index import Source
from workbench.config import reset_settings
from workbench.semantic.query import Filter, SemanticQuery, TimeRange

YEAR_2024 = Source(
    "year:2024",
    "Year 2024: revenue $1.54M, up 11.9% vs 2023.",
    0.5,
    {"kind": "year", "year": 2024, "revenue": 1_538_000.0, "growth_yoy": 11.9},
)
BOOKS_2024 = Source(
    "year:2024:Books",
    "Books, year 2024: revenue $0.2M.",
    0.4,
    {"kind": "year", "year": 2024, "category": "Books", "revenue": 2e5},
)
MARCH = Source(
    "month:2024-03",
    "March 2024: revenue $104.8K.",
    0.3,
    {"kind": "month", "year": 2024, "month": 3, "revenue": 104_800.0},
)


def test_numbers_are_read_with_their_rounding() -> None:
    assert numbers_in("revenue $1.54M, up 11.9%") == [("$1.54M", 1_540_000.0, 5000.0), ("11.9%", 11.9, 0.05)]
    assert numbers_in("1,234 orders")[0][1] == 1234.0


def test_unsupported_numbers_are_found() -> None:
    df = pd.DataFrame({"region": ["North", "South"], "revenue": [1_538_765.12, 250_000.0]})
    assert unsupported_numbers("North led with $1.54M, ahead of South ($250,000.00).", df, []) == []
    assert unsupported_numbers("North led with $1.54M, up 7.2% on 2023.", df, [], given="2023") == ["7.2%"]
    assert unsupported_numbers("North led in 2023.", df, []) == ["2023"]  # a year is a number too
    assert unsupported_numbers("North led with $1.54M, up 11.9% on 2023.", df, [YEAR_2024], given="2023") == []


def test_only_summaries_of_the_same_scope_are_cited() -> None:
    total_2024 = SemanticQuery(metrics=["revenue"], time_range=TimeRange(year=2024))
    assert cited_sources(total_2024, [YEAR_2024, BOOKS_2024, MARCH]) == [YEAR_2024]
    books = total_2024.model_copy(update={"filters": [Filter(dimension="category", values=["Books"])]})
    assert cited_sources(books, [YEAR_2024, BOOKS_2024, MARCH]) == [BOOKS_2024]
    online = total_2024.model_copy(update={"filters": [Filter(dimension="payment_method", values=["Cash"])]})
    assert cited_sources(online, [YEAR_2024, BOOKS_2024]) == []


def test_template_leads_with_the_answer_and_cites_by_number() -> None:
    df = pd.DataFrame({"revenue": [1_538_000.0]})
    text = describe_result(df, {"revenue": "currency"}, "2024", [YEAR_2024])
    assert text == "The revenue (2024) is $1.54M, up 11.9% year over year [1]."
    by_region = pd.DataFrame({"region": ["North", "South"], "revenue": [2.0, 1.0]})
    text = describe_result(by_region, {"revenue": "currency"}, "2024", [YEAR_2024])
    assert "rows" not in text and "year:2024" not in text and text.endswith("Sources: [1].")


@pytest.fixture
def narrating(scripted_llm: ScriptedLLM, monkeypatch: pytest.MonkeyPatch, assistant_lake: str) -> Iterator[Any]:
    monkeypatch.setenv("WORKBENCH_LLM_NARRATIVE", "true")
    reset_settings()
    session = workbench.connect(assistant_lake)
    yield session
    session.close()


def _truth(lake: str) -> dict[str, float]:
    return dict(expected(lake, "SELECT region, SUM(revenue) FROM sales WHERE year = 2023 GROUP BY region"))


def test_a_narrative_with_an_invented_figure_is_never_shown(
    narrating: Any, scripted_llm: ScriptedLLM, assistant_lake: str
) -> None:
    top = max(_truth(assistant_lake).items(), key=lambda kv: kv[1])
    invented = f"{top[0]} led 2023 with ${top[1]:,.2f}, 14.3% more than the year before."
    scripted_llm.queue(GOOD, invented)
    answer = ask(narrating, QUESTION)
    assert answer.ok and answer.planner == "llm"
    assert len(scripted_llm.chat_requests) == 2, "the model was asked for the narrative"
    assert "14.3%" not in answer.answer and answer.answer.startswith("Revenue (2023) by region: highest")
    assert any("14.3%" in n and "template" in n for n in answer.notes)


def test_a_faithful_narrative_is_shown(narrating: Any, scripted_llm: ScriptedLLM, assistant_lake: str) -> None:
    top = max(_truth(assistant_lake).items(), key=lambda kv: kv[1])
    faithful = f"{top[0]} had the most revenue in 2023: ${top[1] / 1e6:.2f}M."
    scripted_llm.queue(GOOD, faithful)
    answer = ask(narrating, QUESTION)
    assert answer.ok and answer.answer.startswith(faithful)
    narrative_request = scripted_llm.chat_requests[1]["messages"]
    assert 'untrusted="true"' in narrative_request[1]["content"] and top[0] in narrative_request[1]["content"]


def test_a_summary_of_one_row_of_a_breakdown_is_cited() -> None:
    monthly = SemanticQuery(metrics=["revenue"], dimensions=["month"], time_range=TimeRange(year=2024))
    assert cited_sources(monthly, [YEAR_2024, MARCH, BOOKS_2024]) == [YEAR_2024, MARCH]
    march_only = SemanticQuery(metrics=["revenue"], time_range=TimeRange(year=2024, month=3))
    assert cited_sources(march_only, [YEAR_2024, MARCH]) == [MARCH]
