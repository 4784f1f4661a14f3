"""Extra HTTP routes served next to the dashboard (the extension point for ``/metrics`` and more).

``workbench serve`` mounts every route registered here with :func:`add_route`, plus the
product's HTTP API when present, the same way (STYLE.md: built-in features use the
extension hooks).
"""

from __future__ import annotations

from typing import Any

from tornado.web import RequestHandler

#: (url pattern, tornado handler class, handler kwargs)
Route = tuple[str, type[RequestHandler], dict[str, Any]]

_ROUTES: list[Route] = []


class HealthHandler(RequestHandler):
    """``GET /healthz`` -> ``ok``: lets scripts and tests wait for the server to listen."""

    def get(self) -> None:
        self.set_header("Content-Type", "text/plain")
        self.write("ok")


def add_route(pattern: str, handler: type[RequestHandler], kwargs: dict[str, Any] | None = None) -> None:
    """Register a tornado handler for ``pattern`` (replaces an earlier one on the same pattern)."""
    global _ROUTES
    _ROUTES = [r for r in _ROUTES if r[0] != pattern]
    _ROUTES.append((pattern, handler, kwargs or {}))


def routes(lake: str | None = None) -> list[Route]:
    """The routes to mount: registered ones, the product's HTTP API, and a health check.

    The API (``/metrics``, ``/healthz``, ``/api/sql``, ``/api/ask``) comes from
    :mod:`workbench.observability.http` when it is installed; a route registered here with
    :func:`add_route` wins over one of the same pattern.
    """
    found = list(_ROUTES)
    try:
        from workbench.observability.http import extra_patterns
    except ImportError:
        extra: list[Route] = []
    else:
        extra = list(extra_patterns(lake=lake))
    taken = {r[0] for r in found}
    found += [r for r in extra if r[0] not in taken]
    if not any(r[0] == r"/healthz" for r in found):
        found.insert(0, (r"/healthz", HealthHandler, {}))
    return found
