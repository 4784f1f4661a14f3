"""Recording, once per request: metrics, the catalog query log and the audit log.

SQL statements are recorded by the last step of the query pipeline (``pipeline.record``,
through the session's :class:`QueryRecorder`); questions by the assistant's last step
(:func:`record_answer`). No other layer records them, so nothing needs to be deduplicated.
A surface records only what failed before reaching either (a malformed HTTP body:
:func:`record_rejected`).

Recording never fails the request: the catalog spools rows locally while its database is
down and writes them on its next success.
"""

from __future__ import annotations

import atexit
import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import SQLAlchemyError

from workbench.catalog.records import AuditEntry, QueryLogEntry
from workbench.config import Settings
from workbench.errors import AccessDenied, QueryRefused, WorkbenchError
from workbench.observability import metrics

if TYPE_CHECKING:
    from workbench.catalog.store import Catalog
    from workbench.sql.result import QueryResult

log = logging.getLogger(__name__)

#: what a catalog write can raise once the catalog's own spooling gave up
_WRITE_ERRORS = (WorkbenchError, SQLAlchemyError, OSError)

_catalogs: dict[str, Catalog] = {}
_lock = threading.Lock()


def catalog_for(settings: Settings) -> Catalog:
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


def outcome_of(error: BaseException | None) -> str:
    """The audit outcome of a request: ok, denied (access policy), refused or error."""
    if error is None:
        return "ok"
    if isinstance(error, AccessDenied):
        return "denied"
    return "refused" if isinstance(error, QueryRefused) else "error"


# --- SQL statements (the pipeline's record step) ---------------------------------------------
@dataclass(frozen=True)
class QueryOutcome:
    """One statement's outcome as the pipeline's ``record`` step sees it."""

    user: str
    sql: str
    question: str | None
    policy_fp: str
    result: QueryResult | None
    error: WorkbenchError | None
    route: str | None
    engine: str | None
    seconds: float

    def log_entry(self, normalised: str | None) -> QueryLogEntry:
        r = self.result
        if r is None:
            error = f"{type(self.error).__name__}: {self.error.message}"[:1000] if self.error else None
            return QueryLogEntry(
                user=self.user,
                sql=self.sql,
                question=self.question,
                route=self.route,
                engine=self.engine,
                latency_ms=round(self.seconds * 1000, 3),
                error=error,
            )
        return QueryLogEntry(
            user=self.user,
            sql=self.sql,
            normalized_sql=normalised,
            question=self.question,
            route=r.route,
            engine=r.engine,
            files_scanned=r.files_scanned,
            bytes_scanned=r.bytes_scanned,
            rows=len(r.df),
            latency_ms=round(r.elapsed_ms, 3),
            cache_hit=r.cached,
        )

    def audit_entry(self) -> AuditEntry:
        r = self.result
        detail = r.reason if r is not None else (self.error.message if self.error else "")
        return AuditEntry(
            user=self.user,
            outcome=outcome_of(self.error),
            question=self.question,
            sql=self.sql,
            route=r.route if r is not None else self.route,
            rows=len(r.df) if r is not None else None,
            policy=self.policy_fp or None,
            detail=detail[:500],
        )


class QueryRecorder:
    """Writes the query log and audit rows of a session on one background thread.

    A catalog write is a database commit (milliseconds, more on a busy disk); doing it after
    the answer is returned keeps it out of query latency (a cache hit takes ~1 ms). Rows are
    queued in order; :meth:`flush` waits for them, and ``close``/interpreter exit flush too.
    Metrics are counted at once, on the caller's thread.
    """

    def __init__(self, catalog: Callable[[], Catalog], normalise: Callable[[str], str | None]) -> None:
        self._catalog = catalog
        self._normalise = normalise
        self._queue: queue.Queue[tuple[QueryLogEntry, AuditEntry] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def record(self, outcome: QueryOutcome) -> None:
        if outcome.result is not None:
            metrics.observe_query(outcome.result)  # latency by route, cache hit rate
        else:
            metrics.observe_query(error=outcome.error, seconds=outcome.seconds, route=outcome.route)
        normalised = self._normalise(outcome.sql) if outcome.result is not None else None
        self._put(outcome.log_entry(normalised), outcome.audit_entry())

    def _put(self, entry: QueryLogEntry, audit: AuditEntry) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="workbench-query-log", daemon=True)
                self._thread.start()
                atexit.register(self.flush)
        self._queue.put((entry, audit))

    def _run(self) -> None:
        """Drain the queue in batches: whatever queued up while the last batch was written."""
        while True:
            items = [self._queue.get()]
            while len(items) < 500:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                rows = [item for item in items if item is not None]
                if rows:
                    self._write(rows)
                if None in items:
                    return
            finally:
                for _ in items:
                    self._queue.task_done()

    def _write(self, rows: list[tuple[QueryLogEntry, AuditEntry]]) -> None:
        try:
            self._catalog().record([e for e, _ in rows], [a for _, a in rows])
        except _WRITE_ERRORS as e:  # the log never fails a query (the catalog spools; this is a last resort)
            log.warning("query log write failed: %s", e)

    def flush(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.join()

    def close(self) -> None:
        self.flush()
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=10)
        self._thread = None


# --- questions (the assistant's last step) and requests no pipeline saw ----------------------
def record_answer(settings: Settings, user: str, answer: Any, seconds: float | None = None) -> None:
    """Metrics + one question-level audit row for an assistant answer.

    The SQL an answer ran is recorded by the query pipeline; this row records the *question*
    and its outcome, including questions refused or failed before any SQL ran. Route ``ask``
    marks these rows in ``workbench audit``.
    """
    metrics.observe_answer(answer, seconds)
    error = answer.error or {}
    outcome = {"ok": "ok", "refused": "refused"}.get(answer.status, "error")
    detail = {"planner": answer.planner, "route": answer.route, "cost_usd": round(answer.cost_usd, 6)}
    if error:
        detail["error"] = error.get("message")
    try:
        catalog_for(settings).audit(
            user,
            outcome,
            question=answer.question,
            sql=answer.sql,
            route="ask",
            rows=len(answer.rows),
            detail=json.dumps(detail, default=str),
        )
    except _WRITE_ERRORS as e:
        log.warning("could not record the answer: %s", e)


def record_rejected(kind: str, error: WorkbenchError, started: float) -> None:
    """Metrics for a request refused before it reached the pipeline or the assistant."""
    metrics.observe_query(error=error, seconds=time.perf_counter() - started, kind=kind)
