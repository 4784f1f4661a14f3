"""One call per request that records it everywhere: metrics, the catalog query log, the audit log.

A query path (the HTTP API here; the router and ``ask`` once wired) calls :func:`record_sql`
or :func:`record_answer` after it has an outcome. Recording never fails the request: the
catalog spools rows locally while its database is down and writes them on its next success.
One :class:`~workbench.catalog.Catalog` is kept per catalog URL (opening one costs a schema
check).
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from workbench.config import Settings
from workbench.errors import QueryRefused, WorkbenchError
from workbench.observability import metrics

log = logging.getLogger(__name__)

_catalogs: dict[str, Any] = {}
_lock = threading.Lock()


def catalog_for(settings: Settings) -> Any:
    """The process's catalog for ``settings`` (created without connecting: an outage only spools)."""
    from workbench.catalog import open_catalog

    url = settings.catalog_url_resolved
    with _lock:
        found = _catalogs.get(url)
        if found is None:
            found = open_catalog(settings, connect=False)
            _catalogs[url] = found
        return found


def reset_catalogs() -> None:
    with _lock:
        for c in _catalogs.values():
            c.close()
        _catalogs.clear()


def _outcome(error: BaseException | None) -> str:
    if error is None:
        return "ok"
    if isinstance(error, QueryRefused):
        return "denied" if getattr(error, "kind", "") == "access_denied" else "refused"
    return "error"


def record_sql(
    settings: Settings,
    user: str,
    sql: str,
    result: Any = None,
    error: BaseException | None = None,
    seconds: float | None = None,
    write_log: bool = False,
) -> None:
    """Metrics for one SQL request; with ``write_log`` also the query log and an audit row.

    ``Workbench.sql`` (the router) already writes the query log and audit row of every query
    it sees, so its callers leave ``write_log`` off; a path that bypasses the router turns it on.
    """
    from workbench.catalog import QueryLogEntry

    metrics.observe_query(result, error=error, seconds=seconds)
    if not write_log:
        return
    try:
        catalog = catalog_for(settings)
        route = getattr(result, "route", None) or getattr(result, "engine", None)
        rows = len(result.df) if result is not None else None
        message = error.message if isinstance(error, WorkbenchError) else (str(error) if error else None)
        latency = getattr(result, "elapsed_ms", None) if result is not None else None
        if latency is None and seconds is not None:
            latency = seconds * 1000
        catalog.log_query(
            QueryLogEntry(
                user=user,
                sql=sql,
                route=route,
                engine=getattr(result, "engine", None),
                files_scanned=getattr(result, "files_scanned", None),
                bytes_scanned=getattr(result, "bytes_scanned", None),
                rows=rows,
                latency_ms=latency,
                cache_hit=bool(getattr(result, "cached", False)),
                error=message,
            )
        )
        catalog.audit(user, _outcome(error), sql=sql, route=route, rows=rows, detail=message)
    except Exception as e:  # recording must never fail the request
        log.warning("could not record the query: %s", e)


def record_answer(settings: Settings, user: str, answer: Any, seconds: float | None = None) -> None:
    """Metrics + one question-level audit row for an assistant answer.

    The SQL an answer ran is logged by the router; this row records the *question* and its
    outcome, including questions refused or failed before any SQL ran (which the router never
    sees). Route ``ask`` marks these rows in ``workbench audit``.
    """
    metrics.observe_answer(answer, seconds)
    if getattr(answer, "_workbench_audited", False):  # already recorded by another layer
        return
    try:
        answer._workbench_audited = True
        catalog = catalog_for(settings)
        error = answer.error or {}
        outcome = {"ok": "ok", "refused": "refused"}.get(answer.status, "error")
        detail = {"planner": answer.planner, "route": answer.route, "cost_usd": round(answer.cost_usd, 6)}
        if error:
            detail["error"] = error.get("message")
        catalog.audit(
            user,
            outcome,
            question=answer.question,
            sql=answer.sql,
            route="ask",
            rows=len(answer.rows),
            detail=json.dumps(detail, default=str),
        )
    except Exception as e:
        log.warning("could not record the answer: %s", e)
