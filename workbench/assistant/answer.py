"""The answer object every surface shows: narrative, table, chart, SQL, sources, cost.

One shape for the CLI (``workbench ask --json``), the Python API, the notebook widget and the
dashboard; ``to_dict()`` is the JSON contract. A chart is a small spec (kind, x, y, title)
that hvplot renders; it is chosen from what the result holds, not from the question text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from workbench.assistant.retrieval.index import Source

TIME_COLUMNS = ("date", "week", "month", "quarter", "year")

Status = Literal["ok", "refused", "failed"]


@dataclass
class Answer:
    """What the assistant says about one question."""

    question: str
    answer: str
    #: the plan read back in one sentence ("Top 3 regions by profit, 2024, highest first")
    interpretation: str = ""
    sql: str | None = None
    semantic_query: dict[str, Any] | None = None
    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    chart: dict[str, Any] | None = None
    sources: list[Source] = field(default_factory=list)
    route: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    tokens: dict[str, Any] = field(default_factory=dict)
    cost_usd: float = 0.0
    cached: bool = False
    period: str = ""
    planner: str = ""
    notes: list[str] = field(default_factory=list)
    session: str | None = None
    status: Status = "ok"
    error: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def df(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=self.columns)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "interpretation": self.interpretation,
            "sql": self.sql,
            "semantic_query": self.semantic_query,
            "columns": self.columns,
            "rows": self.rows,
            "chart": self.chart,
            "sources": [s.to_dict() for s in self.sources],
            "route": self.route,
            "timings": {k: round(v, 2) for k, v in self.timings.items()},
            "tokens": self.tokens,
            "cost_usd": round(self.cost_usd, 6),
            "cached": self.cached,
            "period": self.period,
            "planner": self.planner,
            "notes": self.notes,
            "session": self.session,
            "status": self.status,
            "error": self.error,
        }

    def _repr_markdown_(self) -> str:  # notebooks
        lines = [f"**{self.question}**", ""]
        if self.interpretation:
            lines += [f"*Answered: {self.interpretation}*", ""]
        lines.append(self.answer)
        if self.sql:
            lines += ["", "```sql", self.sql, "```"]
        return "\n".join(lines)


def chart_spec(columns: list[str], df: pd.DataFrame, title: str) -> dict[str, Any] | None:
    """line over a time column, bar over one category, table otherwise; None for no rows."""
    if df.empty or not columns:
        return None
    numeric = [c for c in columns if pd.api.types.is_numeric_dtype(df[c]) and c not in TIME_COLUMNS]
    time_cols = [c for c in columns if c in TIME_COLUMNS]
    labels = [c for c in columns if c not in numeric and c not in time_cols]
    if not numeric or len(df) == 1:
        return {"kind": "table", "x": None, "y": numeric[0] if numeric else None, "title": title}
    y = numeric[0]
    finest = next((c for c in reversed(TIME_COLUMNS) if c in time_cols), None)
    for grain in ("date", "week", "month", "quarter"):
        if grain in time_cols:
            finest = grain
            break
    if finest and len(df) > 2:
        spec: dict[str, Any] = {"kind": "line", "x": finest, "y": y, "title": title}
        others = [c for c in time_cols if c != finest] + labels
        if others:
            spec["by"] = others[0]
        return spec
    if labels or time_cols:
        spec = {"kind": "bar", "x": (labels or time_cols)[0], "y": y, "title": title}
        if len(labels) > 1:
            spec["by"] = labels[1]
        return spec
    return {"kind": "table", "x": None, "y": y, "title": title}
