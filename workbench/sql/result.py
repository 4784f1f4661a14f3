"""The result of one query, the same for the CLI, the Python API, the router and the cache."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd


@dataclass
class QueryResult:
    """Rows plus where they came from (engine, route, reason) and what they cost.

    ``route`` and ``reason`` are written by whoever chose the engine (the policy now, the
    router later: e.g. route="cache" or "rollup:<name>"), ``cached`` by the result cache.
    """

    df: pd.DataFrame
    engine: str
    sql: str
    route: str = ""
    reason: str = ""
    elapsed_ms: float = 0.0
    files_scanned: int = 0
    bytes_scanned: int = 0
    cached: bool = False
    truncated: bool = False
    explain: str | None = None
    executed_sql: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        return [str(c) for c in self.df.columns]

    @property
    def rows(self) -> list[list[Any]]:
        return [[_py(v) for v in row] for row in self.df.itertuples(index=False, name=None)]

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "columns": self.columns,
            "rows": self.rows,
            "engine": self.engine,
            "elapsed_ms": round(self.elapsed_ms, 3),
            "files_scanned": self.files_scanned,
            "bytes_scanned": self.bytes_scanned,
            "route": self.route,
            "reason": self.reason,
            "cached": self.cached,
            "sql": self.sql,
        }
        if self.details:  # estimated files/bytes/rows, cache age: why the route was taken
            body["details"] = {k: _py(v) if not isinstance(v, (list, dict)) else v for k, v in self.details.items()}
        if self.truncated:
            body["truncated"] = True
        if self.explain is not None:
            body["explain"] = self.explain
        return body


def _py(value: Any) -> Any:
    """Plain Python values (None for missing) so JSON and comparisons are engine-neutral."""
    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            return value.item()
        except (AttributeError, ValueError):
            return value
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value
