"""Running the view queries through the workbench and turning their rows into KPIs and frames.

Kept apart from Panel so the numbers a dashboard shows can be tested (and reused by the
notebook widgets) without a browser: :func:`load_view` returns plain pandas frames and a
:class:`Kpi` list. Every query goes through ``Workbench.sql`` (guard, policies, router), so
a dashboard never reads the lake behind the router's back.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from workbench.formatting import money
from workbench.ui.queries import (
    FILTER_COLUMNS,
    Filters,
    ViewQuery,
    bounds_query,
    dashboard_queries,
    names_query,
    values_query,
)

if TYPE_CHECKING:
    from workbench.runner import QueryRunner

#: KPI name -> (label, format)
KPI_FORMATS: dict[str, tuple[str, str]] = {
    "revenue": ("Revenue", "currency"),
    "profit": ("Profit", "currency"),
    "margin": ("Margin", "percent"),
    "transactions": ("Transactions", "count"),
    "aov": ("Avg order value", "currency"),
}


@dataclass
class Kpi:
    """One KPI card: value now, value in the previous period of equal length, change."""

    name: str
    value: float | None
    previous: float | None = None

    @property
    def label(self) -> str:
        return KPI_FORMATS[self.name][0]

    @property
    def change_pct(self) -> float | None:
        """Relative change (percentage points for the margin, which is already a percent)."""
        if self.value is None or self.previous is None:
            return None
        if self.name == "margin":
            return self.value - self.previous
        if self.previous == 0:
            return None
        return (self.value - self.previous) / abs(self.previous) * 100

    def text(self) -> str:
        return format_value(self.value, KPI_FORMATS[self.name][1])

    def change_text(self) -> str:
        change = self.change_pct
        if change is None:
            return "no previous period"
        unit = " pp" if self.name == "margin" else "%"
        arrow = "▲" if change > 0 else ("▼" if change < 0 else "■")
        return f"{arrow} {change:+.1f}{unit} vs previous period"


@dataclass
class ViewData:
    """Everything one dashboard refresh shows, plus how long each query took."""

    filters: Filters
    kpis: list[Kpi]
    trend: pd.DataFrame
    mix: pd.DataFrame
    top_products: pd.DataFrame
    top_stores: pd.DataFrame
    timings_ms: dict[str, float] = field(default_factory=dict)
    routes: dict[str, str] = field(default_factory=dict)
    sql: dict[str, str] = field(default_factory=dict)

    def breakdown(self, column: str) -> pd.DataFrame:
        """Revenue/profit/transactions by one of region, category, channel (from ``mix``)."""
        if self.mix.empty:
            return pd.DataFrame(columns=[column, "revenue", "profit", "transactions"])
        out = self.mix.groupby(column, as_index=False)[["revenue", "profit", "transactions"]].sum()
        return out.sort_values("revenue", ascending=False).reset_index(drop=True)


def format_value(value: float | None, fmt: str) -> str:
    """Short human text of a KPI value ($1.23M, 37.2%, 12,345)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if fmt == "percent":
        return f"{value:.1f}%"
    if fmt == "count":
        return f"{value:,.0f}"
    return money(value)


def kpis_from_totals(current: dict[str, float], previous: dict[str, float] | None) -> list[Kpi]:
    """The five KPI cards from summed revenue, profit and transaction counts."""

    def derive(t: dict[str, float] | None) -> dict[str, float | None]:
        if t is None:
            return dict.fromkeys(KPI_FORMATS)
        revenue, profit, n = t.get("revenue") or 0.0, t.get("profit") or 0.0, t.get("transactions") or 0
        return {
            "revenue": revenue,
            "profit": profit,
            "margin": profit / revenue * 100 if revenue else None,
            "transactions": float(n),
            "aov": revenue / n if n else None,
        }

    now, before = derive(current), derive(previous)
    return [Kpi(name, now[name], before[name]) for name in KPI_FORMATS]


def run(wb: QueryRunner, query: ViewQuery, data: ViewData | None = None, user: str | None = None) -> pd.DataFrame:
    """Run one view query through the workbench (router, ``user``'s policy); record its time and route."""
    start = time.perf_counter()
    result = wb.sql(query.sql, user=user)
    if data is not None:
        data.timings_ms[query.name] = (time.perf_counter() - start) * 1000
        data.routes[query.name] = str(getattr(result, "route", "") or getattr(result, "engine", ""))
        data.sql[query.name] = query.sql
    return result.df


def load_view(
    wb: QueryRunner, filters: Filters, names: NameLookup | None = None, top_n: int = 10, user: str | None = None
) -> ViewData:
    """Run the dashboard's queries for ``filters`` as ``user`` (the viewer) and shape their results."""
    empty = pd.DataFrame()
    data = ViewData(filters, [], empty, empty, empty, empty)
    frames = {q.name: run(wb, q, data, user) for q in dashboard_queries(filters, top_n=top_n)}
    trend = frames["trend"]
    if not trend.empty:
        trend = trend.assign(period=pd.to_datetime({"year": trend["year"], "month": trend["month"], "day": 1}))
    data.trend = trend
    data.mix = frames["mix"]
    lookup = names or NameLookup(wb, user)
    data.top_products = lookup.label(frames["top_products"], "products")
    data.top_stores = lookup.label(frames["top_stores"], "stores")
    current = _totals(trend)
    previous = _totals(frames["previous"]) if "previous" in frames else None
    data.kpis = kpis_from_totals(current, previous)
    data.timings_ms["total"] = sum(v for k, v in data.timings_ms.items() if k != "total")
    return data


def _totals(df: pd.DataFrame) -> dict[str, float]:
    if df.empty:
        return {"revenue": 0.0, "profit": 0.0, "transactions": 0.0}
    return {c: float(df[c].fillna(0).sum()) for c in ("revenue", "profit", "transactions")}


class NameLookup:
    """Product and store display names, read once per id (dimension tables are small)."""

    TABLES = {"products": ("product_id", "product_name"), "stores": ("store_id", "store_name")}

    def __init__(self, wb: QueryRunner, user: str | None = None) -> None:
        self.wb = wb
        self.user = user
        self.known: dict[str, dict[str, str]] = {t: {} for t in self.TABLES}

    def label(self, df: pd.DataFrame, table: str) -> pd.DataFrame:
        key, name = self.TABLES[table]
        if df.empty:
            return df.assign(name=pd.Series(dtype=str))
        ids = [str(i) for i in df[key] if str(i) not in self.known[table]]
        if ids:
            found = run(self.wb, names_query(table, key, name, ids), user=self.user)
            self.known[table].update(zip(found[key].astype(str), found[name].astype(str), strict=True))
        labels = [self.known[table].get(str(i), str(i)) for i in df[key]]
        return df.assign(name=labels)


@dataclass
class FilterOptions:
    """What the filter widgets offer: the data's date span and the values of each column."""

    first_date: dt.date | None
    last_date: dt.date | None
    values: dict[str, list[str]]


def filter_options(wb: QueryRunner, user: str | None = None) -> FilterOptions:
    """The date span and the distinct region/category/channel values ``user`` may see."""
    bounds = run(wb, bounds_query(), user=user)
    first = _as_date(bounds["first_date"].iloc[0]) if len(bounds) else None
    last = _as_date(bounds["last_date"].iloc[0]) if len(bounds) else None
    values = {}
    for col in FILTER_COLUMNS:
        df = run(wb, values_query(col), user=user)
        values[col] = [str(v) for v in df[col].dropna()]
    return FilterOptions(first, last, values)


def _as_date(value: Any) -> dt.date | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return pd.Timestamp(value).date()
    except (TypeError, ValueError):
        return None
