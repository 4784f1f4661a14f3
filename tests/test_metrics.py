"""Prometheus metrics: what the query paths record, the push option, the alert rules, the LLM budget."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from tests.fixtures.llm_server import ScriptedLLM
from workbench.assistant.answer import Answer
from workbench.config import reset_settings
from workbench.errors import QueryRefused, ServiceUnavailable
from workbench.observability import metrics
from workbench.sql.result import QueryResult

ROOT = Path(__file__).resolve().parents[1]


def _v(name: str, **labels: str) -> float:
    return metrics.value(name, labels)


def test_observe_query_records_latency_route_cache_and_errors() -> None:
    before_hits = _v("workbench_cache_hits_total")
    before_misses = _v("workbench_cache_misses_total")
    before_count = _v("workbench_query_latency_seconds_count", kind="sql", route="duckdb")
    ok = QueryResult(df=pd.DataFrame({"a": [1]}), engine="duckdb", sql="SELECT 1", route="duckdb", elapsed_ms=12.0)
    metrics.observe_query(ok)
    hit = QueryResult(df=pd.DataFrame({"a": [1]}), engine="duckdb", sql="SELECT 1", route="cache", cached=True)
    metrics.observe_query(hit)
    metrics.observe_query(error=QueryRefused("no", "read only"), seconds=0.01)
    assert _v("workbench_query_latency_seconds_count", kind="sql", route="duckdb") == before_count + 1
    assert _v("workbench_cache_hits_total") == before_hits + 1
    assert _v("workbench_cache_misses_total") == before_misses + 1
    assert _v("workbench_query_errors_total", kind="sql", type="query_refused") >= 1
    text = metrics.render().decode()
    assert 'workbench_query_latency_seconds_bucket{kind="sql",le="10.0",route="duckdb"}' in text


def test_observe_answer_records_tokens_cost_and_fallbacks() -> None:
    cost_before = _v("workbench_llm_cost_usd_total")
    fallbacks = _v("workbench_llm_fallbacks_total")
    answer = Answer(
        question="q",
        answer="a",
        route="duckdb",
        timings={"total": 40.0},
        tokens={"prompt": 100, "completion": 20},
        cost_usd=0.002,
        notes=["The language model was unavailable (x); the offline planner answered instead."],
    )
    metrics.observe_answer(answer)
    assert _v("workbench_llm_cost_usd_total") == pytest.approx(cost_before + 0.002)
    assert _v("workbench_llm_tokens_total", kind="prompt") >= 100
    assert _v("workbench_llm_fallbacks_total") == fallbacks + 1
    assert _v("workbench_llm_cost_per_query_usd_count") >= 1


def test_ingest_and_freshness_metrics(small_lake: str) -> None:
    from workbench.lake.watch import freshness

    report = freshness(small_lake)
    assert report["age_s"] is not None and report["age_s"] >= 0
    assert set(report["tables"]) >= {"sales", "customers", "products", "stores"}
    assert report["tables"]["sales"]["latest_date"] >= "2024-01-01"
    assert _v("workbench_data_freshness_seconds", table="all") == pytest.approx(report["age_s"], abs=5)
    failed = _v("workbench_ingest_batches_total", outcome="failed")
    metrics.observe_ingest_failure(RuntimeError("boom"))
    assert _v("workbench_ingest_batches_total", outcome="failed") == failed + 1


class _Receiver(BaseHTTPRequestHandler):
    bodies: list[tuple[str, str, bytes]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_PUT(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.bodies.append(("PUT", self.path, self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()


@pytest.fixture
def receiver() -> Iterator[str]:
    """A loopback HTTP endpoint that accepts Pushgateway PUTs and keeps them."""
    _Receiver.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_push_metrics_sends_the_registry(receiver: str) -> None:
    metrics.observe_query(QueryResult(df=pd.DataFrame(), engine="duckdb", sql="SELECT 1", route="duckdb"))
    metrics.push_metrics(f"http://{receiver}", job="ingest")
    method, path, body = _Receiver.bodies[-1]
    assert method == "PUT" and path == "/metrics/job/ingest"
    assert b"workbench_queries_total" in body


def test_push_metrics_unreachable_is_service_unavailable() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ServiceUnavailable):
        metrics.push_metrics(f"http://127.0.0.1:{port}", timeout=2)


def test_alert_rules_are_valid_and_use_real_metric_names() -> None:
    rules = yaml.safe_load((ROOT / "cluster" / "alerts.yaml").read_text())
    names = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    assert {
        "WorkbenchQueryLatencyP95High",
        "WorkbenchErrorRateHigh",
        "WorkbenchLLMDailyBudgetExceeded",
        "WorkbenchIngestFailed",
    } <= names
    known = {m.name for m in metrics.REGISTRY.collect()}
    suffixes = ("_bucket", "_count", "_sum", "_total")
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert rule["expr"] and rule.get("annotations", {}).get("summary")
            for used in re.findall(r"\bworkbench_[a-z_]+", rule["expr"]):
                base = next((used[: -len(s)] for s in suffixes if used.endswith(s)), used)
                assert base in known or used in known, f"{rule['alert']} uses unknown metric {used}"
    p95 = next(r for g in rules["groups"] for r in g["rules"] if r["alert"] == "WorkbenchQueryLatencyP95High")
    assert "0.95" in p95["expr"] and "> 10" in p95["expr"]


def test_daily_budget_switches_to_offline_with_a_note(
    assistant_lake: str, scripted_llm: ScriptedLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spend is real (a priced model through the scripted server); once over, no LLM call is made."""
    import workbench
    from workbench.assistant import ask

    monkeypatch.setenv("WORKBENCH_LLM_MODEL", "gpt-4o-mini")
    monkeypatch.setenv("WORKBENCH_LLM_MODEL_STRONG", "gpt-4o-mini")
    monkeypatch.setenv("WORKBENCH_LLM_DAILY_BUDGET_USD", "0.00001")
    reset_settings()
    scripted_llm.queue(
        {"semantic_query": {"metrics": ["revenue"], "dimensions": ["region"], "time_range": {"year": 2023}}}
    )
    wb = workbench.connect(assistant_lake)
    try:
        first = ask(wb, "Show revenue by region for 2023")
        assert first.ok and first.planner == "llm"
        assert first.cost_usd > 0 and first.to_dict()["cost_usd"] > 0
        calls = len(scripted_llm.chat_requests)
        second = ask(wb, "Show revenue by region for 2023")
    finally:
        wb.close()
    assert second.ok and second.planner != "llm"
    assert len(scripted_llm.chat_requests) == calls, "no LLM call once the budget is spent"
    assert any("budget" in n for n in second.notes)
    assert second.cost_usd == 0.0
    by_region = {r[0]: r[1] for r in first.rows}
    assert {r[0]: pytest.approx(r[1], rel=1e-9) for r in second.rows} == by_region


def test_a_statement_and_a_question_are_counted_once(small_lake: str) -> None:
    """One layer records each: the pipeline's record step (SQL), the assistant's (questions)."""
    from workbench.assistant import ask
    from workbench.session import Workbench

    sql_ok = _v("workbench_queries_total", kind="sql", outcome="ok")
    sql_err = _v("workbench_query_errors_total", kind="sql", type="query_refused")
    ask_ok = _v("workbench_queries_total", kind="ask", outcome="ok")
    with Workbench.open(small_lake, llm_model="") as wb:
        wb.sql("SELECT COUNT(*) AS n FROM stores")
        with pytest.raises(QueryRefused):
            wb.sql("DELETE FROM stores")
        assert _v("workbench_queries_total", kind="sql", outcome="ok") == sql_ok + 1
        assert _v("workbench_query_errors_total", kind="sql", type="query_refused") == sql_err + 1
        answer = ask(wb, "total revenue in 2023")
    assert answer.ok, answer.answer
    assert _v("workbench_queries_total", kind="ask", outcome="ok") == ask_ok + 1
