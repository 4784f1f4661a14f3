"""A clarifying question is a conversation turn (issue 12, item 3)."""

from __future__ import annotations

import json

import duckdb
from click.testing import CliRunner

from workbench.assistant.memory import answer_to_pending
from workbench.cli import main

PENDING = [
    {
        "question": "how many customers in 2024",
        "pending": {"choices": {"customers on file": "customer_count", "customers who bought": "customers"}},
    }
]


def test_a_short_reply_picks_a_choice() -> None:
    assert answer_to_pending("on file", PENDING) == ("how many customers in 2024", "customer_count")
    assert answer_to_pending("the customers who bought", PENDING) == ("how many customers in 2024", "customers")
    assert answer_to_pending("customers", PENDING) is None  # both choices say it: still ambiguous
    assert answer_to_pending("revenue by region for every store type in the north last year", PENDING) is None
    assert answer_to_pending("on file", [{"question": "q", "semantic_query": {}}]) is None


def _count(lake: str, sql: str) -> int:
    con = duckdb.connect()
    try:
        for table in ("sales", "customers"):
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{lake}/{table}/**/*.parquet')")
        return int(con.execute(sql).fetchone()[0])
    finally:
        con.close()


def test_clarifying_question_then_short_reply_answers_right(small_lake: str, tmp_path: object) -> None:
    runner = CliRunner()
    env = {"WORKBENCH_LAKE": small_lake, "WORKBENCH_HOME": str(tmp_path)}
    ask = ["ask", "--session", "clar-1", "--json"]
    first = json.loads(runner.invoke(main, [*ask[:1], "How many customers in 2024?", *ask[1:]], env=env).output)
    assert first["status"] == "failed" and first["rows"] == []
    assert "on file" in first["answer"] and "who bought" in first["answer"]
    assert set(first["error"]["details"]["clarify"]["choices"]) == {"customers on file", "customers who bought"}

    second = json.loads(runner.invoke(main, [*ask[:1], "who bought", *ask[1:]], env=env).output)
    assert second["status"] == "ok", second
    truth = _count(small_lake, "SELECT COUNT(DISTINCT customer_id) FROM sales WHERE year = 2024")
    assert second["rows"][0][-1] == truth
    assert second["interpretation"] == "Total customers who bought, 2024"

    # the same question, the other reply: customers on file (the customers table)
    runner.invoke(main, [*ask[:1], "How many customers in 2024?", *ask[1:]], env=env)
    third = json.loads(runner.invoke(main, [*ask[:1], "customers on file", *ask[1:]], env=env).output)
    assert third["status"] == "ok", third
    assert third["rows"][0][-1] == _count(small_lake, "SELECT COUNT(*) FROM customers") != truth
    # on file has no period: the answer says so instead of silently counting buyers
    assert third["interpretation"] == "Total customers on file, all data"
    assert any("period does not apply" in n for n in third["notes"])
