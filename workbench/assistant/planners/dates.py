"""Time expressions in questions, resolved against the latest date in the data.

"last year", "this month", "Q3" or "last 3 months" mean the data's calendar, not the wall
clock (retail-schema.md): an archive that ends in December 2024 answers "this year" with
2024 even when asked in 2026. Every resolution carries a label so the answer states the
period it used. Works on the normalised text of :mod:`workbench.assistant.planners.text`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from workbench.errors import PlanningError
from workbench.semantic.query import TimeRange

MONTHS = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4,
    "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8, "september": 9,
    "sep": 9, "sept": 9, "october": 10, "oct": 10, "november": 11, "nov": 11, "december": 12, "dec": 12,
}  # fmt: skip
ORDINALS = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4, "last": 4}
NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "a": 1,
}  # fmt: skip

_YEAR = r"(?:19|20)\d{2}"
_MONTH = "|".join(sorted(MONTHS, key=len, reverse=True))
_Q = r"(?:q([1-4])|(first|second|third|fourth|1st|2nd|3rd|4th) quarter|quarter ([1-4]))"
_N = r"(\d+|" + "|".join(NUMBER_WORDS) + r")"


@dataclass
class TimeMention:
    """A time expression found at ``start:end`` (character offsets in the normalised text)."""

    start: int
    end: int
    range: TimeRange | None = None
    #: bare years, kept apart so "from 2022 to 2024" can become a comparison
    years: tuple[int, ...] = ()
    relative: bool = False
    #: "from 2022 to 2024" is one span; "2022 and 2024" names two separate years
    span: bool = False


@dataclass
class _Collector:
    """Mentions found so far; earlier (more specific) patterns claim their text first."""

    latest: dt.date | None
    found: list[TimeMention]
    taken: list[tuple[int, int]]

    def add(self, m: re.Match[str], mention: TimeMention) -> None:
        """Keep ``mention`` unless its text overlaps one already claimed."""
        if any(m.start() < e and s < m.end() for s, e in self.taken):
            return
        self.taken.append((m.start(), m.end()))
        self.found.append(mention)

    def need_latest(self, phrase: str) -> dt.date:
        """The data's latest date, or a planning error saying why ``phrase`` cannot resolve."""
        if self.latest is None:
            raise PlanningError(
                f"cannot resolve {phrase!r}: the latest date of the data is unknown",
                "name the period explicitly, e.g. 'in 2024' or 'in March 2024'",
            )
        return self.latest


def _single_days(text: str, acc: _Collector) -> None:
    """Single days (ISO "2024-03-15" arrives normalised as "2024 03 15"); impossible dates are skipped."""
    day_patterns = [
        (rf"\b({_YEAR}) (\d{{1,2}}) (\d{{1,2}})\b", (1, 2, 3)),
        (rf"\b({_MONTH}) (\d{{1,2}})(?:st|nd|rd|th)? ({_YEAR})\b", (3, 1, 2)),
        (rf"\b(\d{{1,2}})(?:st|nd|rd|th)? (?:of )?({_MONTH}) ({_YEAR})\b", (3, 2, 1)),
    ]
    for pattern, (yi, mi, di) in day_patterns:
        for m in re.finditer(pattern, text):
            month_text = m.group(mi)
            month = MONTHS[month_text] if month_text in MONTHS else int(month_text)
            try:
                day = dt.date(int(m.group(yi)), month, int(m.group(di)))
            except ValueError:
                continue
            acc.add(m, TimeMention(m.start(), m.end(), TimeRange(start=day, end=day, label=day.isoformat())))


def _year_pairs(text: str, acc: _Collector) -> None:
    """Two years: "from 2022 to 2024" is one span, "2022 vs 2024" names two separate years."""
    for m in re.finditer(rf"\b(?:from|between) ({_YEAR}) (?:to|and|until|through) ({_YEAR})\b", text):
        a, b = int(m.group(1)), int(m.group(2))
        acc.add(
            m, TimeMention(m.start(), m.end(), TimeRange(year=min(a, b), end_year=max(a, b)), years=(a, b), span=True)
        )
    for m in re.finditer(rf"\b({_YEAR}) (?:to|until|through) ({_YEAR})\b", text):
        a, b = int(m.group(1)), int(m.group(2))
        acc.add(
            m, TimeMention(m.start(), m.end(), TimeRange(year=min(a, b), end_year=max(a, b)), years=(a, b), span=True)
        )
    for m in re.finditer(rf"\b({_YEAR}) (?:vs|versus|compared to|compared with|against|and|or) ({_YEAR})\b", text):
        a, b = int(m.group(1)), int(m.group(2))
        acc.add(m, TimeMention(m.start(), m.end(), TimeRange(year=min(a, b), end_year=max(a, b)), years=(a, b)))


def _explicit_periods(text: str, acc: _Collector) -> None:
    """Quarters, halves and months that name their year, so they need no latest date."""
    for m in re.finditer(rf"\b{_Q}(?: of| in)? ({_YEAR})\b", text):
        q = _quarter(m.group(1), m.group(2), m.group(3))
        acc.add(m, TimeMention(m.start(), m.end(), TimeRange(year=int(m.group(4)), quarter=q)))
    for m in re.finditer(rf"\b({_YEAR}) {_Q}\b", text):
        q = _quarter(m.group(2), m.group(3), m.group(4))
        acc.add(m, TimeMention(m.start(), m.end(), TimeRange(year=int(m.group(1)), quarter=q)))
    for m in re.finditer(rf"\b(first|second|1st|2nd) half(?: of| in)? ({_YEAR})\b|\bh([12])(?: of)? ({_YEAR})\b", text):
        half = 1 if (m.group(1) or "") in ("first", "1st") or m.group(3) == "1" else 2
        year = int(m.group(2) or m.group(4))
        start, end = (
            dt.date(year, 1 if half == 1 else 7, 1),
            dt.date(year, 6 if half == 1 else 12, 30 if half == 1 else 31),
        )
        acc.add(m, TimeMention(m.start(), m.end(), TimeRange(start=start, end=end, label=f"H{half} {year}")))
    for m in re.finditer(rf"\b({_MONTH})(?: of)? ({_YEAR})\b", text):
        acc.add(m, TimeMention(m.start(), m.end(), TimeRange(year=int(m.group(2)), month=MONTHS[m.group(1)])))
    for m in re.finditer(rf"\b({_YEAR}) ({_MONTH})\b", text):
        acc.add(m, TimeMention(m.start(), m.end(), TimeRange(year=int(m.group(1)), month=MONTHS[m.group(2)])))


def _relative_periods(text: str, acc: _Collector) -> None:
    """ "last 3 months", "ytd", "this quarter": counted back from the latest date in the data."""
    rel = rf"\b(?:last|past|previous|recent|trailing|the last|the past) {_N} (day|week|month|quarter|year)s?\b"
    for m in re.finditer(rel, text):
        n = _count(m.group(1))
        acc.add(m, TimeMention(m.start(), m.end(), _last_n(acc.need_latest(m.group(0)), n, m.group(2)), relative=True))
    for m in re.finditer(r"\b(?:ytd|year to date|so far this year)\b", text):
        end = acc.need_latest(m.group(0))
        start = dt.date(end.year, 1, 1)
        label = f"year to date ({start} .. {end})"
        acc.add(m, TimeMention(m.start(), m.end(), TimeRange(start=start, end=end, label=label), relative=True))
    rel1 = r"\b(this|current|latest|most recent|last|previous|past|prior) (year|quarter|month|week)\b"
    for m in re.finditer(rel1, text):
        latest_d = acc.need_latest(m.group(0))
        acc.add(m, TimeMention(m.start(), m.end(), _relative(latest_d, m.group(1), m.group(2)), relative=True))


def _yearless_periods(text: str, acc: _Collector) -> None:
    """A bare "Q3" or "march" means the latest such period in the data; a bare year is itself."""
    for m in re.finditer(rf"\b{_Q}\b", text):
        q = _quarter(m.group(1), m.group(2), m.group(3))
        latest_d = acc.need_latest(m.group(0))
        year = latest_d.year if 3 * (q - 1) + 1 <= latest_d.month else latest_d.year - 1
        tr = TimeRange(year=year, quarter=q, label=f"Q{q} {year} (latest Q{q} in the data)")
        acc.add(m, TimeMention(m.start(), m.end(), tr, relative=True))
    bare = r"\b(january|february|march|april|june|july|august|september|october|november|december)\b"
    for m in re.finditer(rf"\b(?:in|during|for|of) ({_MONTH})\b|{bare}", text):
        name = m.group(1) or m.group(2)
        month = MONTHS[name]
        latest_d = acc.need_latest(name)
        year = latest_d.year if month <= latest_d.month else latest_d.year - 1
        label = f"{dt.date(year, month, 1):%B %Y} (latest {dt.date(year, month, 1):%B} in the data)"
        acc.add(m, TimeMention(m.start(), m.end(), TimeRange(year=year, month=month, label=label), relative=True))
    for m in re.finditer(rf"\b({_YEAR})\b", text):
        year = int(m.group(1))
        acc.add(m, TimeMention(m.start(), m.end(), TimeRange(year=year), years=(year,)))


def find_time(text: str, latest: dt.date | None) -> list[TimeMention]:
    """All time expressions in ``text``, longest first and non-overlapping.

    The passes run from most to least specific, so a day claims "2024 03 15" before the bare
    year pass could claim "2024"; their order is the behaviour, not a detail.
    """
    acc = _Collector(latest, [], [])
    for find in (_single_days, _year_pairs, _explicit_periods, _relative_periods, _yearless_periods):
        find(text, acc)
    return join_spans(text, sorted(acc.found, key=lambda t: t.start))


_SPAN_PREFIX = re.compile(r"(?:between|from) $")
_SPAN_JOIN = re.compile(r"^ (?:and|to|through|until|till) $")


def join_spans(text: str, found: list[TimeMention]) -> list[TimeMention]:
    """ "between March and June 2024", "from Q1 2023 to Q2 2024": two periods become one span.

    A bare month before a dated one takes that one's year ("between March and June 2024" is
    March-June 2024, not the latest March in the data).
    """
    out: list[TimeMention] = []
    i = 0
    while i < len(found):
        a = found[i]
        b = found[i + 1] if i + 1 < len(found) else None
        prefix = _SPAN_PREFIX.search(text[: a.start])
        if b is None or a.range is None or b.range is None or not prefix or a.span or b.span:
            out.append(a)
            i += 1
            continue
        if not _SPAN_JOIN.match(text[a.end : b.start]):
            out.append(a)
            i += 1
            continue
        first = a.range
        if a.relative and first.month and b.range.year and not b.relative:
            first = TimeRange(year=b.range.year, month=first.month)
        start, end = first.bounds()[0], b.range.bounds()[1]
        if end < start:
            raise PlanningError(
                f"the period {text[prefix.start() : b.end]!r} ends before it starts", "name the earlier period first"
            )
        label = f"{_short(first)} to {_short(b.range)}"
        out.append(TimeMention(prefix.start(), b.end, TimeRange(start=start, end=end, label=label), span=True))
        i += 2
    return out


def _short(r: TimeRange) -> str:
    """A period's name without the "(latest ... in the data)" note."""
    return r.model_copy(update={"label": None}).describe() if r.year is not None else r.describe()


def _quarter(qnum: str | None, ordinal: str | None, qnum2: str | None) -> int:
    if qnum:
        return int(qnum)
    if ordinal:
        return ORDINALS[ordinal]
    return int(qnum2 or 1)


def _count(word: str) -> int:
    return int(word) if word.isdigit() else NUMBER_WORDS[word]


def _month_start(d: dt.date, back: int) -> dt.date:
    index = d.year * 12 + (d.month - 1) - back
    return dt.date(index // 12, index % 12 + 1, 1)


def _last_n(latest: dt.date, n: int, unit: str) -> TimeRange:
    """The ``n`` most recent ``unit``s of data, ending on the latest date."""
    if n < 1:
        raise PlanningError("a period of zero length", "ask for at least one day, month or year")
    if unit == "day":
        start = latest - dt.timedelta(days=n - 1)
    elif unit == "week":
        start = latest - dt.timedelta(days=7 * n - 1)
    elif unit == "month":
        start = _month_start(latest, n - 1)
    elif unit == "quarter":
        q0 = _month_start(latest, (latest.month - 1) % 3)
        start = _month_start(q0, 3 * (n - 1))
    else:
        start = dt.date(latest.year - n + 1, 1, 1)
    plural = "s" if n > 1 else ""
    return TimeRange(start=start, end=latest, label=f"last {n} {unit}{plural} ({start} .. {latest})")


def _relative(latest: dt.date, which: str, unit: str) -> TimeRange:
    back = 0 if which in ("this", "current", "latest", "most recent") else 1
    if unit == "year":
        year = latest.year - back
        return TimeRange(year=year, label=f"{year} ({which} year of the data)")
    if unit == "month":
        first = _month_start(latest, back)
        label = f"{first:%B %Y} ({which} month of the data)"
        return TimeRange(year=first.year, month=first.month, label=label)
    if unit == "quarter":
        index = latest.year * 4 + (latest.month - 1) // 3 - back
        year, q = index // 4, index % 4 + 1
        return TimeRange(year=year, quarter=q, label=f"Q{q} {year} ({which} quarter of the data)")
    # week: Monday-based
    monday = latest - dt.timedelta(days=latest.weekday() + 7 * back)
    end = min(monday + dt.timedelta(days=6), latest)
    return TimeRange(start=monday, end=end, label=f"week of {monday} ({which} week of the data)")
