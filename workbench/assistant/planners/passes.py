"""Small passes of the offline parser, each one concern, each tested on its own.

They read only general English (verbs, number words, ranking words) and the semantic model
(which metric counts which entity, on which table), never a list of retail words, so the same
passes work on a model drafted from a user's own tables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from workbench.assistant.planners.dates import NUMBER_WORDS
from workbench.assistant.planners.lexicon import Hit, Lexicon
from workbench.assistant.planners.words import ASC_WORDS, DESC_WORDS, RANK_ADJECTIVES
from workbench.errors import PlanningError
from workbench.semantic.model import MetricDef, SemanticModel

#: verbs that stand for a quantity: the noun the model's synonyms are expected to hold.
#: "how much did we sell" asks for sales (money); "how many did we sell" for units.
VERB_NOUNS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("sell", "sells", "sold", "selling"), ("sales", "revenue")),
    **dict.fromkeys(("spend", "spends", "spent", "spending"), ("spend", "sales", "revenue")),
    **dict.fromkeys(
        ("earn", "earns", "earned", "earning", "take", "took", "bring", "brings", "brought"),
        ("income", "takings", "revenue"),
    ),
    **dict.fromkeys(("buy", "buys", "bought", "purchase", "purchased"), ("sales", "revenue")),
    **dict.fromkeys(("cost", "costs"), ("cost",)),
}
#: with "how many", a selling verb counts things, not money
COUNT_NOUNS = ("units sold", "items sold", "units", "quantity")
#: words that say an entity was active in the period (bought, ordered ...), not merely on file
ACTIVE_WORDS = frozenset(
    {"bought", "buy", "buying", "purchased", "purchase", "purchasing", "shopped", "shop", "shopping", "ordered",
     "order", "active", "spent", "spend", "transacted", "returning", "visited"}
)  # fmt: skip
#: words that say "on file": registered, in the catalog, that we have
ON_FILE_WORDS = frozenset({"registered", "file", "have", "catalog", "catalogue", "signed", "enrolled", "exist"})


#: "lost money", "made a loss", "unprofitable": the profit of each row is below zero
_LOSS = re.compile(
    r"\b(?:lost (?:us )?money|lose money|losing money|(?:made|make|making) a loss|loss making|at a loss|unprofitable"
    r"|in the red|negative profits?|with a loss|(?:had|have|has|posted|post|reported|report|showed|show) a loss)\b"
)


def loss_condition(text: str, lexicon: Lexicon) -> tuple[range, str] | None:
    """Token span of a "lost money" phrase and the model's profit metric (found by its name or synonym)."""
    m = _LOSS.search(text)
    if m is None:
        return None
    profit = next((e.name for e in lexicon.index.get(("profit",), []) if e.kind == "metric"), None)
    if profit is None:
        return None
    first = text[: m.start()].count(" ")
    return range(first, text[: m.end()].count(" ") + 1), profit


#: "paid by App", "sold through Online", "ordered in Mobile": the verb says how the value relates
_LINKS = frozenset({"by", "with", "via", "using", "through", "in", "on", "from", "at"})
_IRREGULAR = frozenset({"paid", "sold", "bought", "made", "spent", "done", "run", "shipped", "sent"})


def verbs_of_values(tokens: list[str], used: set[int], value_starts: list[int]) -> set[int]:
    """Positions of participles that only link a value to the question ("paid by App")."""
    out: set[int] = set()
    for s in value_starts:
        if s >= 2 and tokens[s - 1] in _LINKS and (s - 2) not in used:
            verb = tokens[s - 2]
            if verb in _IRREGULAR or (verb.endswith("ed") and len(verb) > 4):
                out.add(s - 2)
    return out


_AVERAGE = frozenset({"average", "avg", "mean"})


def ratio_per(
    tokens: list[str], hits: list[Hit], metrics: list[str], model: SemanticModel
) -> tuple[str, set[int]] | None:
    """ "revenue per order", "average profit per unit": the metric after "per" divides the others.

    Only a count-like metric of the facts can divide ("orders", "units", "customers who bought");
    returns it and the token positions it accounts for ("per", "average").
    """
    for h in hits:
        if h.kind != "metric" or h.start == 0 or tokens[h.start - 1] not in ("per", "each", "every"):
            continue
        names = [e.name for e in h.entries if e.kind == "metric"]
        fact = [n for n in names if model.metrics[n].table == model.fact and n in metrics]
        if not fact or len([m for m in metrics if m != fact[0]]) == 0:
            continue
        used = {h.start - 1} | {i for i, t in enumerate(tokens) if t in _AVERAGE}
        return fact[0], used
    return None


def verb_metric(tokens: list[str], used: set[int], lexicon: Lexicon) -> tuple[int, str] | None:
    """The metric a verb asks for when no metric word is in the question ("how much did we sell")."""
    how_many = any(tokens[i : i + 2] == ["how", "many"] for i in range(len(tokens)))
    for i, tok in enumerate(tokens):
        if i in used or tok not in VERB_NOUNS:
            continue
        nouns = COUNT_NOUNS if how_many and tok not in ("cost", "costs", "spend", "spent") else VERB_NOUNS[tok]
        for noun in nouns:
            entries = [e for e in lexicon.index.get(tuple(noun.split()), []) if e.kind == "metric"]
            if entries:
                return i, entries[0].name
    return None


def count_before(tokens: list[str], hits: list[Hit], grouped: list[Hit]) -> tuple[int, int] | None:
    """N anywhere in a ranking phrase: "which 4 channels", "the 3 least profitable categories".

    Returns the token index of N and N.
    """
    metric_at = {j for h in hits if h.kind == "metric" for j in range(h.start, h.end)}
    for h in grouped:
        j = h.start - 1
        while j >= 0 and (
            tokens[j] in DESC_WORDS or tokens[j] in ASC_WORDS or tokens[j] in RANK_ADJECTIVES or j in metric_at
        ):
            j -= 1
        if j >= 0 and tokens[j].isdigit():
            return j, int(tokens[j])
        if j >= 0 and tokens[j] in NUMBER_WORDS and tokens[j] not in ("a", "one"):
            return j, NUMBER_WORDS[tokens[j]]
    return None


def opens_clause(h: Hit, tokens: list[str]) -> bool:
    """The phrase is followed by a relative clause: "products that ...", "stores with the most ..."."""
    return h.end < len(tokens) and tokens[h.end] in ("that", "which", "who", "whose", "with")


def unlisted_entity(hits: list[Hit], tokens: list[str], metrics: list[str], model: SemanticModel) -> Hit | None:
    """ "customers with the highest revenue": a counted entity opening a clause asks for its members.

    The word only names a count (no breakdown lists the entity one by one, as for customers,
    whose names are personal data); read as a second metric it was declined with "these
    metrics live on different tables", which is not the reason.
    """
    if len(metrics) < 2:
        return None
    for h in hits:
        only_metric = all(e.kind == "metric" for e in h.entries)
        if only_metric and opens_clause(h, tokens) and counts_members(model.metrics[h.entries[0].name], model):
            return h
    return None


def counts_members(metric: MetricDef, model: SemanticModel) -> bool:
    """A count of an entity's members (distinct keys, or rows of its own table), not of fact rows.

    "orders with a discount" filters the fact's rows (an order is a row); "customers with ..." asks
    about members, each of many rows.
    """
    return metric.counts and (metric.counts_distinct or model.on_file(metric.name))


def entity_attributes(word: str, model: SemanticModel) -> list[str]:
    """Dimensions of the table the entity word names ("customers" -> segment, tier, city)."""
    tables = [t for t in model.tables if _singular(t) == _singular(word.split()[-1])]
    return [d.name for d in model.dimensions.values() if tables and d.table == tables[0]]


def clause_subject(h: Hit, tokens: list[str]) -> bool:
    """ "products that made a loss", "stores with ...": a dimension opening a relative clause is a breakdown."""
    return any(e.kind == "dimension" for e in h.entries) and opens_clause(h, tokens)


def drop_subjects(p_tokens: list[str], hits: list[Hit], metrics: list[str], model: SemanticModel) -> list[str]:
    """ "what did customers spend": a counted entity before a verb is who acted, not what to measure."""
    if len(metrics) < 2:
        return metrics
    out = list(metrics)
    for h in hits:
        after = p_tokens[h.end] if h.end < len(p_tokens) else ""
        if h.kind != "metric" or (after not in VERB_NOUNS and after not in ACTIVE_WORDS):
            continue
        for e in h.entries:
            if e.name in out and len(out) > 1 and "COUNT" in (model.metrics[e.name].sql or "").upper():
                out.remove(e.name)
    return out


def leads_metric(h: Hit, hits: list[Hit]) -> bool:
    """A dimension noun right before a metric is a breakdown: "store-type revenue", "category profit"."""
    return h.kind == "dimension" and any(x.start == h.end and x.kind == "metric" for x in hits)


@dataclass(frozen=True)
class EntityCount:
    """Two ways to count one entity: rows on file (its own table) or distinct keys in the facts."""

    entity: str
    on_file: str
    active: str


def entity_counts(model: SemanticModel) -> list[EntityCount]:
    """Pairs read from the model: ``COUNT(*)`` on a table with a key, ``COUNT(DISTINCT key)`` on the facts.

    Only a table that lists the entity its key names pairs: ``customers`` keyed by
    ``customer_id`` is the customers on file, but ``returns`` keyed by ``order_id`` holds returns,
    so counting its rows for "how many orders" would show a wrong number.
    """
    pairs: list[EntityCount] = []
    for table, t in model.tables.items():
        if not t.key or table == model.fact or not _names_same_entity(table, t.key):
            continue
        on_file = [n for n, m in model.metrics.items() if m.table == table and _sql(m.sql) == "count(*)"]
        active = [
            n for n, m in model.metrics.items() if m.table == model.fact and _sql(m.sql) == f"count(distinct {t.key})"
        ]
        if on_file and active:
            pairs.append(EntityCount(table, on_file[0], active[0]))
    return pairs


#: what a key column's name adds to the entity's name: ``customer_id``, ``o_orderkey``, ``ss_item_sk``
_KEY_SUFFIX = re.compile(r"(?:_?(?:id|key|sk|no|num|number|code))+$")


def _names_same_entity(table: str, key: str) -> bool:
    """Whether the table's head noun is the entity its key column names (singular or plural).

    The head noun is the table name's last word (``order_lines`` lists lines, not orders), past
    words that only say it is a table (``customer_dim``).
    """
    words = [w for w in table.lower().split("_") if w and w not in _TABLE_WORDS]
    entity = _KEY_SUFFIX.sub("", key.lower()).split("_")[-1]
    return bool(words and entity) and _singular(words[-1]) == _singular(entity)


#: words in a table name that say what kind of table it is, not what it lists
_TABLE_WORDS = frozenset({"dim", "dimension", "table", "master", "list", "data", "info", "tbl"})


def _singular(word: str) -> str:
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "ches", "shes")):
        return word[:-2]
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def _sql(sql: str | None) -> str:
    return "".join((sql or "").lower().split()).replace("distinct", "distinct ")


def resolve_entity_count(
    metrics: list[str], tokens: list[str], model: SemanticModel, has_period: bool, prefer: str | None = None
) -> tuple[list[str], set[str]]:
    """Customers on file or customers who bought? Decide from the words, or ask.

    An activity verb means active in the period; "registered"/"do we have" means on file; a
    question naming a period but neither asks a clarifying question with both choices.
    Returns the metrics and the cue words that decided (they are accounted for).
    """
    words = set(tokens)
    cues: set[str] = set()
    for pair in entity_counts(model):
        hit = [m for m in metrics if m in (pair.on_file, pair.active)]
        if not hit:
            continue
        if prefer in (pair.on_file, pair.active):
            choice = prefer
        elif words & ACTIVE_WORDS:
            choice, cues = pair.active, cues | (words & ACTIVE_WORDS)
        elif words & ON_FILE_WORDS or not has_period:
            choice, cues = pair.on_file, cues | (words & ON_FILE_WORDS)
        else:
            raise clarify_entity(pair)
        metrics = [choice if m in hit else m for m in metrics]
    if any(model.on_file(m) for m in metrics):
        cues |= words & ON_FILE_WORDS  # "products in the catalog": a count of what is on file says so
    return list(dict.fromkeys(metrics)), cues


def clarify_entity(pair: EntityCount) -> PlanningError:
    """The clarifying question, with its choices for the next turn (see :mod:`..memory`)."""
    entity = pair.entity
    return PlanningError(
        f"do you mean {entity} on file, or {entity} who bought in the period?",
        f"reply '{entity} on file' or '{entity} who bought'",
        clarify={"kind": "metric", "choices": {f"{entity} on file": pair.on_file, f"{entity} who bought": pair.active}},
    )
