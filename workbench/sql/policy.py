"""Which engine answers a query when the caller says ``--engine auto``.

A small replaceable function so the router can extend it (cache, rollups) without touching
the engines: DuckDB unless the estimated bytes exceed ``settings.duckdb_max_bytes`` and the
cluster engine supports the query. It returns the choice with a route and a reason the user
sees in the result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlglot import exp

from workbench.config import Settings
from workbench.sql.engines.base import Engine
from workbench.sql.scan import TableScan


@dataclass(frozen=True)
class Choice:
    engine: str
    route: str
    reason: str


EngineFactory = Callable[[str], Engine]


def choose_engine(
    tree: exp.Expression,
    scans: dict[str, TableScan],
    requested: str,
    engines: EngineFactory,
    settings: Settings,
    estimated: int | None = None,
) -> Choice:
    """Pick ``duckdb`` or ``dask`` for ``tree``; an explicit request is honoured as is.

    ``estimated``: bytes to scan after pruning (the router passes the catalog estimate);
    default: the bytes of the pruned Delta file lists.
    """
    if estimated is None:
        estimated = sum(s.bytes for s in scans.values())
    if requested != "auto":
        return Choice(requested, requested, f"engine {requested} requested")
    if estimated > settings.duckdb_max_bytes:
        why_not = engines("dask").supports(tree)
        if why_not is None:
            return Choice("dask", "dask", f"{estimated} bytes to scan > duckdb_max_bytes={settings.duckdb_max_bytes}")
        return Choice("duckdb", "duckdb", f"large scan ({estimated} bytes) but the cluster engine cannot: {why_not}")
    return Choice("duckdb", "duckdb", f"{estimated} bytes to scan <= duckdb_max_bytes; in-process is fastest")
