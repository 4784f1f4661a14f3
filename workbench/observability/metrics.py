"""Prometheus metrics of the workbench, in one registry the HTTP API serves and the push option sends.

The instruments answer the operational questions of the alert rules (``cluster/alerts.yaml``):
how slow are queries per route (histogram, so p95 is computable server-side), what fraction
fail and why, how often the cache answers, what the LLM costs per query and per day, how old
the newest ingested data is, and whether ingests succeed.

Query paths call :func:`observe_query` (SQL) or :func:`observe_answer` (assistant) once per
request; they never raise (metrics must not fail a query). A private registry (not the
process-global default) keeps the output free of unrelated collectors and lets tests read
values with :func:`value`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST, push_to_gateway

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)
CONTENT_TYPE = CONTENT_TYPE_LATEST

#: seconds; the alert threshold (10 s) is a bucket boundary so p95 > 10 s is exact
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
COST_BUCKETS = (0.0, 0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0)

QUERY_LATENCY = Histogram(
    "workbench_query_latency_seconds",
    "Wall-clock latency of one SQL query or question, by route (cache, rollup:<name>, duckdb, dask, ask:...).",
    ["kind", "route"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
QUERIES = Counter(
    "workbench_queries_total", "Queries and questions answered or failed.", ["kind", "outcome"], registry=REGISTRY
)
ERRORS = Counter(
    "workbench_query_errors_total", "Failed queries and questions by error type.", ["kind", "type"], registry=REGISTRY
)
CACHE_HITS = Counter("workbench_cache_hits_total", "Queries answered from the result cache.", registry=REGISTRY)
CACHE_MISSES = Counter("workbench_cache_misses_total", "Queries the result cache could not answer.", registry=REGISTRY)
LLM_TOKENS = Counter("workbench_llm_tokens_total", "LLM tokens spent, by token kind.", ["kind"], registry=REGISTRY)
LLM_COST = Counter("workbench_llm_cost_usd_total", "LLM spend in US dollars.", registry=REGISTRY)
LLM_COST_PER_QUERY = Histogram(
    "workbench_llm_cost_per_query_usd",
    "LLM spend of one question in US dollars.",
    buckets=COST_BUCKETS,
    registry=REGISTRY,
)
LLM_DAILY_SPEND = Gauge(
    "workbench_llm_daily_spend_usd", "LLM spend so far today (UTC day of the client).", registry=REGISTRY
)
LLM_DAILY_BUDGET = Gauge("workbench_llm_daily_budget_usd", "Configured daily LLM budget.", registry=REGISTRY)
LLM_FALLBACKS = Counter(
    "workbench_llm_fallbacks_total",
    "Questions the offline planner answered because the LLM was down, slow or over budget.",
    registry=REGISTRY,
)
FRESHNESS = Gauge(
    "workbench_data_freshness_seconds",
    "Age of the newest ingested data (now - last ingest commit).",
    ["table"],
    registry=REGISTRY,
)
LAST_INGEST = Gauge(
    "workbench_ingest_last_success_timestamp_seconds", "Unix time of the last successful ingest.", registry=REGISTRY
)
INGEST_ROWS = Counter(
    "workbench_ingest_rows_total", "Rows committed by ingests, by table.", ["table"], registry=REGISTRY
)
INGEST_BATCHES = Counter(
    "workbench_ingest_batches_total", "Ingest runs by outcome (ok, failed, empty).", ["outcome"], registry=REGISTRY
)


def _safe(fn: Any) -> Any:
    """Metrics never fail the caller: log and carry on."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # pragma: no cover - defensive
            log.warning("metrics: %s failed: %s", fn.__name__, e)
            return None

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


def _route_label(route: str | None) -> str:
    """Bounded label values: ``rollup:<name>`` keeps the name (few rollups), anything else its family."""
    route = (route or "unknown").strip() or "unknown"
    return route[:64]


@_safe
def observe_query(
    result: Any = None,
    *,
    error: BaseException | None = None,
    seconds: float | None = None,
    route: str | None = None,
    kind: str = "sql",
) -> None:
    """Record one SQL query: latency by route, cache hit or miss, outcome, error type.

    ``result`` is a :class:`~workbench.sql.result.QueryResult` (its ``elapsed_ms``, ``route``
    and ``cached`` are used); on failure pass ``error`` (and ``seconds`` when known).
    """
    if result is not None:
        secs = seconds if seconds is not None else float(getattr(result, "elapsed_ms", 0.0) or 0.0) / 1000
        cached = bool(getattr(result, "cached", False))
        label = _route_label(route or ("cache" if cached else getattr(result, "route", "") or result.engine))
        QUERY_LATENCY.labels(kind, label).observe(secs)
        (CACHE_HITS if cached else CACHE_MISSES).inc()
        QUERIES.labels(kind, "ok").inc()
        return
    if seconds is not None:
        QUERY_LATENCY.labels(kind, _route_label(route or "failed")).observe(seconds)
    QUERIES.labels(kind, "error").inc()
    ERRORS.labels(kind, error_type(error)).inc()


def error_type(error: BaseException | None) -> str:
    if error is None:
        return "unknown"
    return str(getattr(error, "kind", None) or type(error).__name__)


@_safe
def observe_answer(answer: Any, seconds: float | None = None) -> None:
    """Record one assistant answer: latency by route, outcome, tokens and cost."""
    secs = seconds if seconds is not None else float((answer.timings or {}).get("total", 0.0)) / 1000
    route = _route_label(answer.route or answer.status)
    QUERY_LATENCY.labels("ask", route).observe(secs)
    if answer.status == "ok":
        QUERIES.labels("ask", "ok").inc()
        (CACHE_HITS if answer.cached else CACHE_MISSES).inc()
    elif answer.status == "refused":
        QUERIES.labels("ask", "refused").inc()
    else:
        QUERIES.labels("ask", "error").inc()
        ERRORS.labels("ask", str((answer.error or {}).get("type") or "failed")).inc()
    tokens = answer.tokens or {}
    for k in ("prompt", "completion"):
        if tokens.get(k):
            LLM_TOKENS.labels(k).inc(int(tokens[k]))
    cost = float(answer.cost_usd or 0.0)
    if cost > 0:
        LLM_COST.inc(cost)
    LLM_COST_PER_QUERY.observe(cost)
    if any("offline planner answered" in n for n in answer.notes or []):
        LLM_FALLBACKS.inc()


@_safe
def observe_llm_budget(spent_today: float, budget: float) -> None:
    LLM_DAILY_SPEND.set(spent_today)
    LLM_DAILY_BUDGET.set(budget)


@_safe
def observe_ingest(report: Any) -> None:
    """Record a successful ingest run from its QualityReport (rows per table)."""
    written = 0
    for name, t in (getattr(report, "tables", None) or {}).items():
        rows = int(getattr(t, "rows_written", 0) or 0)
        written += rows
        if rows:
            INGEST_ROWS.labels(name).inc(rows)
    INGEST_BATCHES.labels("ok" if written else "empty").inc()
    LAST_INGEST.set(time.time())


@_safe
def observe_ingest_failure(error: BaseException | None = None) -> None:
    INGEST_BATCHES.labels("failed").inc()


@_safe
def set_freshness(age_s: float | None, table: str = "all") -> None:
    if age_s is not None:
        FRESHNESS.labels(table).set(age_s)


def render() -> bytes:
    """The registry in the Prometheus text format (what ``GET /metrics`` returns)."""
    return generate_latest(REGISTRY)


def push_metrics(
    gateway_url: str, job: str = "workbench", grouping_key: dict[str, str] | None = None, timeout: float = 10.0
) -> None:
    """Push the registry to a Prometheus Pushgateway (for batch runs: ingests, CLI queries).

    Settings-free on purpose: cron jobs and notebooks pass the gateway they use. A gateway that
    cannot be reached raises :class:`~workbench.errors.ServiceUnavailable`.
    """
    from workbench.errors import ServiceUnavailable

    try:
        push_to_gateway(gateway_url, job=job, registry=REGISTRY, grouping_key=grouping_key, timeout=timeout)
    except OSError as e:
        raise ServiceUnavailable(f"cannot push metrics to {gateway_url}: {e}", "check the Pushgateway URL") from e


def value(name: str, labels: dict[str, str] | None = None) -> float:
    """Current value of a sample (0.0 when absent): for tests and ``/healthz``."""
    got = REGISTRY.get_sample_value(name, labels or {})
    return float(got) if got is not None else 0.0
