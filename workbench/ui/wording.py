"""Routes and timings said for a person ("answered from cache in 0.2 s"), not in internal words.

The router's route names (``cache``, ``rollup:monthly_region_category_channel``, ``duckdb``,
``dask``) are right for logs and JSON; a status line in the dashboard or under an answer is
read by an analyst, who wants to know whether the number came from a summary or a scan and
how long it took.
"""

from __future__ import annotations

from collections.abc import Iterable


def duration(ms: float | None) -> str:
    """0.2 s / 12 ms / 3.4 s: seconds from a tenth of one, milliseconds below."""
    if ms is None:
        return ""
    return f"{ms:.0f} ms" if ms < 100 else f"{ms / 1000:.1f} s"


def source(route: str | None, cached: bool = False) -> str:
    """Where an answer came from: "from cache", "from a pre-computed monthly summary", ..."""
    name = (route or "").strip()
    if cached or name == "cache" or name.startswith("cache"):
        return "from cache"
    if name.startswith("rollup:"):
        return f"from a pre-computed {_rollup(name.split(':', 1)[1])}"
    if name == "dask" or name.startswith("dask"):
        return "by scanning the lake on the Dask cluster"
    if name == "duckdb" or name.startswith("duckdb"):
        return "by scanning the lake"
    return f"by {name}" if name else ""


def _rollup(name: str) -> str:
    """``monthly_region_category_channel`` -> "monthly summary by region, category and channel"."""
    words = name.split("_")
    grain = words[0] if words and words[0] in ("daily", "weekly", "monthly", "yearly") else ""
    dims = [w for w in words[1:] if w not in ("x", "by")] if grain else [w for w in words if w not in ("x", "by")]
    head = f"{grain} summary" if grain else "summary"
    if not dims:
        return head
    listed = dims[0] if len(dims) == 1 else ", ".join(dims[:-1]) + f" and {dims[-1]}"
    return f"{head} by {listed}"


def answered(route: str | None, ms: float | None, cached: bool = False) -> str:
    """The status line of one answer: "answered from cache in 0.2 s"."""
    where = source(route, cached)
    took = duration(ms)
    return "answered" + (f" {where}" if where else "") + (f" in {took}" if took else "")


def refreshed(routes: Iterable[str], queries: int, ms: float | None) -> str:
    """The dashboard's refresh line: "5 queries answered from pre-computed summaries in 0.3 s"."""
    kinds = sorted({source(r) for r in routes if r})
    if kinds and all(k.startswith("from a pre-computed") for k in kinds):
        where = "from pre-computed summaries" if len(kinds) > 1 else kinds[0]
    elif kinds:
        where = "; ".join(kinds)
    else:
        where = ""
    took = duration(ms)
    noun = "query" if queries == 1 else "queries"
    return f"{queries} {noun} answered" + (f" {where}" if where else "") + (f" in {took}" if took else "")
