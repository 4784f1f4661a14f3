"""The SQL behind every dashboard and widget view, built as sqlglot trees from a :class:`Filters`.

Why sqlglot and not f-strings: filter values come from the browser, so they are always
literals in a syntax tree (quoted by sqlglot), never pasted text (DESIGN.md: no SQL by string
concatenation). Why these shapes: every query groups by plain columns (year, month, region,
category, channel, product_id, store_id) and filters with plain ``col IN (...)`` /
``BETWEEN`` predicates, so the partition pruner sees them and the router can answer them from
the daily/monthly rollups instead of scanning the fact table. Ratios (margin, AOV) are
derived from the summed measures in pandas, because a ratio cannot be re-aggregated from a
rollup but its numerator and denominator can.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

from sqlglot import exp

#: the summed measures every view selects; KPIs and charts derive ratios from them
MEASURES: tuple[tuple[str, str], ...] = (
    ("revenue", "SUM(revenue)"),
    ("profit", "SUM(profit)"),
    ("transactions", "COUNT(*)"),
)

#: the categorical filters of the dashboard (plain columns of ``sales``)
FILTER_COLUMNS = ("region", "category", "channel")


@dataclass(frozen=True)
class Filters:
    """What the analyst selected: an inclusive date range and value lists (empty = all)."""

    start: dt.date | None = None
    end: dt.date | None = None
    region: tuple[str, ...] = ()
    category: tuple[str, ...] = ()
    channel: tuple[str, ...] = ()

    def values(self, column: str) -> tuple[str, ...]:
        return tuple(getattr(self, column))

    def previous(self) -> Filters | None:
        """The period of equal length just before this one (None without a full date range)."""
        if self.start is None or self.end is None:
            return None
        days = (self.end - self.start).days + 1
        prev_end = self.start - dt.timedelta(days=1)
        return replace(self, start=prev_end - dt.timedelta(days=days - 1), end=prev_end)

    def describe(self) -> str:
        """The filter state in words (shown next to the KPIs and in test output)."""
        parts = []
        if self.start or self.end:
            parts.append(f"{self.start or '…'} .. {self.end or '…'}")
        for col in FILTER_COLUMNS:
            vals = self.values(col)
            if vals:
                parts.append(f"{col}: {', '.join(vals)}")
        return "; ".join(parts) or "all data"


@dataclass
class ViewQuery:
    """One query of a view: its SQL (DuckDB dialect, the router's input) and the tree."""

    name: str
    expression: exp.Select
    sql: str = field(init=False)

    def __post_init__(self) -> None:
        self.sql = self.expression.sql(dialect="duckdb")


def where(filters: Filters) -> list[exp.Expression]:
    """Plain predicates: the period (see :func:`period`) and ``col IN (...)`` lists."""
    preds = period(filters.start, filters.end)
    for col in FILTER_COLUMNS:
        vals = filters.values(col)
        if len(vals) == 1:
            preds.append(exp.EQ(this=exp.column(col), expression=exp.Literal.string(vals[0])))
        elif vals:
            preds.append(exp.In(this=exp.column(col), expressions=[exp.Literal.string(v) for v in vals]))
    return preds


def period(start: dt.date | None, end: dt.date | None) -> list[exp.Expression]:
    """The date range as predicates the pruner and the rollups understand.

    Whole months (the presets: a year, the last 3 or 12 months) become ``year``/``month``
    predicates, which the monthly rollups (by store, by product) can answer too; any other
    range becomes ``date BETWEEN`` plus year bounds for partition pruning.
    """
    year, month, date = exp.column("year"), exp.column("month"), exp.column("date")
    if start and end and start.day == 1 and (end + dt.timedelta(days=1)).day == 1:
        if start.year == end.year:
            preds: list[exp.Expression] = [exp.EQ(this=year, expression=_num(start.year))]
            if (start.month, end.month) != (1, 12):
                preds.append(_between(month, start.month, end.month))
            return preds
        preds = [_between(year, start.year, end.year)]
        if start.month != 1:
            preds.append(
                exp.paren(
                    exp.or_(
                        exp.GT(this=year.copy(), expression=_num(start.year)),
                        exp.GTE(this=month.copy(), expression=_num(start.month)),
                    )
                )
            )
        if end.month != 12:
            preds.append(
                exp.paren(
                    exp.or_(
                        exp.LT(this=year.copy(), expression=_num(end.year)),
                        exp.LTE(this=month.copy(), expression=_num(end.month)),
                    )
                )
            )
        return preds
    if start and end:
        first = (
            exp.EQ(this=year, expression=_num(start.year))
            if start.year == end.year
            else _between(year, start.year, end.year)
        )
        return [first, exp.Between(this=date, low=_date(start), high=_date(end))]
    if start:
        return [exp.GTE(this=year, expression=_num(start.year)), exp.GTE(this=date, expression=_date(start))]
    if end:
        return [exp.LTE(this=year, expression=_num(end.year)), exp.LTE(this=date, expression=_date(end))]
    return []


def grouped(
    name: str,
    filters: Filters,
    by: tuple[str, ...] = (),
    order_by: str | None = None,
    limit: int | None = None,
) -> ViewQuery:
    """``SELECT <by>, SUM(revenue) AS revenue, SUM(profit) AS profit, COUNT(*) AS transactions``.

    ``by`` are plain column names, never expressions.
    """
    cols: list[exp.Expression] = [exp.column(c) for c in by]
    cols += [exp.alias_(exp.maybe_parse(sql, dialect="duckdb"), alias) for alias, sql in MEASURES]
    select = exp.select(*cols).from_("sales")
    preds = where(filters)
    if preds:
        select = select.where(exp.and_(*preds))
    if by:
        select = select.group_by(*[exp.column(c) for c in by])
    if order_by:
        select = select.order_by(exp.Ordered(this=exp.column(order_by), desc=True))
    elif by:
        select = select.order_by(*[exp.column(c) for c in by])
    if limit:
        select = select.limit(limit)
    return ViewQuery(name, select)


def dashboard_queries(filters: Filters, top_n: int = 10) -> list[ViewQuery]:
    """Every query one dashboard refresh runs, in the order they are run."""
    queries = [
        grouped("trend", filters, ("year", "month")),
        grouped("mix", filters, ("region", "category", "channel")),
        grouped("top_products", filters, ("product_id",), order_by="revenue", limit=top_n),
        grouped("top_stores", filters, ("store_id",), order_by="revenue", limit=top_n),
    ]
    prev = filters.previous()
    if prev is not None:
        queries.append(grouped("previous", prev))
    return queries


def bounds_query() -> ViewQuery:
    """First and last day of sales data (the default date range of the filters)."""
    select = exp.select(
        exp.alias_(exp.Min(this=exp.column("date")), "first_date"),
        exp.alias_(exp.Max(this=exp.column("date")), "last_date"),
    ).from_("sales")
    return ViewQuery("bounds", select)


def values_query(column: str) -> ViewQuery:
    """Distinct values of one filter column (the options of its selector)."""
    if column not in FILTER_COLUMNS:
        raise ValueError(f"not a filter column: {column}")
    select = exp.select(exp.column(column)).distinct().from_("sales").order_by(exp.column(column))
    return ViewQuery(f"values:{column}", select)


def names_query(table: str, key: str, name: str, ids: list[str]) -> ViewQuery:
    """Display names of a few products or stores (looked up after the top-N by id)."""
    select = (
        exp.select(exp.column(key), exp.column(name))
        .from_(table)
        .where(exp.In(this=exp.column(key), expressions=[exp.Literal.string(i) for i in ids] or [exp.null()]))
    )
    return ViewQuery(f"names:{table}", select)


def _num(n: int) -> exp.Expression:
    return exp.Literal.number(n)


def _between(col: exp.Expression, low: int, high: int) -> exp.Expression:
    if low == high:
        return exp.EQ(this=col, expression=_num(low))
    return exp.Between(this=col, low=_num(low), high=_num(high))


def _date(d: dt.date) -> exp.Expression:
    return exp.cast(exp.Literal.string(d.isoformat()), "DATE")
