"""One error root for the whole workbench.

Every failure a user can hit is a :class:`WorkbenchError` carrying what failed (``message``)
and what to do about it (``hint``). Driver and library errors are translated at the boundary
with ``raise ... from e`` so the CLI, the Python API, the dashboard and the LLM repair loop
all see the same structured shape (:meth:`WorkbenchError.to_dict`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any


class WorkbenchError(Exception):
    """Root of every error the workbench raises on purpose."""

    #: machine-readable family name used in the JSON error shape
    kind = "workbench_error"
    #: process exit code used by the CLI
    exit_code = 1

    def __init__(self, message: str, hint: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint or ""
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """The one error shape of the JSON outputs: ``{"type", "message", "hint"}`` (+details)."""
        body: dict[str, Any] = {"type": self.kind, "message": self.message, "hint": self.hint}
        if self.details:
            body["details"] = {k: _jsonable(v) for k, v in self.details.items()}
        return body

    def __str__(self) -> str:
        return f"{self.message} (hint: {self.hint})" if self.hint else self.message


class ConfigError(WorkbenchError):
    """Settings are missing, contradictory or point at something that does not exist."""

    kind = "config_error"
    exit_code = 2


class DataError(WorkbenchError):
    """Input data is malformed: a missing column, an unreadable file, a wrong type."""

    kind = "data_error"
    exit_code = 3


class NotFoundError(WorkbenchError):
    """A name (table, column, metric, value, user) is unknown."""

    kind = "not_found"
    exit_code = 4


class QueryRefused(WorkbenchError):
    """SQL or a question was refused by the read-only guard, a policy or an engine."""

    kind = "query_refused"
    exit_code = 5


class UnsupportedQuery(QueryRefused):
    """An engine cannot run a construct correctly, so it refuses instead of answering wrongly."""

    kind = "unsupported_query"


class AccessDenied(QueryRefused):
    """The caller's access policy forbids what was asked."""

    kind = "access_denied"


class AuthenticationError(WorkbenchError):
    """A served surface could not tell who is asking: no, wrong, expired or revoked credentials."""

    kind = "unauthenticated"
    exit_code = 9


class RateLimited(AuthenticationError):
    """Too many failed sign-in attempts from one client or for one user; retry after a pause."""

    kind = "rate_limited"


class QueryFailed(WorkbenchError):
    """An engine accepted a query and failed while running it (bad column, timeout, ...)."""

    kind = "query_failed"
    exit_code = 6


class QueryTimeout(QueryFailed):
    """A query ran longer than the configured time limit and was cancelled."""

    kind = "query_timeout"


class ServiceUnavailable(WorkbenchError):
    """An external service (S3, Redis, PostgreSQL, the LLM endpoint, a scheduler) is down."""

    kind = "service_unavailable"
    exit_code = 7


class PlanningError(WorkbenchError):
    """The assistant could not turn a question into a query it trusts."""

    kind = "planning_error"
    exit_code = 8


#: the keys of the one JSON error shape; anything else goes under ``details``
ERROR_KEYS = ("type", "message", "hint")


def error_classes() -> dict[str, type[WorkbenchError]]:
    """Every error family by its JSON ``type`` (the root and all its subclasses)."""
    found: dict[str, type[WorkbenchError]] = {}
    pending: list[type[WorkbenchError]] = [WorkbenchError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.kind, cls)
        pending.extend(cls.__subclasses__())
    return found


def exit_code_for(kind: str | None, default: type[WorkbenchError] = WorkbenchError) -> int:
    """The CLI exit code of an error given as its JSON ``type`` (e.g. a failed answer's error).

    Derived from the classes, so a raised error and an error reported as data exit alike;
    an unknown type (a library error reported by the assistant) exits like ``default``.
    """
    return error_classes().get(kind or "", default).exit_code


def error_body(err: BaseException, **details: Any) -> dict[str, Any]:
    """The one error shape for any exception: ``{"type", "message", "hint"}`` (+ ``details``).

    A :class:`WorkbenchError` gives its own; anything else (reported as data, e.g. to the
    assistant's repair loop) is the root family, its class named under ``details``, so a
    client only ever sees the error types :func:`error_classes` lists.
    """
    if isinstance(err, WorkbenchError):
        body = err.to_dict()
    else:
        body = {
            "type": WorkbenchError.kind,
            "message": str(err),
            "hint": "",
            "details": {"exception": type(err).__name__},
        }
    if details:
        body["details"] = {**body.get("details", {}), **{k: _jsonable(v) for k, v in details.items()}}
    return body


def did_you_mean(name: str, candidates: Iterable[str], n: int = 3) -> str:
    """A "did you mean ...?" suffix for an unknown ``name`` (empty when nothing is close)."""
    pool = list(candidates)
    lowered = {c.lower(): c for c in pool}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.6)
    if not close:
        return ""
    return "did you mean " + " or ".join(repr(lowered[c]) for c in close) + "?"


def unknown_name(kind: str, name: str, candidates: Iterable[str]) -> NotFoundError:
    """Build the standard "unknown X" error with suggestions and the list of known names."""
    pool = sorted(set(candidates))
    suggestion = did_you_mean(name, pool)
    known = ", ".join(pool[:20]) + (" ..." if len(pool) > 20 else "")
    hint = suggestion or f"known {kind}s: {known}"
    return NotFoundError(f"unknown {kind} {name!r}", hint)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)
