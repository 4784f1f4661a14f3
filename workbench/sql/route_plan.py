"""A routing decision: the tree to run, the engine and route, the files, the estimate, the reason.

Made by the planning steps of :mod:`workbench.sql.pipeline` (or the rollup rewrite of the
:class:`~workbench.sql.router.Router`) and memoised per statement and table versions. Not the
assistant's ``Plan`` (a question turned into a query).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from sqlglot import exp

from workbench.sql.result import QueryResult
from workbench.sql.rollup_rewrite import RollupMatch
from workbench.sql.scan import TableScan


@dataclass
class Estimate:
    """What a plan is expected to read, and where the numbers came from."""

    files: int = 0
    bytes: int = 0
    rows: int | None = None
    source: str = "delta log"

    def text(self) -> str:
        rows = f", ~{self.rows:,} rows" if self.rows is not None else ""
        return f"estimated {self.files} files, {_size(self.bytes)}{rows} after pruning ({self.source})"


@dataclass
class RoutePlan:
    """One routing decision: the tree to run, where, over which files, and why.

    (Not the assistant's ``Plan``, which is a question turned into a query.)
    """

    tree: exp.Expression
    scans: dict[str, TableScan]
    engine: str
    route: str
    reason: str
    estimate: Estimate = field(default_factory=Estimate)
    rollup: RollupMatch | None = None
    #: per-engine prepared tree and rendered SQL: plans are memoised, so a repeated query
    #: skips sqlglot's copy-and-render work (milliseconds of the budget against plain DuckDB)
    prepared: dict[str, tuple[exp.Expression, str]] = field(default_factory=dict, repr=False, compare=False)

    def result(self, df: pd.DataFrame, engine: str, sql: str, executed_sql: str) -> QueryResult:
        """The result of running this plan, with what it read and what was estimated."""
        result = QueryResult(
            df=df,
            engine=engine,
            sql=sql,
            route=self.route,
            reason=self.reason,
            files_scanned=sum(len(s.files) for s in self.scans.values()),
            bytes_scanned=sum(s.bytes for s in self.scans.values()),
            executed_sql=executed_sql,
        )
        result.details.update(
            {
                "estimated_files": self.estimate.files,
                "estimated_bytes": self.estimate.bytes,
                "estimated_rows": self.estimate.rows,
                "estimate_source": self.estimate.source,
            }
        )
        return result

    def explain_header(self, engine: str, result: QueryResult) -> str:
        """What ``--explain`` shows above the engine's own plan."""
        lines = [
            f"route: {self.route}",
            f"engine: {engine}",
            f"reason: {self.reason}",
            f"estimated: {self.estimate.files} files, {self.estimate.bytes} bytes ({self.estimate.source})",
            f"scans: {result.files_scanned} files, {result.bytes_scanned} bytes",
            f"sql: {result.executed_sql}",
            "",
        ]
        return "\n".join(lines)


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
