"""The coverage check: every meaningful part of the question must be accounted for by the plan.

A plan that drops a part of the question ("which 4 channels" answered as a top-1, "store-type
revenue" answered as one total) produces a plausible wrong number, the one outcome an analyst
cannot detect. So before anything runs, the question is read again *independently of the
planner that produced the plan* (offline parser or LLM): numbers, metric, dimension and value
words of the semantic model are found, and each must show up in the semantic query. A part
left over means no result is shown: the answer says what was understood and what was not.

The recognisers use only the semantic model and the value vocabulary (via the lexicon) and
general English (time expressions, number words), so the same check works on any model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp

from workbench.assistant.planners.base import PlanContext
from workbench.assistant.planners.dates import NUMBER_WORDS, find_time
from workbench.assistant.planners.lexicon import Hit, Lexicon, normalise
from workbench.assistant.planners.passes import ACTIVE_WORDS, VERB_NOUNS, entity_counts
from workbench.assistant.planners.words import ASC_WORDS, DESC_WORDS, GROWTH_WORDS, SHARE_WORDS
from workbench.errors import PlanningError
from workbench.semantic.query import SemanticQuery

#: comparison phrases that the time parser does not see, removed before it runs
_COMPARE = re.compile(
    r"\b(?:year over year|year on year|month over month|month on month|quarter over quarter|quarter on quarter"
    r"|(?:vs|versus|against|compared to|compared with|over) (?:the )?(?:same period )?(?:last|previous|prior|a)"
    r" (?:year|month|quarter)|same period last year)\b"
)


@dataclass
class Part:
    """One recognised part of the question: its words and what the plan must hold for it."""

    text: str
    kind: str  # "number" | "metric" | "dimension" | "value" | "ranking" | "share" | "growth"
    names: set[str] = field(default_factory=set)
    #: followed by a verb: who acted ("customers spent"), not what to measure
    subject: bool = False


@dataclass
class Coverage:
    """The parts of a question, split into the ones the plan holds and the ones it does not."""

    understood: list[Part] = field(default_factory=list)
    missing: list[Part] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing

    def explain(self) -> str:
        """ "understood revenue, region; not understood: '4'" for the answer text."""
        got = ", ".join(dict.fromkeys(p.text for p in self.understood)) or "nothing"
        lost = ", ".join(dict.fromkeys(repr(p.text) for p in self.missing))
        return f"I understood {got}, but the plan does not account for {lost}"


def _text(question: str) -> str:
    """The question as the recognisers read it: normalised, comparison phrases taken out."""
    return re.sub(r"\s+", " ", _COMPARE.sub(" ", normalise(question))).strip()


def question_parts(question: str, context: PlanContext, lexicon: Lexicon) -> list[Part]:
    """The meaningful parts of ``question``: numbers outside dates, metric, dimension and value words."""
    text = _text(question)
    tokens = text.split()
    blocked: set[int] = set()
    for t in find_time(text, context.latest_date):
        first = text[: t.start].count(" ") if t.start else 0
        blocked.update(range(first, text[: t.end].count(" ") + 1))
    parts = [_part(h, tokens) for h in lexicon.scan(tokens, blocked)]
    taken = blocked | {i for h in lexicon.scan(tokens, blocked) for i in range(h.start, h.end)}
    for m in _THRESHOLD.finditer(text):  # "more than 30%", "at least 3": a filter, not a ranking
        taken.update(range(text[: m.start()].count(" "), text[: m.end()].count(" ") + 1))
    for i, tok in enumerate(tokens):
        if i in taken:
            continue
        intent = _intent(tok)
        if intent == "share" and i and re.fullmatch(r"\d+(?:\.\d+)?", tokens[i - 1]):
            continue  # "20 %" is a number's unit, held with the number
        if intent:
            parts.append(Part(tok, intent, {intent}))
        elif re.fullmatch(r"\d+(?:\.\d+)?", tok):
            parts.append(Part(tok, "number", {tok}))
        elif tok in NUMBER_WORDS and tok not in ("a", "one") and _before_noun(tokens, i, lexicon):
            parts.append(Part(tok, "number", {str(NUMBER_WORDS[tok])}))
    return parts


_THRESHOLD = re.compile(
    r"\b(?:more|less|fewer|greater|higher|lower) than\b|\bat (?:least|most)\b|\b(?:above|below|over|under) \d"
)


def _intent(tok: str) -> str | None:
    """Ranking, share and growth words: each asks for a shape of answer the plan must have."""
    if tok in SHARE_WORDS and tok not in ("part", "portion"):
        return "share"
    if tok in DESC_WORDS or tok in ASC_WORDS:
        return "ranking"
    if tok in GROWTH_WORDS:
        return "growth"
    return None


def _before_noun(tokens: list[str], i: int, lexicon: Lexicon) -> bool:
    """ "three channels", "the five least profitable categories": a count, not "which one"."""
    return any(lexicon.index.get((tokens[j],)) for j in range(i + 1, min(i + 5, len(tokens))))


def _part(h: Hit, tokens: list[str]) -> Part:
    text = " ".join(tokens[h.start : h.end])
    names = {str(e.value) if e.kind == "value" else e.name for e in h.entries}
    after = tokens[h.end] if h.end < len(tokens) else ""
    return Part(text, h.kind, names, subject=after in VERB_NOUNS or after in ACTIVE_WORDS)


def _held(q: SemanticQuery) -> dict[str, set[str]]:
    """What the query holds, by kind of part."""
    values: set[str] = set()
    dims = set(q.dimensions)
    numbers: set[float] = set()
    for f in [*q.filters, *([q.share] if q.share else [])]:
        dims.add(f.dimension)
        values.update(str(v).lower() for v in f.values)
        numbers.update(float(v) for v in f.values if isinstance(v, (int, float)))
    if q.comparison is not None:
        values.update(str(v).lower() for v in q.comparison.members)
        dims.add(q.comparison.dimension or "")
    if q.limit:
        numbers.add(float(q.limit))
    tr = q.time_range
    if tr is not None:
        dims.update(k for k in ("year", "quarter", "month", "date") if getattr(tr, k, None) is not None)
    metrics = set(q.metrics) | {o.by for o in q.order} | {h.metric for h in q.having} | {q.per or ""}
    return {
        "metric": metrics,
        "dimension": dims,
        "value": values,
        "number": {f"{n:g}" for n in numbers} | {f"{n * 100:g}" for n in numbers},
    }


def period_parts(question: str, context: PlanContext) -> list[Part]:
    """The question's time expressions, each with the years any of which accounts for it.

    "2022", "Q4 2023", "from 2022 to 2024", "last year" (resolved against the data's latest date,
    as the planners do). A plan for another year than the one asked is a plausible wrong number,
    which is why periods are checked like every other part, for both planners.
    """
    text = _text(question)
    parts = []
    for m in find_time(text, context.latest_date):
        years = set(m.years)
        r = m.range
        if r is not None and r.year is not None:
            years.update(range(r.year, (r.end_year or r.year) + 1))
        if r is not None and r.start is not None and r.end is not None:
            years.update(range(r.start.year, r.end.year + 1))
        if years:
            parts.append(Part(text[m.start : m.end], "period", {str(y) for y in years}))
    return parts


def _check_periods(out: Coverage, question: str, context: PlanContext, years: set[str], timeless: bool = False) -> None:
    """Each time expression of the question is held when the plan reads one of its years."""
    for part in period_parts(question, context):
        (out.understood if part.names & years or timeless else out.missing).append(part)


def _plan_years(q: SemanticQuery) -> set[str]:
    """Every year the plan reads (its range, year filters, both sides of a comparison)."""
    years: set[int] = set()
    tr, c = q.time_range, q.comparison
    if tr is not None and tr.year is not None:
        years.update(range(tr.year, (tr.end_year or tr.year) + 1))
        if c is not None and c.kind in ("yoy", "qoq", "mom"):
            years.add(tr.year - 1)  # the previous period (Q1's previous quarter is last year's Q4)
    if tr is not None and tr.start is not None and tr.end is not None:
        years.update(range(tr.start.year, tr.end.year + 1))
    for f in q.filters:
        if f.dimension == "year":
            years.update(int(str(v)) for v in f.values if str(v).isdigit())
    if c is not None and c.kind == "vs" and c.dimension == "year":
        years.update(int(str(v)) for v in c.members if str(v).isdigit())
    return {str(y) for y in years}


def check(question: str, query: SemanticQuery, context: PlanContext, lexicon: Lexicon) -> Coverage:
    """Split the question's parts into the ones ``query`` accounts for and the ones it drops."""
    held = _held(query)
    growth = query.comparison is not None and query.comparison.kind != "vs"
    out = Coverage()
    # entities on file are counted as they are today: the planner drops the period and says so
    timeless = all(context.model.on_file(m) for m in query.metrics if m in context.model.metrics)
    _check_periods(out, question, context, _plan_years(query), timeless)
    parts = question_parts(question, context, lexicon)
    for i, part in enumerate(parts):
        if part.kind == "value":
            ok = bool({n.lower() for n in part.names} & held["value"])
        elif part.kind == "number":
            ok = bool(part.names & held["number"])
        elif part.kind in ("ranking", "share", "growth"):
            ok = _shape(part.kind, query, context)
        else:
            names = part.names | {b for a, b in _partners(context) if a in part.names}
            ok = bool(names & (held["metric"] | held["dimension"]))
            ok = ok or _context_word(part, parts, i, held) or (growth and _is_growth(part, context))
            ok = ok or (part.kind == "metric" and part.subject)
        (out.understood if ok else out.missing).append(part)
    return out


def _partners(context: PlanContext) -> list[tuple[str, str]]:
    """ "customers" may be counted on file or as buyers: either count accounts for the word."""
    pairs = entity_counts(context.model)
    return [(p.on_file, p.active) for p in pairs] + [(p.active, p.on_file) for p in pairs]


def _shape(kind: str, q: SemanticQuery, context: PlanContext) -> bool:
    """Does the plan have the shape the word asks for (an order, a share, a comparison)?"""
    if kind == "ranking":
        return bool(q.order)
    if kind == "share":
        percent = any(
            context.model.metrics[m].format in ("percent", "fraction") for m in q.metrics if m in context.model.metrics
        )
        return q.share is not None or q.share_of_total or percent
    growth = any(context.model.metrics[m].growth_of for m in q.metrics if m in context.model.metrics)
    return q.comparison is not None or growth


def _context_word(part: Part, parts: list[Part], i: int, held: dict[str, set[str]]) -> bool:
    """A metric or dimension word next to a held value names whose value it is ("Gold customers")."""
    neighbours = [parts[j] for j in (i - 1, i + 1) if 0 <= j < len(parts)]
    return any(n.kind == "value" and {x.lower() for x in n.names} & held["value"] for n in neighbours)


def _is_growth(part: Part, context: PlanContext) -> bool:
    return any(name in context.model.metrics and context.model.metrics[name].growth_of for name in part.names)


def check_sql(question: str, sql: str, context: PlanContext, lexicon: Lexicon) -> Coverage:
    """The same check for a plan written as SQL (an LLM's): each part must show in the statement.

    Looser than for a semantic query (a column may be named differently), but the parts that
    make a plausible wrong number are checked: the years asked, the values named (as string
    literals), the numbers (a literal or the LIMIT), ranking (ORDER BY), share and growth (a
    division), and metric and dimension words (a column their model definition reads).
    """
    tree = sqlglot.parse_one(sql, read="duckdb")
    strings = {str(lit.this).lower() for lit in tree.find_all(exp.Literal) if lit.is_string}
    numbers = {f"{float(lit.this):g}" for lit in tree.find_all(exp.Literal) if _numeric(lit)}
    numbers |= {f"{float(n) * 100:g}" for n in numbers}  # "20%" may be written 0.2
    years = {n for n in numbers if n.isdigit() and 1900 <= int(n) <= 2100}
    years |= {y for s in strings for y in re.findall(r"\b((?:19|20)\d\d)-\d\d", s)}
    columns = {c.name.lower() for c in tree.find_all(exp.Column)}
    divides = tree.find(exp.Div) is not None
    out = Coverage()
    _check_periods(out, question, context, years)
    parts = question_parts(question, context, lexicon)
    held_values = {
        i for i, p in enumerate(parts) if p.kind == "value" and any(n.lower() in s for n in p.names for s in strings)
    }
    for i, part in enumerate(parts):
        if part.kind == "value":
            ok = i in held_values
        elif part.kind == "number":
            ok = bool(part.names & numbers)
        elif part.kind == "ranking":
            ok = tree.find(exp.Order) is not None
        elif part.kind in ("share", "growth"):
            ok = divides
        else:
            ok = part.subject or bool(_sql_columns(part, context) & columns) or _counts(part, context, tree)
            ok = ok or bool({i - 1, i + 1} & held_values)  # "Gold customers": the word names the value's column
        (out.understood if ok else out.missing).append(part)
    return out


def _numeric(lit: exp.Literal) -> bool:
    try:
        float(lit.this)
    except (TypeError, ValueError):
        return False
    return not lit.is_string


def _sql_columns(part: Part, context: PlanContext) -> set[str]:
    """The columns the model's definitions of a metric or dimension word read."""
    model, out = context.model, set()
    for name in part.names | {b for a, b in _partners(context) if a in part.names}:
        out.add(name.lower())
        metric = model.metrics.get(name)
        dim = model.dimensions.get(name)
        for sql in (metric.sql if metric else None, dim.sql if dim else None):
            if sql:
                out |= {c.name.lower() for c in sqlglot.parse_one(sql, read="duckdb").find_all(exp.Column)}
        if dim is not None and dim.column:
            out.add(dim.column.lower())
    return out


def _counts(part: Part, context: PlanContext, tree: exp.Expression) -> bool:
    """A count word ("transactions", "customers on file") is held by a COUNT in the statement."""
    metrics = [context.model.metrics[n] for n in part.names if n in context.model.metrics]
    return any(m.counts for m in metrics) and tree.find(exp.Count) is not None


def require_sql(question: str, sql: str, context: PlanContext, lexicon: Lexicon) -> None:
    """Raise :class:`PlanningError` (nothing runs) when a SQL plan drops a part of the question."""
    hint = "the statement must hold every part of the question: its years, values, numbers and breakdowns"
    _complete_or_raise(check_sql(question, sql, context, lexicon), hint)


def require(question: str, query: SemanticQuery, context: PlanContext, lexicon: Lexicon) -> None:
    """Raise :class:`PlanningError` (nothing runs) when the plan drops a part of the question."""
    hint = "rephrase naming the part directly, e.g. 'top 4 channels by revenue' or 'revenue by store type'"
    _complete_or_raise(check(question, query, context, lexicon), hint)


def _complete_or_raise(cov: Coverage, hint: str) -> None:
    if not cov.complete:
        raise PlanningError(
            cov.explain(),
            hint,
            understood=[p.text for p in cov.understood],
            not_understood=[p.text for p in cov.missing],
        )
