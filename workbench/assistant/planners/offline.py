"""The offline planner: a deterministic parser from a question to a semantic query.

It is the default when no LLM is configured. It knows only what the semantic model and the
lake's value vocabulary tell it (via :class:`~.lexicon.Lexicon`): metric and dimension names
and synonyms, category values, and time expressions (:mod:`.dates`). Structure comes from a
few general cues ("by"/"per"/"which" before a dimension, "top N", superlatives, "share of",
"growth", "vs"). It never guesses silently: a question with words it cannot place, or with no
metric and no dimension, raises :class:`PlanningError` with rephrasings; a request to change
data, or one about what the data does not hold (weather, forecasts, staff, inventory), raises
:class:`QueryRefused` (the answer's status is ``refused``, with examples of what it can answer).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from workbench.assistant.intent import change_verb
from workbench.assistant.planners.base import Plan, PlanContext, Planner
from workbench.assistant.planners.dates import NUMBER_WORDS, TimeMention, find_time
from workbench.assistant.planners.lexicon import Entry, Hit, Lexicon, normalise
from workbench.assistant.planners.passes import (
    clause_subject,
    count_before,
    drop_subjects,
    entity_attributes,
    entity_counts,
    leads_metric,
    loss_condition,
    opens_clause,
    ratio_per,
    resolve_entity_count,
    unlisted_entity,
    verb_metric,
    verbs_of_values,
)
from workbench.assistant.planners.words import (
    ASC_WORDS,
    DESC_WORDS,
    FILLER,
    GROUP_MARKERS,
    GROWTH_WORDS,
    RANK_ADJECTIVES,
    SHARE_WORDS,
    TREND_WORDS,
    VS_WORDS,
)
from workbench.errors import PlanningError, QueryRefused, did_you_mean
from workbench.semantic.query import (
    Comparison,
    Filter,
    MetricFilter,
    OrderBy,
    SemanticQuery,
    TimeRange,
    previous_month,
    previous_quarter,
)

_OUT_OF_SCOPE = re.compile(
    r"\b(weather|forecast|forecasts|predict|prediction|predictions|projection|tomorrow|next (?:year|month|quarter|week)"
    r"|stock price|stock prices|share price|password|passwords|email addresses|joke|jokes"
    r"|employees?|salary|salaries|wages?|staff|headcount|inventory|stock levels?|suppliers?)\b"
)
_YOY = re.compile(
    r"\b(?:year over year|year on year|yoy|y o y|annual growth|(?:vs|versus|against|compared to|compared with|over)"
    r" (?:the )?(?:same period )?(?:last|previous|prior|a) year|same period last year)\b"
)
_MOM = re.compile(
    r"\b(?:month over month|month on month|mom|m o m|(?:vs|versus|against|compared to|compared with|over)"
    r" (?:the )?(?:last|previous|prior) month)\b"
)
_QOQ = re.compile(
    r"\b(?:quarter over quarter|quarter on quarter|qoq|q o q|(?:vs|versus|against|compared to|compared with|over)"
    r" (?:the )?(?:last|previous|prior) quarter)\b"
)
_TOP_N = re.compile(
    r"\b(top|best|highest|biggest|largest|leading|bottom|worst|lowest|smallest) (\d+|" + "|".join(NUMBER_WORDS) + r")\b"
)
_N_TOP = re.compile(r"\b(\d+) (best|worst|top|bottom|highest|lowest|biggest|largest|smallest)\b")
_COMPARISON_OPS = {
    "above": ">", "over": ">", "greater than": ">", "more than": ">", "higher than": ">", "exceeding": ">",
    "at least": ">=", "below": "<", "under": "<", "less than": "<", "lower than": "<", "at most": "<=",
}  # fmt: skip


@dataclass
class _Parse:
    """Working state of one question."""

    question: str
    context: PlanContext
    lexicon: Lexicon
    text: str = ""
    tokens: list[str] = field(default_factory=list)
    used: set[int] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    confidence: float = 1.0
    # recognised entities
    flags: set[str] = field(default_factory=set)
    times: list[TimeMention] = field(default_factory=list)
    numeric: list[Filter] = field(default_factory=list)
    having: list[MetricFilter] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    values: list[tuple[Hit, Entry]] = field(default_factory=list)
    dim_hits: list[Hit] = field(default_factory=list)
    # intent
    share: bool = False
    growth: bool = False
    versus: bool = False
    trend: bool = False
    desc: bool = False
    asc: bool = False
    limit: int | None = None
    limit_dir: str | None = None
    # the query taking shape
    metrics: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    grouped_hits: list[Hit] = field(default_factory=list)
    filters: list[Filter] = field(default_factory=list)
    share_filter: Filter | None = None
    #: "share of revenue by region": each group's share of the total (no part named)
    share_of_total: bool = False
    comparison: Comparison | None = None
    time_range: TimeRange | None = None
    per: str | None = None
    order: list[OrderBy] = field(default_factory=list)


class OfflinePlanner(Planner):
    """Deterministic parser over the semantic model; see the module docstring."""

    name = "offline"

    def __init__(self) -> None:
        self._lexicons: dict[int, Lexicon] = {}

    def lexicon(self, context: PlanContext) -> Lexicon:
        key = id(context.model) ^ hash(tuple(sorted((k, tuple(v)) for k, v in context.vocabulary.items())))
        if key not in self._lexicons:
            self._lexicons[key] = Lexicon(context.model, context.vocabulary)
        return self._lexicons[key]

    def plan(self, question: str, context: PlanContext) -> Plan:
        p = _Parse(question, context, self.lexicon(context))
        query = _build(p)
        period = _period_text(query)
        if query.time_range and query.time_range.label and "data" in query.time_range.label and context.latest_date:
            p.notes.append(f"relative dates resolved against the latest date in the data, {context.latest_date}")
        return Plan(
            query=query,
            period=period,
            confidence=round(max(0.3, p.confidence), 2),
            notes=p.notes,
            planner=self.name,
        )


# --- the parse ---------------------------------------------------------------------------------
def _build(p: _Parse) -> SemanticQuery:
    """Run the passes in order; each reads and extends the parse state (see ``PASSES``)."""
    for step in PASSES:
        step(p)
    return SemanticQuery(
        metrics=p.metrics,
        dimensions=p.groups,
        filters=p.filters,
        time_range=p.time_range,
        comparison=p.comparison,
        share=p.share_filter,
        share_of_total=p.share_of_total,
        having=p.having,
        per=p.per,
        order=p.order,
        limit=p.limit,
    )


def _tokens(p: _Parse) -> None:
    """Refusals first; then comparison phrases become flags and the text becomes tokens."""
    raw = normalise(p.question)
    _refuse(raw, p.question)
    text = _YOY.sub(lambda m: _flag(p.flags, "yoy", m), raw)
    text = _MOM.sub(lambda m: _flag(p.flags, "mom", m), text)
    text = _QOQ.sub(lambda m: _flag(p.flags, "qoq", m), text)
    p.text = re.sub(r"\s+", " ", text).strip()
    p.tokens = p.text.split()


def _recognise(p: _Parse) -> None:
    """Periods, numeric filters, "lost money", then the model's words (longest phrase first)."""
    p.times = find_time(p.text, p.context.latest_date)
    for t in p.times:
        p.used.update(_token_span(p.text, t.start, t.end))
    p.numeric = _numeric_filters(p)
    loss = loss_condition(p.text, p.lexicon)
    if loss is not None:
        p.used.update(loss[0])
        p.having.append(MetricFilter(metric=loss[1], op="<", value=0))
    p.hits = p.lexicon.scan(p.tokens, p.used)
    for h in p.hits:
        p.used.update(range(h.start, h.end))


def _classify(p: _Parse) -> None:
    """Each recognised phrase becomes a metric, a value (with its dimension) or a dimension word."""
    metrics: list[str] = []
    for i, h in enumerate(p.hits):
        kinds = {e.kind for e in h.entries}
        if "value" in kinds:
            p.values.append((h, _pick_value(h, p.hits, i, p)))
        elif "metric" in kinds and (
            "dimension" not in kinds or not (_after_marker(p, h, p.hits) or opens_clause(h, p.tokens))
        ):
            # "discount" is a metric unless after "by"/"which" or opening a clause ("stores with the most ...")
            metrics.append(_first(h, "metric").name)
        else:
            p.dim_hits.append(h)
    model = p.context.model
    listed = unlisted_entity(p.hits, p.tokens, metrics, model)
    if listed is not None:
        word = " ".join(p.tokens[listed.start : listed.end])
        asked = next((m for m in metrics if m != listed.entries[0].name), metrics[0])
        by = [d.replace("_", " ") for d in entity_attributes(word, model)]
        raise PlanningError(
            f"I can count {word} but not list them one by one: there is no breakdown by individual {word}",
            f"ask by one of their attributes instead, e.g. '{asked.replace('_', ' ')} by {by[0]}'"
            + (f" ({', '.join(by)})" if len(by) > 1 else "")
            if by
            else "ask for a total or a breakdown by one of the data's dimensions",
        )
    metrics = drop_subjects(p.tokens, p.hits, _drop_entity_nouns(p, p.hits, metrics), model)
    metrics += [h.metric for h in p.having if h.metric not in metrics]
    if not metrics:
        verb = verb_metric(p.tokens, p.used, p.lexicon)
        if verb is not None:
            p.used.add(verb[0])
            metrics = [verb[1]]
    ratio = ratio_per(p.tokens, p.hits, metrics, model)
    if ratio is not None:
        p.per = ratio[0]
        p.used.update(ratio[1])
        metrics = [m for m in metrics if m != p.per]
    p.metrics = metrics
    # a dimension word right next to one of its values belongs to the value ("North region")
    absorbed = {
        id(d)
        for d in p.dim_hits
        for vh, ve in p.values
        if (d.start == vh.end or d.end == vh.start) and _first(d, "dimension").name == ve.name
    }
    p.dim_hits = [d for d in p.dim_hits if id(d) not in absorbed]
    p.used.update(verbs_of_values(p.tokens, p.used, [h.start for h, _ in p.values]))


def _intents(p: _Parse) -> None:
    """Share, growth, versus, trend and ranking words; words inside matched phrases carry none."""
    words = set(p.tokens)
    free = {tok for i, tok in enumerate(p.tokens) if i not in p.used}
    model = p.context.model
    p.share = _share_intent(p)
    p.growth = bool(free & GROWTH_WORDS) or bool(p.flags) or any(model.metrics[m].growth_of for m in p.metrics)
    p.versus = bool(words & VS_WORDS) or "compare" in words or "comparison" in words
    p.trend = bool(free & TREND_WORDS)
    p.desc = bool(free & DESC_WORDS)
    p.asc = bool(free & ASC_WORDS)
    p.limit, p.limit_dir = _top_n(p.text)


def _grouping(p: _Parse) -> None:
    """Which dimension words are breakdowns: after by/per/which, grain adjectives, chains, leading nouns."""
    model = p.context.model
    value_dims = {e.name for _, e in p.values}
    for h in p.dim_hits:
        d = model.dimensions[_first(h, "dimension").name]
        grain_adj = d.kind == "time" and p.tokens[h.start] in _GRAIN_ADJECTIVES
        chained = bool(p.grouped_hits) and all(
            t in ("and", "then", "x") for t in p.tokens[p.grouped_hits[-1].end : h.start]
        )
        leading = leads_metric(h, p.hits) or clause_subject(h, p.tokens)
        if _after_marker(p, h, p.hits) or grain_adj or chained or leading:
            if grain_adj and p.growth and d.name == "year":
                continue  # "annual growth" is year over year, not a breakdown
            if d.name not in p.groups:
                p.groups.append(d.name)
            p.grouped_hits.append(h)
        elif d.name not in value_dims:
            p.notes.append(f"'{' '.join(p.tokens[h.start : h.end])}' was read as context, not as a breakdown")
    if p.trend and not any(model.dimensions[g].kind == "time" for g in p.groups):
        p.groups.append("month")
    counted = count_before(p.tokens, p.hits, p.grouped_hits) if p.limit is None and (p.desc or p.asc) else None
    if counted is not None:
        p.used.add(counted[0])
        p.limit = counted[1]


def _filters(p: _Parse) -> None:
    """Values become filters, the share's part, or the two members of a "vs" comparison."""
    by_dim: dict[str, list[str]] = {}
    for _, e in p.values:
        by_dim.setdefault(e.name, [])
        if e.value not in by_dim[e.name]:
            by_dim[e.name].append(str(e.value))
    if p.share:
        p.share_filter = _share_filter(p, p.numeric, p.values)
        if p.share_filter is None and p.groups:
            p.share_of_total = True  # "share of revenue by region": every region's share of the total
        elif p.share_filter is None:
            raise PlanningError(
                "I understood 'share of' but not which part to take the share of",
                "name a value or a breakdown, e.g. 'what share of revenue came from Online?' or "
                "'share of revenue by region'",
            )
        elif p.share_filter in p.numeric:
            p.numeric.remove(p.share_filter)
        elif p.share_filter.dimension in by_dim:
            part = {str(x) for x in p.share_filter.values}
            by_dim[p.share_filter.dimension] = [v for v in by_dim[p.share_filter.dimension] if v not in part]
    p.filters = list(p.numeric)
    for dim, vals in by_dim.items():
        if not vals:
            continue
        if p.versus and len(vals) == 2 and p.comparison is None and not p.growth:
            p.comparison = Comparison(kind="vs", dimension=dim, members=list(vals))
            continue
        p.filters.append(Filter(dimension=dim, op="in", values=list(vals)))


def _period(p: _Parse) -> None:
    p.time_range, p.comparison = _time(p, p.times, p.flags, p.growth, p.versus, p.comparison, p.groups, p.filters)


def _metrics(p: _Parse) -> None:
    """Entity counts resolved (or asked about); a question with no metric word gets the model's first metric."""
    model = p.context.model
    has_period = p.time_range is not None or p.comparison is not None
    try:
        p.metrics, cues = resolve_entity_count(
            p.metrics, p.tokens, model, has_period, p.context.extra.get("prefer_metric")
        )
    except PlanningError:
        _check_leftovers(p)  # words not understood come first: no clarifying question about half a question
        raise
    p.used.update(i for i, tok in enumerate(p.tokens) if tok in cues)
    p.time_range = _on_file_has_no_period(p, p.metrics, p.time_range)
    if not p.metrics:
        if not (p.groups or p.filters or p.values or p.comparison or p.growth or p.share):
            _not_understood(p)
        default = next(iter(model.metrics))
        p.metrics = [default]
        p.notes.append(f"no metric named: using {default.replace('_', ' ')}")
        p.confidence -= 0.2
    _check_leftovers(p)


def _order(p: _Parse) -> None:
    """Ranking words and N become an order and a limit (only over a breakdown)."""
    if p.limit is None and not (p.desc or p.asc):
        return
    if not p.groups:
        p.limit = None
        return
    direction = p.limit_dir or ("asc" if p.asc and not p.desc else "desc")
    c = p.comparison
    by = "growth" if (c is not None and c.kind != "vs") or (p.growth and c) else p.metrics[0]
    p.order.append(OrderBy(by=by, direction=direction))  # type: ignore[arg-type]
    if p.limit is None:
        # "which store sold most": the one; "which stores sold most", "top stores": a ranking of five
        plural_group = any(p.tokens[h.end - 1].endswith("s") for h in p.grouped_hits if h.end - h.start)
        p.limit = 5 if plural_group else 1


#: the offline parser, pass by pass: tokens -> recognised entities -> intent -> semantic query
PASSES: tuple[Callable[[_Parse], None], ...] = (
    _tokens,
    _recognise,
    _classify,
    _intents,
    _grouping,
    _filters,
    _period,
    _metrics,
    _order,
)


def _on_file_has_no_period(p: _Parse, metrics: list[str], tr: TimeRange | None) -> TimeRange | None:
    """Entities on file are counted as they are now: a period would silently count buyers instead."""
    on_file = {pair.on_file: pair.entity for pair in entity_counts(p.context.model)}
    hit = [on_file[m] for m in metrics if m in on_file]
    if tr is None or not hit:
        return tr
    p.notes.append(f"The {hit[0]} on file are counted as they are today; a period does not apply to them.")
    return None


def _drop_entity_nouns(p: _Parse, hits: list[Hit], metrics: list[str]) -> list[str]:
    """In "Gold customers" or "Online orders" the count word names who, not what to measure."""
    unique = list(dict.fromkeys(metrics))
    if len(unique) < 2:
        return unique
    model = p.context.model
    for i, h in enumerate(hits[1:], start=1):
        prev = hits[i - 1]
        if prev.end != h.start or prev.kind != "value" or h.kind != "metric":
            continue
        name = _first(h, "metric").name
        if name in unique and "COUNT" in (model.metrics[name].sql or "").upper() and len(unique) > 1:
            unique.remove(name)
    return unique


def _flag(flags: set[str], name: str, m: re.Match[str]) -> str:
    flags.add(name)
    return " " + f"zz{name}zz" + " "


_GRAIN_ADJECTIVES = {"daily", "weekly", "monthly", "quarterly", "yearly", "annual", "annually"}


def _refuse(text: str, question: str) -> None:
    verb = change_verb(text)
    if verb:
        raise QueryRefused(
            f"I only read data; I will not {verb} anything ({question.strip()!r})",
            "ask a question about the data, e.g. 'revenue by region in 2024'; changes go through ingest",
        )
    o = _OUT_OF_SCOPE.search(text)
    if o:  # a refusal, not a parse failure: rephrasing will not help, the data does not hold it
        raise QueryRefused(
            f"'{o.group(0)}' is outside what the retail data can answer",
            "I can answer questions about past sales, e.g. 'revenue by region last year', "
            "'top 5 products by profit in 2024', 'monthly revenue trend for 2023'",
        )


def _token_span(text: str, start: int, end: int) -> range:
    first = text[:start].count(" ") if start else 0
    last = text[:end].count(" ")
    return range(first, last + 1)


def _first(h: Hit, kind: str) -> Entry:
    return next(e for e in h.entries if e.kind == kind)


def _after_marker(p: _Parse, h: Hit, hits: list[Hit]) -> bool:
    """A dimension is a breakdown when "by/per/each/which/top N/best ..." comes right before it."""
    j = h.start - 1
    superlative = False
    for _ in range(5):
        if j < 0:
            break
        tok = p.tokens[j]
        if tok in GROUP_MARKERS:
            return True
        if any(x.start <= j < x.end and x.kind == "metric" for x in hits):
            pass  # "most profitable channel", "highest revenue region"
        elif tok in DESC_WORDS or tok in ASC_WORDS:
            superlative = True
        elif not (
            tok in ("the", "a", "an", "of", "its", "their", "our")
            or tok.isdigit()
            or tok in NUMBER_WORDS
            or tok in RANK_ADJECTIVES
        ):
            break
        j -= 1
    return superlative


def _pick_value(h: Hit, hits: list[Hit], i: int, p: _Parse) -> Entry:
    """Choose the dimension of an ambiguous value ("Online": channel or store type)."""
    values = [e for e in h.entries if e.kind == "value"]
    if len(values) == 1:
        return values[0]
    neighbours = [x for x in hits if x.start == h.end or x.end == h.start]
    for n in neighbours:
        for e in n.entries:
            for v in values:
                if e.kind == "dimension" and e.name == v.name:
                    return v
    model = p.context.model
    fact = model.fact
    # "Online stores": the neighbouring word lives on the stores table, so does store_type
    for n in neighbours:
        for e in n.entries:
            home = model.metrics[e.name].table if e.kind == "metric" else model.dimensions[e.name].table
            for v in values:
                if home != fact and model.dimensions[v.name].table == home:
                    return v
    ranked = sorted(values, key=lambda v: model.dimensions[v.name].table != fact)
    p.notes.append(f"'{ranked[0].value}' read as {ranked[0].name.replace('_', ' ')}")
    return ranked[0]


def _numeric_filters(p: _Parse) -> list[Filter]:
    """ "discount above 20%", "quantity of at least 3": filters on numeric dimensions."""
    model = p.context.model
    out: list[Filter] = []
    ops = "|".join(sorted(_COMPARISON_OPS, key=len, reverse=True))
    for name, d in model.dimensions.items():
        if d.kind != "number":
            continue
        names = "|".join(
            sorted({re.escape(normalise(s)) for s in [name.replace("_", " "), *d.synonyms]}, key=len, reverse=True)
        )
        patterns = [
            rf"\b({names})s?(?: of| rate| level)? ({ops}) (\d+(?:\.\d+)?)( %| percent)?",
            rf"\b({ops}) (\d+(?:\.\d+)?)( %| percent)? ({names})\b",
        ]
        for k, pat in enumerate(patterns):
            for m in re.finditer(pat, p.text):
                span = _token_span(p.text, m.start(), m.end())
                if any(i in p.used for i in span):
                    continue
                op_word, number, pct = (m.group(2), m.group(3), m.group(4)) if k == 0 else m.group(1, 2, 3)
                value = float(number)
                if d.unit == "fraction" and (pct or value > 1):
                    value /= 100
                out.append(Filter(dimension=name, op=_COMPARISON_OPS[op_word], values=[value]))  # type: ignore[arg-type]
                p.used.update(span)
        for m in re.finditer(rf"\b(discounted|on promotion|on sale|with a ({names}))\b", p.text):
            if d.unit != "fraction":
                break
            span = _token_span(p.text, m.start(), m.end())
            if any(i in p.used for i in span):
                continue
            out.append(Filter(dimension=name, op=">", values=[0.0]))
            p.used.update(span)
    return out


def _share_intent(p: _Parse) -> bool:
    """A share word ("share of", "percent of", "contribute"); every one is accounted for, not just the first."""
    found = False
    for i, tok in enumerate(p.tokens):
        if i in p.used:
            continue
        after_of = i + 1 < len(p.tokens) and p.tokens[i + 1] == "of"
        as_unit = tok in ("percent", "percentage") and i and p.tokens[i - 1] in ("in", "a", "as")  # "in percent"
        if tok in SHARE_WORDS and (after_of or as_unit or tok.startswith("contribut")):
            p.used.add(i)
            found = True
    return found


def _share_filter(p: _Parse, numeric: list[Filter], values: list[tuple[Hit, Entry]]) -> Filter | None:
    if numeric:
        return numeric[0]
    if not values:
        return None
    chosen = values[-1]
    for h, e in values:
        before = p.tokens[h.start - 1] if h.start else ""
        if before in ("from", "via", "through", "by", "in", "on"):
            chosen = (h, e)
            break
    # all values of that dimension named together ("from Online and Mobile") form the part
    dim = chosen[1].name
    part = [str(e.value) for _, e in values if e.name == dim]
    return Filter(dimension=dim, op="in", values=list(dict.fromkeys(part)))


def _top_n(text: str) -> tuple[int | None, str | None]:
    m = _TOP_N.search(text)
    if m:
        word, n = m.group(1), m.group(2)
        count = int(n) if n.isdigit() else NUMBER_WORDS[n]
        return count, ("asc" if word in ("bottom", "worst", "lowest", "smallest") else "desc")
    m = _N_TOP.search(text)
    if m:
        return int(m.group(1)), ("asc" if m.group(2) in ("bottom", "worst", "lowest", "smallest") else "desc")
    return None, None


def _time(
    p: _Parse,
    times: list[TimeMention],
    flags: set[str],
    growth: bool,
    versus: bool,
    comparison: Comparison | None,
    groups: list[str],
    filters: list[Filter],
) -> tuple[TimeRange | None, Comparison | None]:
    latest = p.context.latest_date
    if not times:
        if "qoq" in flags or (growth and "quarter" in p.tokens and not groups):
            return _latest_quarter(p, latest), Comparison(kind="qoq")
        if "mom" in flags or (growth and "month" in p.tokens and not groups):
            return _latest_month(p, latest), Comparison(kind="mom")
        if growth or "yoy" in flags:
            if comparison is not None:
                return None, comparison
            return _latest_year(p, latest), Comparison(kind="yoy")
        return None, comparison
    if len(times) > 1:
        a, b = times[0].range, times[1].range
        if a and b and (growth or versus or flags) and _same_shape(a, b):
            early, late = sorted((a, b), key=lambda r: r.bounds()[0])
            yearly = late.year == (early.year or 0) + 1 and late.month == early.month and late.quarter == early.quarter
            kind = "yoy" if yearly else "qoq" if late.quarter else "mom"
            if kind == "qoq" and previous_quarter(late.year or 0, late.quarter or 1) != (early.year, early.quarter):
                raise PlanningError(
                    "I can compare a quarter with the one before it or the same quarter a year before, not these two",
                    "ask for each quarter separately, or e.g. 'Q2 2024 vs Q1 2024'",
                )
            if kind == "mom" and not (late.month and _next_month(early) == (late.year, late.month)):
                raise PlanningError(
                    "I can compare a period with the one a year or a month before it, not these two",
                    "ask for each period separately, or e.g. 'Q4 2024 vs Q4 2023'",
                )
            return late, Comparison(kind=kind)  # type: ignore[arg-type]
        if all(t.years and not t.span for t in times):
            return _several_years(p, sorted({y for t in times for y in t.years}), growth or versus, groups, filters)
        named = ", ".join(t.range.describe() for t in times if t.range)
        raise PlanningError(
            f"several periods are named ({named}) and I do not know how to combine them",
            "ask for one period, a span ('between March and June 2024'), or a comparison ('Q4 2024 vs Q4 2023')",
        )
    t = times[0]
    tr = t.range
    if len(t.years) == 2:
        if growth or versus or "yoy" in flags:
            return None, Comparison(kind="vs", dimension="year", members=[min(t.years), max(t.years)])
        if not t.span:
            return _several_years(p, sorted(t.years), False, groups, filters)
    if "qoq" in flags:
        if tr is None or not tr.quarter:
            if tr is not None and tr.year is not None and not tr.month and not tr.start:
                raise PlanningError(
                    f"quarter over quarter needs a quarter, and {tr.describe()} is a whole year",
                    f"name a quarter, e.g. 'Q4 {tr.year} vs the previous quarter'",
                )
            tr = _latest_quarter(p, latest) if tr is None else tr
        if not tr.quarter:
            raise PlanningError("quarter over quarter needs a quarter", "name one, e.g. 'in Q2 2024'")
        return tr, Comparison(kind="qoq")
    if "mom" in flags:
        if tr is None or not tr.month:
            tr = _latest_month(p, latest) if tr is None or tr.year is None else tr
        return tr, Comparison(kind="mom")
    single = tr is not None and tr.year is not None and not (tr.end_year and tr.end_year != tr.year)
    if (growth or "yoy" in flags) and comparison is None and single:
        return tr, Comparison(kind="yoy")
    return tr, comparison


def _several_years(
    p: _Parse, years: list[int], compare: bool, groups: list[str], filters: list[Filter]
) -> tuple[TimeRange | None, Comparison | None]:
    """ "2022 and 2024", "in 2022, 2023 and 2024": one row per year (or growth between the ends)."""
    if compare:
        return None, Comparison(kind="vs", dimension="year", members=[years[0], years[-1]])
    if "year" not in groups:
        groups.append("year")
    p.notes.append("several years named: one row per year")
    if years == list(range(years[0], years[-1] + 1)):
        return TimeRange(year=years[0], end_year=years[-1]), None
    filters.append(Filter(dimension="year", op="in", values=list(years)))
    return None, None


def _same_shape(a: TimeRange, b: TimeRange) -> bool:
    return bool(a.year and b.year) and bool(a.quarter) == bool(b.quarter) and bool(a.month) == bool(b.month)


def _next_month(r: TimeRange) -> tuple[int, int]:
    y, m = r.year or 0, r.month or 1
    return (y, m + 1) if m < 12 else (y + 1, 1)


def _latest_year(p: _Parse, latest: dt.date | None) -> TimeRange:
    if latest is None:
        raise PlanningError(
            "growth needs a period and the latest date of the data is unknown", "name a year, e.g. 'growth in 2024'"
        )
    year = latest.year if latest == dt.date(latest.year, 12, 31) else latest.year - 1
    _note_latest(p, latest, str(year), "year", year != latest.year, f"{latest.year} is incomplete")
    return TimeRange(year=year, label=f"{year} (latest complete year in the data)")


def _latest_quarter(p: _Parse, latest: dt.date | None) -> TimeRange:
    if latest is None:
        raise PlanningError("quarter over quarter needs a quarter", "name one, e.g. 'in Q2 2024'")
    newest = (latest.month - 1) // 3 + 1
    partial = latest != _period_end(latest.year, 3 * newest)
    year, quarter = previous_quarter(latest.year, newest) if partial else (latest.year, newest)
    _note_latest(p, latest, f"Q{quarter} {year}", "quarter", partial, f"Q{newest} {latest.year} is incomplete")
    return TimeRange(year=year, quarter=quarter, label=f"Q{quarter} {year} (latest complete quarter in the data)")


def _latest_month(p: _Parse, latest: dt.date | None) -> TimeRange:
    if latest is None:
        raise PlanningError("month over month needs a month", "name one, e.g. 'in March 2024'")
    year, month = latest.year, latest.month
    partial = latest != _period_end(year, month)
    if partial:
        year, month = previous_month(year, month)
    _note_latest(p, latest, f"{dt.date(year, month, 1):%B %Y}", "month", partial, f"{latest:%B %Y} is incomplete")
    return TimeRange(
        year=year, month=month, label=f"{dt.date(year, month, 1):%B %Y} (latest complete month in the data)"
    )


def _period_end(year: int, month: int) -> dt.date:
    """Last day of ``month`` (the last month of a year or quarter closes that period too)."""
    first_next = dt.date(year + month // 12, month % 12 + 1, 1)
    return first_next - dt.timedelta(days=1)


def _note_latest(p: _Parse, latest: dt.date, used: str, unit: str, partial: bool, why: str) -> None:
    """Say which period was assumed, and why the newest one was skipped when it was.

    Comparing a partial period with a whole one would report a fall that is only missing
    days, so relative comparisons use the latest *complete* period.
    """
    if partial:
        p.notes.append(f"no {unit} named: using {used}, the latest complete {unit} ({why}: data ends {latest})")
    else:
        p.notes.append(f"no {unit} named: using the latest {unit} in the data, {used}")


def _check_leftovers(p: _Parse) -> None:
    """Words the parser could not place: a near miss is an error, anything else lowers confidence."""
    known = p.lexicon.all_phrases()
    vocab = [str(v) for vals in p.lexicon.vocabulary.values() for v in vals]
    leftovers = [
        tok
        for i, tok in enumerate(p.tokens)
        if not (i in p.used or tok in FILLER or tok.startswith("zz") or len(tok) < 3 or re.fullmatch(r"[\d.%]+", tok))
    ]
    for word in re.findall(r"(?<![.?!]\s)(?<!^)\b([A-Z][a-zA-Z]+)\b", p.question.strip()):
        if normalise(word) in leftovers:
            raise PlanningError(
                f"I do not know {word!r}: it is not a value in the data",
                did_you_mean(word, vocab) or "known values include " + ", ".join(sorted(vocab)[:12]),
            )
    ignored = []
    for tok in leftovers:
        suggestion = did_you_mean(tok, known + vocab)
        if suggestion and not _inflection_of_known(tok, known):
            raise PlanningError(f"I do not know the word {tok!r} in this question", suggestion)
        ignored.append(tok)
    if ignored:  # a word left over may change the question: show nothing rather than guess
        understood = [" ".join(p.tokens[h.start : h.end]) for h in p.hits] + [p.text[t.start : t.end] for t in p.times]
        raise PlanningError(
            f"I understood {', '.join(understood) or 'nothing'}, but not {', '.join(repr(w) for w in ignored)}",
            "rephrase with the data's own words (metrics, dimensions, values), e.g. 'revenue by region in 2024'",
            not_understood=ignored,
        )


def _inflection_of_known(tok: str, known: list[str]) -> bool:
    """'purchase' next to the known 'purchases' is a word we ignore, not a typo to report."""
    pool = set(known)
    return any(v in pool for v in (tok + "s", tok + "es", tok[:-1], tok[:-2], tok + "d", tok[:-1] + "ies"))


def _not_understood(p: _Parse) -> None:
    raise PlanningError(
        f"I do not understand {p.question.strip()!r}: it names no metric, dimension or value of the data",
        "try e.g. 'revenue by region in 2024', 'top 5 products by profit last year', "
        "'what share of revenue came from Online?', 'monthly revenue trend for 2023'",
    )


def _period_text(q: SemanticQuery) -> str:
    return q.describe_period()
