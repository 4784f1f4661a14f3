"""Extra HTTP routes served next to the dashboard (the extension point for ``/metrics``).

``workbench serve`` mounts every route registered here, the same way a built-in one is
mounted (STYLE.md: built-in features use the extension hooks). A metrics module adds its
Prometheus handler with ``add_route(r"/metrics", MetricsHandler)`` before the server starts.
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


def routes() -> list[Route]:
    """The routes to mount: the built-in health check plus everything registered."""
    found = list(_ROUTES)
    if not any(r[0] == r"/healthz" for r in found):
        found.insert(0, (r"/healthz", HealthHandler, {}))
    _add_metrics(found)
    return found


def _add_metrics(found: list[Route]) -> None:
    """Mount ``workbench.metrics`` (another engineer's module) when it provides a handler."""
    if any(r[0] == r"/metrics" for r in found):
        return
    try:
        from workbench import metrics  # type: ignore[attr-defined]
    except ImportError:
        return
    handler = getattr(metrics, "MetricsHandler", None)
    if isinstance(handler, type) and issubclass(handler, RequestHandler):
        found.append((r"/metrics", handler, {}))
