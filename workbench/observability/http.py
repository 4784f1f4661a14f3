"""The HTTP API of the served product: ``/metrics``, ``/healthz``, ``/api/sql``, ``/api/ask``.

Plain tornado ``RequestHandler`` classes, so the same handlers run inside ``panel serve``
(``pn.serve(..., extra_patterns=extra_patterns())``) and in the standalone
``workbench api`` server (:func:`make_app`) that the load test drives without Panel.

Queries are blocking (DuckDB, Dask), so each request borrows a :class:`Workbench` session from
a small pool and runs on a thread pool, never on the IOLoop: ``/metrics`` and ``/healthz``
stay responsive under load. A session is used by one request at a time (the assistant keeps
per-question state on it). The JSON bodies are exactly those of ``workbench sql --json`` and
``workbench ask --json``; errors use the one error shape ``{"error": {type, message, hint}}``
with an HTTP status that says whose fault it was.

Who asks comes from the ``Authorization: Bearer`` header (:mod:`workbench.auth`), never from
the body: a ``user`` field in the body is ignored. An administrator (an ``all_access`` role)
may send ``as_user`` to evaluate a request under another user's policy; that is audited with
both names. ``/metrics`` and ``/healthz`` stay open for scrapers and probes (no row data).
"""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import tornado.web
from tornado.ioloop import IOLoop

from workbench.auth import ApiAuth, Identity, api_authenticator
from workbench.config import Settings, get_settings
from workbench.errors import (
    AccessDenied,
    AuthenticationError,
    ConfigError,
    DataError,
    NotFoundError,
    PlanningError,
    QueryFailed,
    QueryRefused,
    QueryTimeout,
    RateLimited,
    ServiceUnavailable,
    WorkbenchError,
)
from workbench.observability import metrics
from workbench.observability.recording import catalog_for, record_rejected

if TYPE_CHECKING:
    from workbench.runner import QueryRunner
    from workbench.session import Workbench

T = TypeVar("T")

#: HTTP status per error family (most specific first)
_STATUS: list[tuple[type[WorkbenchError], int]] = [
    (RateLimited, 429),
    (AuthenticationError, 401),
    (AccessDenied, 403),
    (QueryRefused, 400),
    (NotFoundError, 404),
    (DataError, 400),
    (PlanningError, 422),
    (QueryTimeout, 504),
    (QueryFailed, 500),
    (ServiceUnavailable, 503),
    (ConfigError, 500),
]
MAX_BODY = 1 << 20


def status_for(err: WorkbenchError) -> int:
    return next((code for cls, code in _STATUS if isinstance(err, cls)), 500)


class Backend:
    """The sessions and threads behind the handlers (one per server)."""

    def __init__(self, lake: str | None = None, settings: Settings | None = None, sessions: int = 2) -> None:
        self.settings = settings or (get_settings(lake=lake) if lake else get_settings())
        self.lake_url = lake
        self.size = max(1, sessions)
        self._pool: queue.Queue[Workbench] = queue.Queue()
        self._created = 0
        self._executor = ThreadPoolExecutor(max_workers=self.size, thread_name_prefix="workbench-api")
        # credentials are checked on their own threads, so a sign-in never waits behind a query
        self._auth_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="workbench-auth")
        self.auth: ApiAuth = api_authenticator(self.settings)

    async def identify(self, header: str | None, client: str) -> Identity:
        return await self.run_auth(lambda: self.auth.identify(header, client))

    async def run_auth(self, fn: Callable[[], T]) -> T:
        """Run a credential or impersonation check (catalog reads, audit writes) off the IOLoop."""
        return await IOLoop.current().run_in_executor(self._auth_executor, fn)

    def _new_session(self) -> Workbench:
        from workbench.lake.storage import Lake
        from workbench.session import Workbench

        return Workbench(Lake(self.lake_url, self.settings), self.settings)

    @contextmanager
    def session(self) -> Iterator[QueryRunner]:
        """A pooled session; handlers see only the QueryRunner protocol."""
        try:
            wb = self._pool.get_nowait()
        except queue.Empty:
            wb = self._new_session()
        try:
            yield wb
        finally:
            self._pool.put(wb)

    async def run(self, fn: Callable[[], T]) -> T:
        return await IOLoop.current().run_in_executor(self._executor, fn)

    def flush(self) -> None:
        """Wait until the idle sessions' query-log and audit rows are written (tests, shutdown)."""
        for wb in list(self._pool.queue):
            wb.flush()

    def close(self) -> None:
        self.flush()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._auth_executor.shutdown(wait=False, cancel_futures=True)
        while True:
            try:
                self._pool.get_nowait().close()
            except queue.Empty:
                break


class _Base(tornado.web.RequestHandler):
    backend: Backend
    #: handlers that serve data resolve the caller before anything else runs
    authenticated = False
    identity: Identity

    def initialize(self, backend: Backend) -> None:
        self.backend = backend

    async def prepare(self) -> None:
        if not self.authenticated:
            return
        try:
            self.identity = await self.backend.identify(self.request.headers.get("Authorization"), self._client())
        except WorkbenchError as e:
            if isinstance(e, AuthenticationError):
                self.set_header("WWW-Authenticate", 'Bearer realm="workbench"')
            self.write_error_body(e)

    def _client(self) -> str:
        return str(self.request.remote_ip or "unknown")

    async def acting_user(self, body: dict[str, Any], what: str, text: str) -> str:
        """The user whose policy applies: the caller, or ``as_user`` when an administrator asks."""
        if body.get("as_user") is None:
            return self.identity.name
        settings, identity, as_user = self.backend.settings, self.identity, body.get("as_user")
        return await self.backend.run_auth(lambda: act_as(settings, identity, as_user, what, text))

    def check_xsrf_cookie(self) -> None:  # a JSON API: no cookies, no XSRF
        return None

    def write_json(self, body: Any, status: int = 200) -> None:
        from workbench.cli.output import to_json

        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(to_json(body))

    def write_error_body(self, err: WorkbenchError) -> None:
        self.write_json({"error": err.to_dict()}, status_for(err))

    def json_body(self, required: str) -> dict[str, Any]:
        if len(self.request.body or b"") > MAX_BODY:
            raise DataError("request body too large", f"send at most {MAX_BODY} bytes")
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError as e:
            raise DataError(f"the request body is not JSON: {e}", 'send e.g. {"sql": "SELECT 1"}') from e
        if not isinstance(body, dict) or not isinstance(body.get(required), str) or not body[required].strip():
            raise DataError(f"missing {required!r} in the request body", f'send {{"{required}": "..."}}')
        return body


class MetricsHandler(_Base):
    def get(self) -> None:
        self.set_header("Content-Type", metrics.CONTENT_TYPE)
        self.finish(metrics.render())


class HealthHandler(_Base):
    async def get(self) -> None:
        def check() -> dict[str, Any]:
            from workbench.lake.watch import freshness

            report = freshness(self.backend.lake_url, settings=self.backend.settings)
            return {
                "status": "ok",
                "lake": report["lake"],
                "freshness_s": report["age_s"],
                "tables": sorted(report["tables"]),
            }

        try:
            body = await self.backend.run(check)
        except WorkbenchError as e:
            self.write_json({"status": "unavailable", "error": e.to_dict()}, 503)
            return
        self.write_json(body)


class SqlHandler(_Base):
    """POST {"sql", "engine", "as_user"?} -> the JSON of ``workbench sql --json``."""

    authenticated = True

    async def post(self) -> None:
        start = time.perf_counter()
        sql, user = "", self.identity.name
        try:
            body = self.json_body("sql")
            sql = body["sql"]
            user = await self.acting_user(body, "sql", sql)
        except WorkbenchError as e:
            record_rejected("sql", e, start)  # the pipeline never saw it
            self.write_error_body(e)
            return
        engine = str(body.get("engine") or "auto")

        def run() -> Any:
            with self.backend.session() as wb:
                return wb.sql(sql, engine=engine, user=user)

        try:  # the pipeline's record step logs and counts the statement, answered or not
            result = await self.backend.run(run)
        except WorkbenchError as e:
            self.write_error_body(e)
            return
        self.write_json(result.to_dict())


class AskHandler(_Base):
    """POST {"question", "session", "as_user"?} -> the Answer JSON of ``workbench ask --json``."""

    authenticated = True

    async def post(self) -> None:
        start = time.perf_counter()
        try:
            body = self.json_body("question")
            user = await self.acting_user(body, "ask", body["question"])
        except WorkbenchError as e:
            record_rejected("ask", e, start)
            self.write_error_body(e)
            return
        # conversations are per user: an impersonated one never continues the caller's own
        session = f"{user}:{body['session']}" if body.get("session") else None

        def run() -> Any:
            from workbench.assistant import ask

            with self.backend.session() as wb:
                return ask(wb, body["question"], session=session, user=user)

        try:  # the assistant's record step audits and counts the question
            answer = await self.backend.run(run)
        except WorkbenchError as e:
            record_rejected("ask", e, start)  # failed before the assistant had an answer
            self.write_error_body(e)
            return
        self.write_json(answer.to_dict())


def act_as(settings: Settings, identity: Identity, as_user: Any, what: str, text: str) -> str:
    """Check and audit an ``as_user`` request; returns the user whose policy applies.

    Only an ``all_access`` role may act as someone else. Both outcomes are audit rows under the
    caller's own name that name the other user, next to the router's rows under ``as_user``.
    """
    if as_user is None or as_user == identity.name:
        return identity.name
    if not isinstance(as_user, str) or not as_user.strip():
        raise DataError("as_user must be a user name", 'send e.g. {"as_user": "north_analyst"}')
    from workbench.security.policies import policy_for_user

    allowed = policy_for_user(identity.name, settings).all_access
    detail = json.dumps({"as_user": as_user, "method": identity.method, "credential": identity.credential})
    question, sql = (text, None) if what == "ask" else (None, text)
    catalog_for(settings).audit(
        identity.name,
        "impersonation" if allowed else "denied",
        route=f"api:{what}",
        detail=detail,
        question=question,
        sql=sql,
    )
    if not allowed:
        raise AccessDenied(
            f"{identity.name} may not act as another user",
            "only administrators (an all_access role in policies.yaml) may send as_user",
        )
    return as_user


def extra_patterns(
    lake: str | None = None, settings: Settings | None = None, sessions: int = 2, prefix: str = ""
) -> list[tuple[str, type[tornado.web.RequestHandler], dict[str, Any]]]:
    """Route tuples for ``pn.serve(..., extra_patterns=...)`` and :func:`make_app`."""
    backend = Backend(lake, settings, sessions)
    kw = {"backend": backend}
    p = prefix.rstrip("/")
    return [
        (rf"{p}/metrics", MetricsHandler, kw),
        (rf"{p}/healthz", HealthHandler, kw),
        (rf"{p}/api/sql", SqlHandler, kw),
        (rf"{p}/api/ask", AskHandler, kw),
    ]


def make_app(lake: str | None = None, settings: Settings | None = None, sessions: int = 2) -> tornado.web.Application:
    """The standalone API application (``workbench api``)."""
    patterns = extra_patterns(lake, settings, sessions)
    app = tornado.web.Application(patterns)  # type: ignore[arg-type]
    app.settings["workbench_backend"] = patterns[0][2]["backend"]
    return app
