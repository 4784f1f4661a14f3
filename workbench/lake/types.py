"""Column types a user's CSV really has: read every field as text, then decide per column.

Why not the CSV reader's own inference: it turns the postal code ``02134`` into the integer
2134 (the leading zero is lost for good), leaves ``3/14/2024`` and ``$1,234.50`` as text
(so a date column has no year and an amount cannot be summed) and cannot tell ``03/04/2024``
in March from the same text in April. Here a column becomes, in this order of preference:

- text, when it holds digit strings with a leading zero (codes: postal codes, SKUs, phone
  numbers): they are identifiers, never numbers;
- an integer or a float, also when values carry thousands separators, a currency sign or
  accounting parentheses (``($12.50)`` is -12.5);
- a date or timestamp: ISO, or ``m/d/yyyy`` / ``d/m/yyyy`` (``/``, ``-`` or ``.``, two- or
  four-digit years, optional time). Which of the two is decided from the values: a first
  part above 12 means day first, a second part above 12 means month first; when every
  value fits both, month first is assumed and the note says so;
- a boolean (true/false, yes/no in any case, when every value is one of them);
- text otherwise.

Every non-obvious decision comes back as a note that registration shows the user.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

_LEADING_ZERO = re.compile(r"^0\d+$")
_NUMBER = re.compile(
    r"^\(?[-+]?\s?[$€£¥]?\s?[-+]?\d{1,3}(,\d{3})+(\.\d+)?\)?$"  # 1,234.50  $1,234  (1,234)
    r"|^\(?[-+]?\s?[$€£¥]?\s?[-+]?\d+(\.\d+)?\)?$"  # $12.50  ($3)  12.00 beside them
)
_SLASH_DATE = re.compile(
    r"^(\d{1,2})([/.-])(\d{1,2})\2(\d{4}|\d{2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?)?$"
)
_TRUE = frozenset({"true", "yes", "t", "y"})
_FALSE = frozenset({"false", "no", "f", "n"})


@dataclass
class Inferred:
    """A column with its decided type, and why (``None`` when the plain reading was obvious)."""

    array: pa.ChunkedArray | pa.Array
    note: str | None = None


def infer(name: str, col: pa.ChunkedArray) -> Inferred:
    """Give the text column ``col`` (already trimmed, blanks NULL) its real type."""
    values = [v for v in col.unique().to_pylist() if v is not None]
    if not values:
        return Inferred(col)
    if any(_LEADING_ZERO.match(v) for v in values) and all(v.isdigit() for v in values):
        return Inferred(col, f"{name}: digits with leading zeros kept as text (a code, not a number)")
    for step in (_plain_cast, _symbol_number, _slash_dates, _boolean):
        found = step(name, col, values)
        if found is not None:
            return found
    return Inferred(col)


def _plain_cast(name: str, col: pa.ChunkedArray, values: list[str]) -> Inferred | None:
    for target in (pa.int64(), pa.float64(), pa.date32(), pa.timestamp("us")):
        try:
            return Inferred(col.cast(target))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    return None


def _symbol_number(name: str, col: pa.ChunkedArray, values: list[str]) -> Inferred | None:
    if not all(_NUMBER.match(v) for v in values):
        return None
    negative = pc.match_substring_regex(col, r"^\(.*\)$")
    digits = pc.replace_substring_regex(col, r"[\s$€£¥,()+]", "")
    number = digits.cast(pa.float64())
    number = pc.if_else(negative, pc.negate(number), number)
    integral = all("." not in v for v in values)
    signs = "currency signs and " if any(re.search(r"[$€£¥]", v) for v in values) else ""
    return Inferred(
        number.cast(pa.int64()) if integral else number,
        f"{name}: numbers written with {signs}thousands separators read as numbers",
    )


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def date_format(values: list[str]) -> str | None:
    """The ``strptime`` format that reads every one of ``values`` as a date (no time), if one does."""
    if values and all(_ISO_DATE.match(v) for v in values):
        return "%Y-%m-%d"
    order = date_order(values)
    if order is None or any(":" in v for v in values):
        return None  # with a time of day: read those at registration (a copy), not per query
    m = _SLASH_DATE.match(values[0])
    assert m is not None
    sep, year = m.group(2), "%Y" if len(m.group(4)) == 4 else "%y"
    return f"%m{sep}%d{sep}{year}" if order[0] == "mdy" else f"%d{sep}%m{sep}{year}"


def date_order(values: list[str]) -> tuple[str, bool] | None:
    """``("mdy"|"dmy", ambiguous)`` for values that all look like ``a/b/yyyy``; ``None`` otherwise."""
    parts = [_SLASH_DATE.match(v) for v in values]
    if not values or not all(parts):
        return None
    firsts = [int(m.group(1)) for m in parts if m]
    seconds = [int(m.group(3)) for m in parts if m]
    day_first, month_first = max(firsts) > 12, max(seconds) > 12
    if day_first and month_first:
        return None  # neither reading gives valid months
    if max(firsts) > 31 or max(seconds) > 31 or min(firsts) < 1 or min(seconds) < 1:
        return None
    return ("dmy" if day_first else "mdy"), not (day_first or month_first)


def _slash_dates(name: str, col: pa.ChunkedArray, values: list[str]) -> Inferred | None:
    order = date_order(values)
    if order is None:
        return None
    kind, ambiguous = order
    m = _SLASH_DATE.match(values[0])
    assert m is not None
    sep = m.group(2)
    has_time = any((_SLASH_DATE.match(v) or m).group(5) for v in values)
    year = "%Y" if len(m.group(4)) == 4 else "%y"
    first, second = ("%m", "%d") if kind == "mdy" else ("%d", "%m")
    fmt = f"{first}{sep}{second}{sep}{year}"
    try:
        parsed = _strptime(col, fmt, has_time, values)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    shown = "m/d/yyyy" if kind == "mdy" else "d/m/yyyy"
    why = (
        "every value fits both m/d and d/m; read as month first (US), re-export ISO dates if that is wrong"
        if ambiguous
        else f"a {'day above 12 comes first' if kind == 'dmy' else 'day above 12 comes second'} in some values"
    )
    return Inferred(parsed, f"{name}: dates read as {shown}{' with time' if has_time else ''} ({why})")


def _strptime(col: pa.ChunkedArray, fmt: str, has_time: bool, values: list[str]) -> pa.ChunkedArray:
    if not has_time:
        return pc.strptime(col, format=fmt, unit="s").cast(pa.date32())
    with_seconds = any(v.count(":") == 2 for v in values)
    ampm = any(re.search(r"[AaPp][Mm]$", v) for v in values)
    clock = ("%I" if ampm else "%H") + (":%M:%S" if with_seconds else ":%M") + (" %p" if ampm else "")
    # values without a time get midnight, so one format fits the whole column
    midnight = " 12:00" if ampm else " 00:00"
    midnight += (":00" if with_seconds else "") + (" AM" if ampm else "")
    filled = pc.if_else(pc.match_substring(col, ":"), col, pc.binary_join_element_wise(col, midnight, ""))
    filled = pc.replace_substring_regex(filled, "T", " ")
    return pc.strptime(filled, format=f"{fmt} {clock}", unit="us")


def _boolean(name: str, col: pa.ChunkedArray, values: list[str]) -> Inferred | None:
    lowered = {v.lower() for v in values}
    if not (lowered <= _TRUE | _FALSE and lowered & _TRUE and lowered & _FALSE):
        return None  # one value alone ("Yes" in a returns list) stays a label
    truth = pc.is_in(pc.utf8_lower(col), value_set=pa.array(sorted(_TRUE)))
    out = pc.if_else(pc.is_null(col), pa.scalar(None, pa.bool_()), truth)
    return Inferred(out, f"{name}: {'/'.join(sorted(values))} read as a boolean")
