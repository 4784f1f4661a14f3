"""Which engine answers a query when the caller says ``--engine auto`` (not access control).

Access control lives in :mod:`workbench.security.policies`; this module only picks where a
query runs. The choice is by capability and cost, never by an engine's name (ibis'
``has_operation``): the in-process engine answers unless the estimated bytes exceed
``settings.duckdb_max_bytes``; then the first engine that declares ``scale_out``, supports the
query and suits it (a cluster that could only gather the rows to one process does not)
takes it. The choice carries the route and the reason the user sees.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlglot import exp

from workbench.config import Settings
from workbench.sql.engines.base import Engine
from workbench.sql.scan import TableScan

#: the capability that makes an engine worth a large scan
SCALE_OUT = "scale_out"


@dataclass(frozen=True)
class EngineChoice:
    engine: str
    route: str
    reason: str


EngineFactory = Callable[[str], Engine]


def choose_engine(
    tree: exp.Expression,
    requested: str,
    engines: EngineFactory,
    names: Sequence[str],
    settings: Settings,
    estimated: int,
    scans: dict[str, TableScan] | None = None,
) -> EngineChoice:
    """Pick the engine for ``tree``; an explicit request is honoured as is.

    ``names`` lists the engines in order of preference, the first being the in-process default;
    ``estimated`` is the bytes to scan after pruning (catalog statistics or the Delta log).
    Engines are created only when a large scan needs one that scales out.
    """
    if requested != "auto":
        return EngineChoice(requested, requested, f"engine {requested} requested")
    default = names[0]
    if estimated <= settings.duckdb_max_bytes:
        return EngineChoice(default, default, f"{estimated} bytes to scan <= duckdb_max_bytes; in-process is fastest")
    reasons: list[str] = []
    for name in names[1:]:
        candidate = engines(name)
        if SCALE_OUT not in candidate.capabilities:
            continue
        why_not = candidate.supports(tree) or candidate.suits(tree, scans or {})
        if why_not is None:
            reason = f"{estimated} bytes to scan > duckdb_max_bytes={settings.duckdb_max_bytes}"
            return EngineChoice(candidate.name, candidate.name, reason)
        reasons.append(why_not)
    why = "; ".join(reasons) or "no engine scales out"
    return EngineChoice(default, default, f"large scan ({estimated} bytes) but the cluster engine cannot: {why}")
