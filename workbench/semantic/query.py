"""The semantic query: what a planner (LLM or offline parser) produces, and the compiler consumes.

It names metrics and dimensions of the semantic model instead of columns, so every planner
gets the same metric definitions, joins and partition-friendly filters from one compiler
(:mod:`workbench.semantic.compiler`). Keep it small and additive: other planners build on it.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

#: a filter value: strings for categorical dimensions, numbers for year/month/discount, dates
Value = str | int | float | dt.date

FilterOp = Literal["=", "!=", "in", "not in", ">", ">=", "<", "<=", "between"]


class Filter(BaseModel):
    """``dimension op values``; ``in``/``=`` with several values becomes ``IN (...)``."""

    dimension: str
    op: FilterOp = "in"
    values: list[Value] = Field(default_factory=list)

    @field_validator("values", mode="before")
    @classmethod
    def _listify(cls, v: object) -> object:
        if v is None:
            return []
        return v if isinstance(v, (list, tuple)) else [v]

    @model_validator(mode="after")
    def _arity(self) -> Filter:
        if self.op == "between" and len(self.values) != 2:
            raise ValueError("a 'between' filter needs exactly two values")
        if not self.values:
            raise ValueError(f"filter on {self.dimension!r} has no values")
        return self


class TimeRange(BaseModel):
    """A period: either explicit ``start``/``end`` dates (inclusive) or calendar parts.

    Calendar parts (``year`` with optional ``quarter`` or ``month``) compile to plain
    ``year = Y AND month BETWEEN a AND b`` predicates the partition pruner understands;
    ``end_year`` makes a span of whole years (``year BETWEEN year AND end_year``).
    """

    start: dt.date | None = None
    end: dt.date | None = None
    year: int | None = None
    end_year: int | None = None
    quarter: int | None = Field(default=None, ge=1, le=4)
    month: int | None = Field(default=None, ge=1, le=12)
    #: human text of the period, e.g. "Q4 2023" or "last 3 months (2024-10-01 .. 2024-12-31)"
    label: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> TimeRange:
        if (self.quarter or self.month) and self.year is None:
            raise ValueError("quarter/month need a year")
        if self.quarter and self.month:
            raise ValueError("give a quarter or a month, not both")
        if self.year is None and self.start is None and self.end is None:
            raise ValueError("an empty time range: give start/end or a year")
        return self

    def bounds(self) -> tuple[dt.date, dt.date]:
        """First and last day of the period (inclusive)."""
        if self.year is not None:
            if self.month:
                first = dt.date(self.year, self.month, 1)
                return first, _month_end(self.year, self.month)
            if self.quarter:
                m0 = 3 * (self.quarter - 1) + 1
                return dt.date(self.year, m0, 1), _month_end(self.year, m0 + 2)
            return dt.date(self.year, 1, 1), dt.date(self.end_year or self.year, 12, 31)
        start = self.start or dt.date(1900, 1, 1)
        end = self.end or dt.date(9999, 12, 31)
        return start, end

    def describe(self) -> str:
        """The period as a user reads it (stated in every answer)."""
        if self.label:
            return self.label
        if self.year is not None:
            if self.month:
                return dt.date(self.year, self.month, 1).strftime("%B %Y")
            if self.quarter:
                return f"Q{self.quarter} {self.year}"
            if self.end_year and self.end_year != self.year:
                return f"{self.year}-{self.end_year}"
            return str(self.year)
        start, end = self.bounds()
        return f"{start.isoformat()} .. {end.isoformat()}"


class Comparison(BaseModel):
    """Compare a metric across two periods or two members of a dimension.

    * ``yoy``: the query's time range vs the same period one year earlier;
    * ``mom``: the query's month vs the month before;
    * ``qoq``: the query's quarter vs the quarter before;
    * ``vs``: ``members`` = [base, other] of ``dimension`` (``year`` members give growth
      from base to other; members of a categorical dimension give one row each).
    """

    kind: Literal["yoy", "mom", "qoq", "vs"]
    dimension: str | None = None
    members: list[Value] = Field(default_factory=list)

    @model_validator(mode="after")
    def _members(self) -> Comparison:
        if self.kind == "vs" and (self.dimension is None or len(self.members) != 2):
            raise ValueError("a 'vs' comparison needs a dimension and exactly two members")
        return self


class MetricFilter(BaseModel):
    """A condition on an aggregated metric (SQL ``HAVING``): "which products lost money" is profit < 0."""

    metric: str
    op: Literal["=", "!=", ">", ">=", "<", "<="] = "<"
    value: float = 0.0


class OrderBy(BaseModel):
    """Sort by a metric or dimension of the query."""

    by: str
    direction: Literal["asc", "desc"] = "desc"


class SemanticQuery(BaseModel):
    """Metrics by dimensions, filtered, over a period, optionally compared, ordered and limited."""

    metrics: list[str] = Field(min_length=1)
    dimensions: list[str] = Field(default_factory=list)
    filters: list[Filter] = Field(default_factory=list)
    time_range: TimeRange | None = None
    comparison: Comparison | None = None
    #: "share of <metric> that came from <filter>": the filter applies to the numerator only
    share: Filter | None = None
    #: "share of <metric> by <dimension>": each row's percent of the total over every row of the answer
    share_of_total: bool = False
    #: conditions on the aggregated metrics of each row ("lost money": profit < 0)
    having: list[MetricFilter] = Field(default_factory=list)
    #: a ratio per entity: every metric divided by this metric ("revenue per order": per = transactions)
    per: str | None = None
    order: list[OrderBy] = Field(default_factory=list)
    limit: int | None = Field(default=None, ge=1)

    def describe_period(self) -> str:
        """The resolved period in words ("all data" when none was given).

        Comparisons name both periods ("Q4 2024 vs Q4 2023") so an answer always states
        what it compared.
        """
        tr, c = self.time_range, self.comparison
        if c is not None and c.kind == "vs" and c.dimension == "year" and len(c.members) == 2:
            return f"{c.members[1]} vs {c.members[0]}"
        if tr is None:
            years = [f for f in self.filters if f.dimension == "year" and f.op in ("=", "in")]
            return ", ".join(str(v) for v in years[0].values) if years else "all data"
        current = tr.describe()
        if c is not None and tr.year is not None and c.kind == "yoy":
            return f"{current} vs {tr.model_copy(update={'year': tr.year - 1, 'label': None}).describe()}"
        if c is not None and tr.year is not None and c.kind == "mom" and tr.month:
            y, m = previous_month(tr.year, tr.month)
            return f"{current} vs {dt.date(y, m, 1):%B %Y}"
        if c is not None and tr.year is not None and c.kind == "qoq" and tr.quarter:
            y, q = previous_quarter(tr.year, tr.quarter)
            return f"{current} vs Q{q} {y}"
        return current


def previous_month(year: int, month: int) -> tuple[int, int]:
    """The month before ``month`` of ``year`` (January 2024 -> December 2023)."""
    return (year, month - 1) if month > 1 else (year - 1, 12)


def previous_quarter(year: int, quarter: int) -> tuple[int, int]:
    """The quarter before ``quarter`` of ``year`` (Q1 2024 -> Q4 2023)."""
    return (year, quarter - 1) if quarter > 1 else (year - 1, 4)


def _month_end(year: int, month: int) -> dt.date:
    if month == 12:
        return dt.date(year, 12, 31)
    return dt.date(year, month + 1, 1) - dt.timedelta(days=1)
