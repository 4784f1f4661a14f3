"""The narrative of an answer, written by template from the result.

Large results are summarised (total, top and bottom rows, spread) rather than pasted: a
narrative is read, the table is there for the detail. Numbers are formatted by the metric's
format in the semantic model (currency, percent, count). Sources are cited by number.
"""

from __future__ import annotations

import calendar
import numbers
import re
from collections.abc import Sequence
from typing import Any

import pandas as pd

from workbench.assistant.answer import TIME_COLUMNS
from workbench.assistant.interpret import plural
from workbench.assistant.retrieval.index import Source
from workbench.formatting import money
from workbench.semantic.query import SemanticQuery

#: rows shown by name in a narrative before it switches to a summary
TOP_N = 3


def fmt(value: Any, kind: str = "number") -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):  # numpy ints are Real, not int
        return str(value)
    v = float(value)
    if kind == "currency":
        return money(v)
    if kind == "percent":
        return f"{v:.1f}%"
    if kind == "fraction":
        return f"{v * 100:.1f}%"
    if kind == "count" or v.is_integer():
        return f"{v:,.0f}"
    return f"{v:,.2f}"


def _label(row: pd.Series, dims: Sequence[str]) -> str:
    parts = []
    for d in dims:
        value = row[d]
        if d == "month" and "year" in dims:
            continue
        if d == "year" and "month" in dims:
            value = f"{int(row['year'])}-{int(row['month']):02d}"
        elif d == "month" and 1 <= int(value) <= 12:
            value = calendar.month_name[int(value)]
        elif d == "quarter":
            value = f"Q{int(value)}"
        elif isinstance(value, float) and value.is_integer():
            value = int(value)
        parts.append(str(value))
    return ", ".join(parts)


def describe_result(
    df: pd.DataFrame,
    formats: dict[str, str],
    period: str,
    sources: Sequence[Source] = (),
    notes: Sequence[str] = (),
    rank: str = "",
    additive: frozenset[str] = frozenset(),
) -> str:
    """A few sentences about ``df``: the value, or the leaders, the spread and the total.

    ``rank`` ("highest"/"lowest") words a one-row answer to a "which X had the most" question;
    ``additive``: the columns whose rows may be summed into a total
    (:func:`workbench.semantic.model.is_additive`).
    """
    text = _body(df, formats, period, rank, additive)
    if sources:
        text = _with_sources(text, df, sources)
    if notes:
        text += " Note: " + " ".join(notes)
    return text


def _with_sources(text: str, df: pd.DataFrame, sources: Sequence[Source]) -> str:
    """Cite by number, never by id; a summary of the same figure adds its change on the year before.

    The change is only quoted when the summary's own figure equals the answer's (same metric,
    same filters, same period), so a cited number can never describe something else.
    """
    if len(df) == 1 and "revenue" in df.columns:
        value = pd.to_numeric(df["revenue"], errors="coerce").iloc[0]
        for i, s in enumerate(sources, 1):
            figure, growth = s.meta.get("revenue"), s.meta.get("growth_yoy")
            if growth is None or figure is None or pd.isna(value) or not _close(float(figure), float(value)):
                continue
            direction = "up" if growth >= 0 else "down"
            return text.rstrip(".") + f", {direction} {abs(growth):.1f}% year over year [{i}]."
    return text + " Sources: " + ", ".join(f"[{i}]" for i in range(1, len(sources) + 1)) + "."


def _close(a: float, b: float, rel: float = 0.005) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-9)


#: summary metadata keys that name a filter value of the question (the rest describe the period)
_SCOPE_KEYS = ("category", "region", "channel")


def cited_sources(query: SemanticQuery | None, sources: Sequence[Source]) -> list[Source]:
    """The retrieved summaries that describe exactly the answer's scope: same period, same filters.

    A summary about "2024, all regions" is not evidence for an answer about the North in Q3;
    citing it would put a number next to the answer that describes something else.
    """
    if query is None or query.share or query.having or query.comparison:
        return []
    tr = query.time_range
    filters = {f.dimension: {str(v) for v in f.values} for f in query.filters if f.op in ("=", "in")}
    if len(filters) != len(query.filters) or any(k not in _SCOPE_KEYS for k in filters):
        return []
    if tr is None or tr.year is None or tr.end_year:
        return []
    dims = set(query.dimensions)
    out = []
    for s in sources:
        m = s.meta
        # the summary's scope is the answer's, or one row of it (a month of a monthly breakdown)
        same_period = m.get("year") == tr.year and all(
            m.get(part) == getattr(tr, part) or (getattr(tr, part) is None and part in dims)
            for part in ("quarter", "month")
        )
        same_filters = all(
            (k in filters and k in m and filters[k] == {str(m[k])}) or (k not in filters and (k not in m or k in dims))
            for k in _SCOPE_KEYS
        )
        if same_period and same_filters:
            out.append(s)
    return out


_NUMBER = re.compile(r"(?<![\w.])[-−]?\$?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?\s*(%|[kKmMbB]\b|thousand|million|billion)?")
_SCALE = {"k": 1e3, "thousand": 1e3, "m": 1e6, "million": 1e6, "b": 1e9, "billion": 1e9}


def numbers_in(text: str) -> list[tuple[str, float, float]]:
    """Each number written in ``text``: (as written, value, rounding unit), "$1.54M" -> 1,540,000 +- 5,000."""
    out = []
    for m in _NUMBER.finditer(text):
        whole, frac, unit = m.group(1), m.group(2) or "", (m.group(3) or "").lower()
        scale = _SCALE.get(unit, 1.0)
        value = float(whole.replace(",", "") + frac) * scale
        step = (10 ** -(len(frac) - 1) if frac else 1.0) * scale / 2
        out.append((m.group(0).strip(), -value if m.group(0).lstrip().startswith(("-", "−")) else value, step))
    return out


def unsupported_numbers(text: str, df: pd.DataFrame, sources: Sequence[Source], given: str = "") -> list[str]:
    """Numbers in ``text`` found neither in the result, nor in the cited summaries, nor in ``given``.

    ``given`` is text the reader already has (the question, the interpretation, the period):
    years and "top 3" may be repeated. Matching allows for rounding: "$1.54M" matches
    1,538,765.12; a percent also matches a fraction cell (12.5% ~ 0.125).
    """
    allowed: list[float] = []
    for col in df.columns:
        for v in pd.to_numeric(df[col], errors="coerce").dropna().tolist():
            allowed += [float(v), float(v) * 100]
    for s in sources:
        allowed += [v for _, v, _ in numbers_in(s.text)]
    allowed += [v for _, v, _ in numbers_in(given)]
    bad = []
    for shown, value, step in numbers_in(text):
        tol = max(step, 0.005 * abs(value))
        if not any(abs(abs(value) - abs(a)) <= tol for a in allowed):
            bad.append(shown)
    return bad


def _body(
    df: pd.DataFrame, formats: dict[str, str], period: str, rank: str = "", additive: frozenset[str] = frozenset()
) -> str:
    scope = f" ({period})" if period else ""
    if df.empty:
        return f"No rows matched{scope}."
    measures = [
        c for c in df.columns if c in formats or (pd.api.types.is_numeric_dtype(df[c]) and c not in TIME_COLUMNS)
    ]
    dims = [c for c in df.columns if c not in measures]
    if not measures:
        return f"{len(df)} row(s){scope}: " + "; ".join(
            _label(r, list(df.columns)) for _, r in df.head(TOP_N).iterrows()
        )
    compared = _comparison(df, measures, dims, formats, scope, additive)
    if compared:
        return compared
    y = measures[0]
    kind = formats.get(y, "number")
    name = _measure_name(y)
    if len(df) == 1 and not dims:
        extras = ", ".join(f"{_measure_name(m)} {fmt(df.iloc[0][m], formats.get(m, 'number'))}" for m in measures[1:])
        return f"The {name}{scope} is {fmt(df.iloc[0][y], kind)}" + (f" ({extras})." if extras else ".")
    values = pd.to_numeric(df[y], errors="coerce")
    if dims and set(dims) <= set(TIME_COLUMNS) and len(df) > 2:
        ordered = df.assign(_v=values)
        hi, lo = ordered.loc[ordered["_v"].idxmax()], ordered.loc[ordered["_v"].idxmin()]
        first, last = ordered.iloc[0], ordered.iloc[-1]
        change = (last["_v"] - first["_v"]) / abs(first["_v"]) * 100 if first["_v"] else None
        text = (
            f"{name.capitalize()}{scope} over {len(df)} periods: highest in {_label(hi, dims)} "
            f"({fmt(hi['_v'], kind)}), lowest in {_label(lo, dims)} ({fmt(lo['_v'], kind)})"
        )
        if change is not None:
            text += (
                f"; from {fmt(first['_v'], kind)} in {_label(first, dims)} to {fmt(last['_v'], kind)} in "
                f"{_label(last, dims)} ({change:+.1f}%)"
            )
        return text + "."
    ranked = df.assign(_v=values).sort_values("_v", ascending=False)
    top = ranked.head(TOP_N)
    leaders = ", ".join(f"{_label(r, dims)} ({fmt(r['_v'], kind)})" for _, r in top.iterrows())
    if len(df) == 1:
        what = f"the {rank} {name}" if rank else name.capitalize()
        if rank:
            return f"{_label(ranked.iloc[0], dims)} had {what}{scope}: {fmt(ranked.iloc[0]['_v'], kind)}."
        return f"{what}{scope} for {_label(ranked.iloc[0], dims)}: {fmt(ranked.iloc[0]['_v'], kind)}."
    text = f"{name.capitalize()}{scope} by {', '.join(d.replace('_', ' ') for d in dims)}: highest {leaders}"
    if len(df) > TOP_N:
        bottom = ranked.iloc[-1]
        text += f"; lowest {_label(bottom, dims)} ({fmt(bottom['_v'], kind)})"
    if y in additive and values.notna().all():
        text += f"; total {fmt(values.sum(), kind)} over {len(df)} {plural(dims[0]) if len(dims) == 1 else 'rows'}"
    if len(df) > 10:
        text += f"; median {fmt(values.median(), kind)}"
    return text + "."


def _measure_name(column: str) -> str:
    """How a result column reads in a sentence (``revenue_share_pct`` -> "share of revenue")."""
    if column.endswith("_share_pct"):
        return "share of " + column.removesuffix("_share_pct").replace("_", " ")
    if column.endswith("_total"):
        return "total " + column.removesuffix("_total").replace("_", " ")
    return column.replace("_", " ")


def _comparison(
    df: pd.DataFrame,
    measures: list[str],
    dims: list[str],
    formats: dict[str, str],
    scope: str,
    additive: frozenset[str] = frozenset(),
) -> str:
    """Words for a period comparison (``<m>_current``, ``<m>_previous``, ``<m>_growth_pct``).

    Says the change first, because that is what was asked: the total then and now (only for an
    additive metric or a single row), and for a breakdown which members grew fastest and slowest.
    Empty when ``df`` is not a comparison.
    """
    growth = next((c for c in measures if c.endswith("_growth_pct")), None)
    if growth is None:
        return ""
    base = growth.removesuffix("_growth_pct")
    cur, prev = f"{base}_current", f"{base}_previous"
    if cur not in df.columns or prev not in df.columns:
        return ""
    kind = formats.get(cur, formats.get(base, "number"))
    name = base.replace("_", " ").capitalize()
    now, before = pd.to_numeric(df[cur], errors="coerce"), pd.to_numeric(df[prev], errors="coerce")
    if len(df) == 1 or cur in additive:
        total_now, total_before = now.sum(), before.sum()
        change = f" ({(total_now - total_before) / abs(total_before) * 100:+.1f}%)" if total_before else ""
        text = f"{name}{scope}: {fmt(total_now, kind)} against {fmt(total_before, kind)}{change}"
    else:  # a ratio per member: its members' values do not add up to a total
        text = f"{name}{scope} by {', '.join(d.replace('_', ' ') for d in dims)}"
    if dims and len(df) > 1:
        rates = pd.to_numeric(df[growth], errors="coerce")
        ranked = df.assign(_g=rates).dropna(subset=["_g"]).sort_values("_g", ascending=False)
        if len(ranked) > 1:
            hi, lo = ranked.iloc[0], ranked.iloc[-1]
            text += (
                f"; fastest growth {_label(hi, dims)} ({hi['_g']:+.1f}%), slowest {_label(lo, dims)} ({lo['_g']:+.1f}%)"
            )
    return text + "."
