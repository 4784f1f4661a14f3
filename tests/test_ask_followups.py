"""Answers without an LLM: follow-ups from Python and from the CLI, sources, refusals, JSON shape."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

import workbench
from tests.fixtures.common import Recorder
from tests.test_graph_llm import expected
from workbench.assistant import ask
from workbench.cli import main

ANSWER_KEYS = {
    "question",
    "answer",
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
}


def _value(answer: Any) -> float:
    assert answer.ok, answer.answer
    return float(answer.rows[0][answer.columns.index("revenue")])


def test_follow_ups_from_python(assistant_lake: str) -> None:
    with workbench.connect(assistant_lake) as wb:
        first = ask(wb, "What was the total revenue in 2023?", session="py-1")
        assert _value(first) == pytest.approx(
            expected(assistant_lake, "SELECT SUM(revenue) FROM sales WHERE year = 2023")[0][0]
        )
        second = ask(wb, "and in 2022?", session="py-1")
        assert second.period == "2022"
        assert _value(second) == pytest.approx(
            expected(assistant_lake, "SELECT SUM(revenue) FROM sales WHERE year = 2022")[0][0]
        )
    # a new session object (as a new process would have) continues the same conversation
    with workbench.connect(assistant_lake) as wb:
        third = ask(wb, "only Electronics", session="py-1")
        truth = expected(
            assistant_lake, "SELECT SUM(revenue) FROM sales WHERE year = 2022 AND category = 'Electronics'"
        )
        assert _value(third) == pytest.approx(truth[0][0])
        fourth = ask(wb, "break that down by channel", session="py-1")
    assert fourth.ok and "channel" in fourth.columns
    truth = dict(
        expected(
            assistant_lake,
            "SELECT channel, SUM(revenue) FROM sales WHERE year = 2022 AND category = 'Electronics' GROUP BY channel",
        )
    )
    got = {r[fourth.columns.index("channel")]: r[fourth.columns.index("revenue")] for r in fourth.rows}
    assert got == pytest.approx(truth)
    assert fourth.chart is not None and fourth.chart["kind"] == "bar"


def test_sessions_are_independent(assistant_lake: str) -> None:
    with workbench.connect(assistant_lake) as wb:
        ask(wb, "What was the total revenue in 2023?", session="a")
        lone = ask(wb, "and in 2022?", session="b")
    assert lone.planner != "memory"


def test_sources_name_the_category_and_year(assistant_lake: str) -> None:
    with workbench.connect(assistant_lake) as wb:
        answer = ask(wb, "What was the Electronics revenue in 2023?")
    assert answer.ok and answer.sources
    assert any("Electronics" in s.text and "2023" in s.text for s in answer.sources)
    assert answer.sources[0].id == "year:2023:Electronics"
    # cited by number; the id stays out of the prose
    assert "[1]" in answer.answer and "year:2023:Electronics" not in answer.answer


@pytest.mark.parametrize(
    "question",
    [
        "what will the weather be tomorrow?",
        "delete the sales table",
        "DROP TABLE sales",
        "please remove all rows from customers",
    ],
)
def test_out_of_model_questions_are_refused(assistant_lake: str, question: str) -> None:
    with workbench.connect(assistant_lake) as wb:
        rec = Recorder(wb)
        answer = ask(wb, question)
    assert answer.status == "refused" and answer.sql is None and answer.error is not None
    assert answer.answer.startswith("I can't answer that")
    assert not any(word in sql.upper() for sql in rec.executed for word in ("DROP", "DELETE"))


def test_cli_follow_up_across_invocations(assistant_lake: str) -> None:
    runner = CliRunner()
    env = {"WORKBENCH_LAKE": assistant_lake}
    first = runner.invoke(main, ["ask", "Show revenue by region for 2023", "--session", "cli-1", "--json"], env=env)
    assert first.exit_code == 0, first.output
    body = json.loads(first.output)
    assert body.keys() >= ANSWER_KEYS
    assert body["period"] == "2023" and len(body["rows"]) == 5
    assert all(s.keys() == {"id", "text", "score"} for s in body["sources"])
    second = runner.invoke(main, ["ask", "and in 2022?", "--session", "cli-1", "--json"], env=env)
    assert second.exit_code == 0, second.output
    body2 = json.loads(second.output)
    truth = dict(expected(assistant_lake, "SELECT region, SUM(revenue) FROM sales WHERE year = 2022 GROUP BY region"))
    got = {r[body2["columns"].index("region")]: r[body2["columns"].index("revenue")] for r in body2["rows"]}
    assert body2["period"] == "2022" and got == pytest.approx(truth)


def test_cli_text_output_and_refusal_exit_code(assistant_lake: str) -> None:
    runner = CliRunner()
    env = {"WORKBENCH_LAKE": assistant_lake}
    ok = runner.invoke(main, ["ask", "Monthly revenue trend for 2023"], env=env)
    assert ok.exit_code == 0, ok.output
    assert "period: 2023" in ok.output and "sql: SELECT" in ok.output and "[1]" in ok.output
    refused = runner.invoke(main, ["ask", "delete the sales table", "--json"], env=env)
    assert refused.exit_code == 5
    body = json.loads(refused.output)
    assert body["status"] == "refused" and body["error"]["type"] == "query_refused" and body["sql"] is None


def test_restricted_users_only_see_summaries_inside_their_filter(assistant_lake: str, monkeypatch) -> None:
    from pathlib import Path

    from workbench.config import reset_settings

    monkeypatch.setenv("WORKBENCH_POLICIES", str(Path(__file__).resolve().parents[1] / "policies.yaml"))
    reset_settings()
    with workbench.connect(assistant_lake) as wb:
        admin = ask(wb, "What was the total revenue in 2023?", user="admin")
        north = ask(wb, "What was the total revenue in 2023?", user="north_analyst")
    assert any(s.id == "year:2023" for s in admin.sources)
    assert north.sources, "summaries about the North remain"
    assert all(s.meta.get("region") == "North" for s in north.sources)
    assert all("North" in s.text for s in north.sources)


def test_quarter_over_quarter_answer_end_to_end(assistant_lake: str) -> None:
    """QoQ through the whole graph: numbers equal plain DuckDB, the narrative states the change in currency."""
    from workbench.assistant.narrative import fmt

    with workbench.connect(assistant_lake) as wb:
        answer = ask(wb, "revenue quarter over quarter in Q3 2024")
    assert answer.ok and answer.period == "Q3 2024 vs Q2 2024", answer.answer
    ((cur, prev),) = expected(
        assistant_lake,
        "SELECT SUM(revenue) FILTER (WHERE month BETWEEN 7 AND 9), SUM(revenue) FILTER (WHERE month BETWEEN 4 AND 6) "
        "FROM sales WHERE year = 2024",
    )
    body = answer.to_dict()
    row = dict(zip(body["columns"], body["rows"][0], strict=True))
    assert row["revenue_current"] == pytest.approx(cur) and row["revenue_previous"] == pytest.approx(prev)
    assert (
        f"{fmt(cur, 'currency')} against {fmt(prev, 'currency')} ({(cur - prev) / prev * 100:+.1f}%)" in answer.answer
    )
