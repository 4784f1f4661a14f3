"""Query corpora shared by the SQL tests (and the rollup engineer's differential tests)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
DEV_QUESTIONS = Path(__file__).resolve().parents[2] / "questions" / "questions-dev.jsonl"


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def analyst_queries() -> list[dict[str, Any]]:
    """The analyst corpus: windows, CTEs, subqueries, CASE, date parts, dask-sql's wrong constructs."""
    return load(HERE / "analyst_queries.jsonl")


def dev_queries() -> list[dict[str, Any]]:
    """questions/questions-dev.jsonl reference SQL (shipped in the repository)."""
    return load(DEV_QUESTIONS) if DEV_QUESTIONS.exists() else []


def _cell(value: Any) -> Any:
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if hasattr(value, "hour") and callable(getattr(value, "date", None)) and value.hour == value.minute == 0:
        value = value.date()
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        f = float(value)
        if math.isnan(f):
            return None
        return float(f"{f:.9g}")
    return value


def normalise(rows: list[list[Any]], compare: str) -> list[tuple[Any, ...]]:
    """Rows comparable across engines: numbers to 9 significant digits, sets sorted."""
    out = [tuple(_cell(v) for v in row) for row in rows]
    if compare == "ordered":
        return out
    return sorted(out, key=repr)
