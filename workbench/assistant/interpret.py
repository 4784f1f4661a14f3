"""The plan read back as one plain sentence: "Top 3 regions by profit, 2024, highest first".

Every answer carries it (CLI, ``--json`` ``interpretation``, widget, dashboard chat) so the
analyst sees *what* was answered before trusting the number. It is rendered from the semantic
query alone, never from the question text, so a misunderstanding shows up as a sentence that
does not match the question instead of hiding behind a plausible figure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.semantic.query import Filter, SemanticQuery

if TYPE_CHECKING:
    from workbench.semantic.model import SemanticModel

_OPS = {
    "=": "is",
    "in": "is",
    "!=": "is not",
    "not in": "is not",
    ">": "above",
    ">=": "at least",
    "<": "below",
    "<=": "at most",
}


def words(name: str) -> str:
    """A model name as words ("profit_margin" -> "profit margin")."""
    return name.replace("_", " ")


def plural(name: str) -> str:
    """English plural of a dimension name, good enough for model names ("category" -> "categories")."""
    w = words(name)
    if w.endswith("y") and not w.endswith(("ay", "ey", "oy", "uy")):
        return w[:-1] + "ies"
    if w.endswith(("s", "x", "ch", "sh")):
        return w + "es"
    return w + "s"


def _value_list(values: list[object]) -> str:
    shown = [str(v) for v in values]
    if len(shown) <= 1:
        return "".join(shown)
    return ", ".join(shown[:-1]) + " or " + shown[-1]


def describe_filter(f: Filter, model: SemanticModel | None = None) -> str:
    """ "channel is Online or Mobile", "discount above 0.2", "year between 2022 and 2024"."""
    if f.op == "between":
        return f"{words(f.dimension)} between {f.values[0]} and {f.values[1]}"
    return f"{words(f.dimension)} {_OPS[f.op]} {_value_list(list(f.values))}"


def _what(q: SemanticQuery, model: SemanticModel | None) -> str:
    """The measured part: "profit", "revenue and profit", "share of revenue from channel Online"."""
    growth = {m for m in q.metrics if model is not None and m in model.metrics and model.metrics[m].growth_of}
    named = _entity_names(model)
    names = [named.get(m, words(m)) for m in q.metrics if not (q.comparison is not None and m in growth)]
    names = names or [words(q.metrics[0])]
    if q.per:
        names = [f"{n} per {named.get(q.per, words(q.per)).removesuffix('s')}" for n in names]
    what = " and ".join(names) if len(names) <= 2 else ", ".join(names[:-1]) + " and " + names[-1]
    if q.share is not None:
        what = f"share of {what} where {describe_filter(q.share)}"
    elif q.share_of_total:
        what = f"share of total {what}"
    c = q.comparison
    if c is not None and c.kind in ("yoy", "mom", "qoq"):
        span = {"yoy": "year over year", "mom": "month over month", "qoq": "quarter over quarter"}[c.kind]
        what = f"{what} growth {span}"
    elif c is not None and c.kind == "vs" and c.dimension == "year":
        what = f"{what} growth from {c.members[0]} to {c.members[1]}"
    elif c is not None and c.kind == "vs":
        what = f"{what} for {words(c.dimension or '')} {c.members[0]} vs {c.members[1]}"
    return what


def _entity_names(model: SemanticModel | None) -> dict[str, str]:
    """ "customers on file" vs "customers who bought": the two counts of one entity, told apart."""
    if model is None:
        return {}
    from workbench.assistant.planners.passes import entity_counts

    out: dict[str, str] = {}
    for pair in entity_counts(model):
        out[pair.on_file] = f"{pair.entity} on file"
        out[pair.active] = f"{pair.entity} who bought"
    return out


def _ranked(q: SemanticQuery) -> str | None:
    """ "Top 3 regions by profit" / "The region with the lowest profit"; None when not ranked."""
    if not (q.order and q.limit and q.dimensions):
        return None
    first = q.order[0]
    desc = first.direction == "desc"
    by = "growth" if first.by == "growth" else words(first.by)
    dim = q.dimensions[0]
    extra = f" (per {', '.join(words(d) for d in q.dimensions[1:])})" if len(q.dimensions) > 1 else ""
    if q.limit == 1:
        return f"The {words(dim)} with the {'highest' if desc else 'lowest'} {by}{extra}"
    return f"{'Top' if desc else 'Bottom'} {q.limit} {plural(dim)} by {by}{extra}"


def _additive(metric: str, model: SemanticModel | None) -> bool:
    """A sum or a count (distinct too) reads as "Total ..."; an average or a ratio does not."""
    if model is None or metric not in model.metrics:
        return False
    m = model.metrics[metric]
    return m.additive or m.counts  # "total customers who bought"


def interpret(q: SemanticQuery, model: SemanticModel | None = None) -> str:
    """The whole query in one sentence: what, broken down by what, filtered how, for which period."""
    what = _what(q, model)
    ranked = _ranked(q)
    if ranked is not None:
        plain = len(q.metrics) == 1 and q.share is None and not q.share_of_total and q.comparison is None
        head = ranked if plain else f"{ranked}: {what}"
    elif q.dimensions:
        head = f"{what[0].upper()}{what[1:]} by {' and '.join(words(d) for d in q.dimensions)}"
    elif _additive(q.metrics[0], model) and q.share is None and q.comparison is None and q.per is None:
        head = f"Total {what}"
    else:
        head = what[0].upper() + what[1:]
    parts = [head]
    if q.filters:
        parts.append("where " + " and ".join(describe_filter(f) for f in q.filters))
    if q.having:
        parts.append("only rows with " + " and ".join(f"{words(h.metric)} {_OPS[h.op]} {h.value:g}" for h in q.having))
    parts.append(q.describe_period())
    if q.order and q.limit and q.dimensions:
        parts.append("highest first" if q.order[0].direction == "desc" else "lowest first")
    elif q.order:
        side = "highest" if q.order[0].direction == "desc" else "lowest"
        parts.append(f"sorted by {words(q.order[0].by)}, {side} first")
    return ", ".join(parts)
