"""A draft semantic model from the stored profiles of registered tables, built in small passes.

Why a draft and not a finished model: names and synonyms are domain knowledge. The draft
gets the mechanical part right and says why (``workbench model draft`` prints the reasons as
comments above the YAML), in the same shape as ``retail.yaml``; the user edits it and
activates it with ``workbench model use``. The passes, in order (:data:`PASSES`):

1. the *fact* is the table that references the most other tables (ties: most rows);
2. *joins* from the fact to tables whose key its column references (same name, a table
   prefix aside, or a text column whose values all sit in a small lookup table's key);
3. *time*: the fact's main date column gives date, week, month, quarter and year
   (derived in SQL when the table has no year/month columns: no re-registering), every
   other date column its own year and month;
4. *roles* of every fact column (:mod:`workbench.semantic.grain`): keys, grouping entities,
   identifiers and codes (never summed), measures, categories;
5. *metrics*: a row count per table; measures summed or averaged (money gets the currency
   format); per grouping entity a distinct count ("orders") and per-entity ratios ("sales
   per order" = total / distinct orders, not the average per row);
6. *dimensions*: categories with their values (the vocabulary), names of dimension tables,
   identifiers to group by.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml
from sqlglot import exp

from workbench.errors import NotFoundError
from workbench.lake.profile import load_profiles
from workbench.semantic import grain
from workbench.semantic.grain import Role
from workbench.semantic.model import SemanticModel, reset_model, use_model

__all__ = ["choose_fact", "draft_model", "draft_yaml", "explain", "reset_model", "to_yaml", "use_model"]

#: text columns with at most this many distinct values become vocabulary dimensions
MAX_DIMENSION_VALUES = grain.MAX_CATEGORY_VALUES
#: everyday words users say for a column's words (added as synonyms when the column has the word)
THESAURUS = {
    "sales": ["revenue", "turnover"],
    "revenue": ["sales"],
    "profit": ["earnings"],
    "quantity": ["units", "units sold", "items sold", "volume"],
    "customer": ["client", "buyer"],
    "product": ["item"],
    "region": ["area", "territory"],
    "state": ["province"],
    "city": ["town"],
    "manager": ["regional manager", "person in charge"],
    "segment": ["customer segment"],
    "category": ["product category"],
    "invoice": ["order", "transaction"],
    "ticket": ["order", "basket", "transaction"],
    "basket": ["order", "transaction"],
    "receipt": ["order", "transaction"],
    "transaction": ["order"],
}


@dataclass
class Draft:
    """What the passes read (profiles) and build (the model's parts and the reasons)."""

    profiles: dict[str, dict[str, Any]]
    fact: str = ""
    roles: dict[str, Role] = field(default_factory=dict)
    tables: dict[str, Any] = field(default_factory=dict)
    joins: list[dict[str, str]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    dimensions: dict[str, Any] = field(default_factory=dict)
    time: dict[str, str] | None = None
    time_table: str = ""
    why: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    vocabulary: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def fp(self) -> dict[str, Any]:
        return self.profiles[self.fact]

    def unique(self, name: str, pool: dict[str, Any], table: str | None = None) -> str:
        """``name``, else ``<table>_<name>``, else numbered: metric and dimension names never collide."""
        taken = set(self.metrics) | set(self.dimensions)
        if name not in taken:
            return name
        if table and f"{table}_{name}" not in taken:
            return f"{table}_{name}"
        i = 2
        while f"{name}_{i}" in taken:
            i += 1
        return f"{name}_{i}"


# --- helpers ------------------------------------------------------------------------------------------
def _col(name: str) -> str:
    return exp.column(name).sql(dialect="duckdb")


def _plural(word: str) -> str:
    last = word.split(" ")[-1]
    if last.endswith("y") and not last.endswith(("ay", "ey", "oy", "uy")):
        return word[:-1] + "ies"
    if last.endswith(("ss", "x", "ch", "sh")):
        return word + "es"
    if last.endswith("s"):
        return word
    return word + "s"


def _singular(word: str) -> str:
    if word.endswith("ies"):
        return word[:-3] + "y"
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def _synonyms(*phrases: str) -> list[str]:
    out: list[str] = []
    for p in phrases:
        p = p.strip()
        if p and p not in out:
            out.append(p)
    return out


def _thesaurus(words: str) -> list[str]:
    return list(THESAURUS.get(words, []))


def _dim_name(column: str) -> str:
    return "_".join(grain.tokens(column)) or column.lower()


# --- passes -------------------------------------------------------------------------------------------
def choose_fact(profiles: dict[str, dict[str, Any]]) -> str:
    def score(t: str) -> tuple[int, int]:
        refs = {j["right"] for j in profiles[t].get("joins", []) if j["left"] == t and j["right"] in profiles}
        return len(refs), int(profiles[t]["rows"])

    return max(sorted(profiles), key=score)


def pick_fact(d: Draft) -> None:
    d.fact = choose_fact(d.profiles)
    refs = sorted({j["right"] for j in d.fp.get("joins", []) if j["left"] == d.fact and j["right"] in d.profiles})
    why = f"references {', '.join(refs)}" if refs else "the largest table"
    d.why.append(f"fact table: {d.fact} ({d.fp['rows']:,} rows; {why})")


def find_joins(d: Draft) -> None:
    """Joins from the fact to the key of another table; one per table (the best overlap wins)."""
    best: dict[str, dict[str, Any]] = {}
    for j in d.fp.get("joins", []):
        if j["left"] != d.fact or j["right"] not in d.profiles or j["right"] == d.fact:
            continue
        if j["right"] not in best or j["overlap"] > best[j["right"]]["overlap"]:
            best[j["right"]] = j
    for right, j in sorted(best.items()):
        join = {"left": d.fact, "right": right, "column": j["left_column"]}
        if j["right_column"] != j["left_column"]:
            join["right_column"] = j["right_column"]
        d.joins.append(join)
        d.why.append(
            f"join: {d.fact}.{j['left_column']} -> {right}.{j['right_column']} "
            f"(by {'name and ' if grain.tokens(j['left_column']) == grain.tokens(j['right_column']) else ''}"
            f"value overlap {j['overlap']:.0%})"
        )
    joined = {d.fact, *best}
    for t in sorted(set(d.profiles) - joined):
        d.notes.append(f"{t} has no key that a column of {d.fact} references: it is not in the model")


def table_entries(d: Draft) -> None:
    aliases: set[str] = set()
    for t in [d.fact, *[j["right"] for j in d.joins]]:
        entry: dict[str, Any] = {"alias": _alias(t, aliases)}
        join = next((j for j in d.joins if j["right"] == t), None)
        if join is not None:
            entry["key"] = join.get("right_column", join["column"])
        if d.profiles[t].get("partition_columns"):
            entry["partitions"] = list(d.profiles[t]["partition_columns"])
        d.tables[t] = entry


def assign_roles(d: Draft) -> None:
    d.roles = grain.classify(d.fp)
    join_cols = {j["column"] for j in d.joins}
    entities = [r for r in d.roles.values() if r.kind == "entity"]
    keys = [r.column for r in d.roles.values() if r.kind == "key"]
    if entities:
        top = max(entities, key=lambda r: (grain.known_words(r.entity or ""), _distinct(d.fp, r.column)))
        d.why.append(
            f"grain: several rows of {d.fact} per {top.entity} ({top.column}: about "
            f"{_distinct(d.fp, top.column):,} distinct over {d.fp['rows']:,} rows); "
            f"'{_plural(top.entity or '')}' counts distinct {top.column}"
        )
    elif keys:
        d.why.append(f"grain: one row of {d.fact} per {keys[0]} (unique)")
    for r in d.roles.values():
        tag = " (join column)" if r.column in join_cols else ""
        d.why.append(f"column {r.column}: {r.kind}{tag}: {r.why}")


def _distinct(profile: dict[str, Any], column: str) -> int:
    return int(next(c["distinct"] for c in profile["columns"] if c["name"] == column))


_TIME_SYNONYMS = {
    "year": ["yearly", "annual", "years"],
    "month": ["monthly", "months"],
    "quarter": ["quarterly", "quarters"],
    "week": ["weekly", "weeks"],
}


def _date_source(d: Draft) -> tuple[str, dict[str, Role]]:
    """The table holding the dates (the fact, else a joined date table) and its date columns."""
    dates = {r.column: r for r in grain.classify(d.fp).values() if r.kind == "time"}
    if dates:
        return d.fact, dates
    for j in d.joins:
        found = {r.column: r for r in grain.classify(d.profiles[j["right"]]).values() if r.kind == "time"}
        if found:
            return j["right"], found
    return d.fact, {}


def _date_sql(r: Role) -> str:
    """The date as SQL: the column, or the text read with its format (``3/14/2024`` kept as text)."""
    if r.date_format:
        return f"CAST(STRPTIME({_col(r.column)}, '{r.date_format}') AS DATE)"
    return _col(r.column)


def time_dimensions(d: Draft) -> None:
    """date, year, quarter, month, week from the main date; other dates get their own year and month."""
    table, dates = _date_source(d)
    if not dates:
        d.notes.append(f"{d.fact} has no date column: questions about years or months cannot be answered")
        return
    main = dates[_main_date(list(dates))]
    # the table's own year/month/quarter columns win over derived ones: they are the data's
    # definition (TPC-DS d_qoy puts a quarter's first day in the previous quarter)
    own = {grain.time_part(c["name"]): c["name"] for c in d.profiles[table]["columns"] if _integer(c["type"])}
    own.pop(None, None)
    real = "year" in own and "month" in own
    on = {"table": table} if table != d.fact else {}
    expr = _date_sql(main)
    where = {"sql": expr} if main.date_format else {"column": main.column}
    d.dimensions["date"] = {**on, **where, "kind": "time",
                            "synonyms": _synonyms("day", "daily", "days", grain.words(main.column))}  # fmt: skip
    for part, words in _TIME_SYNONYMS.items():
        dim: dict[str, Any] = {"column": own[part]} if real and part in own else {"sql": f"{part.upper()}({expr})"}
        if part != "year":
            dim["with"] = ["year"]
        d.dimensions[part] = {**on, **dim, "kind": "time", "synonyms": words}
    d.time = {"date": "date" if main.date_format else main.column, "year": "year", "month": "month"}
    how = (
        "its year and month columns"
        if real
        else "YEAR/MONTH/QUARTER/WEEK of it (derived in SQL, nothing re-registered)"
    )
    of = f" of the joined table {table}" if table != d.fact else ""
    d.why.append(f"time column: {main.column}{of}; year, quarter, month, week from {how}")
    d.time_table = table
    for other in dates.values() if table == d.fact else []:
        if other is not main:
            _other_date(d, other)


def _integer(t: str) -> bool:
    return t.upper().startswith(("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINY", "USMALL", "UINT"))


def _main_date(dates: list[str]) -> str:
    def rank(c: str) -> tuple[int, int]:
        toks = set(grain.tokens(c))
        return (0 if toks & {"order", "sale", "sales", "transaction", "purchase", "invoice"} else 1,
                0 if "date" in toks or "time" in toks else 1)  # fmt: skip

    return sorted(dates, key=rank)[0]


def _other_date(d: Draft, r: Role) -> None:
    stem = "_".join(t for t in grain.tokens(r.column) if t not in ("date", "time", "dt")) or r.column
    words = stem.replace("_", " ")
    expr = _date_sql(r)
    year = d.unique(f"{stem}_year", d.dimensions)
    d.dimensions[year] = {"sql": f"YEAR({expr})", "kind": "time", "synonyms": [f"{words} year"]}
    month = d.unique(f"{stem}_month", d.dimensions)
    d.dimensions[month] = {"sql": f"MONTH({expr})", "with": [year], "kind": "time",
                           "synonyms": [f"{words} month"]}  # fmt: skip
    d.why.append(f"date column {r.column}: its own year and month ({year}, {month})")


def count_metrics(d: Draft) -> None:
    entity_words = {r.entity for r in d.roles.values() if r.kind == "entity"}
    fact_words = grain.words(d.fact)  # lineitem -> line item
    own = _singular(fact_words) not in entity_words  # "orders" over order lines must not count rows
    syn = _synonyms(f"{fact_words} rows", "rows", "records", "number of rows")
    if own:
        many = _plural(_singular(fact_words))
        syn = _synonyms(f"number of {many}", f"{_singular(fact_words)} count", f"how many {many}", many, *syn)
    d.metrics[f"{d.fact}_count"] = {"sql": "COUNT(*)", "format": "count", "description": f"rows of {d.fact}",
                                    "synonyms": syn}  # fmt: skip
    for t in d.tables:
        if t != d.fact:
            w = t.replace("_", " ")
            # an entity of the fact joined to its own table (l_orderkey -> orders) is counted by the
            # distinct-count metric, which every fact dimension and period applies to
            counted = _singular(w) in entity_words
            named = [] if counted else [f"number of {w}", f"{_singular(w)} count", f"how many {w}"]
            d.metrics[d.unique(f"{t}_count", d.metrics)] = {
                "sql": "COUNT(*)", "table": t, "format": "count", "description": f"rows of {t}",
                "synonyms": _synonyms(*named, f"rows of {w}", f"{w} rows", *_subset_phrases(d, t)),
            }  # fmt: skip


def _subset_phrases(d: Draft, table: str) -> list[str]:
    """A table listing some of the fact's entities (returns: ``Returned``, ``Order ID``) counts
    "returned orders": its other columns' words before the entity's plural."""
    join = next(j for j in d.joins if j["right"] == table)
    role = d.roles.get(join["column"])
    if role is None or role.kind != "entity" or not role.entity:
        return []
    listed = d.profiles[table]
    if len(listed["columns"]) > 3 or int(listed["rows"]) >= _distinct(d.fp, join["column"]):
        return []  # the entity's own table (orders), not a list of some of them
    key = join.get("right_column", join["column"])
    ents = _plural(role.entity)
    out: list[str] = []
    for c in d.profiles[table]["columns"]:
        if c["name"] != key:
            w = grain.words(c["name"])
            out += [f"{w} {ents}", f"number of {w} {ents}", f"how many {w} {ents}"]
    return out


def measure_metrics(d: Draft) -> None:
    for r in d.roles.values():
        if r.kind != "measure":
            continue
        words = grain.words(r.column)
        fmt = "currency" if r.money else ("fraction" if r.fraction and r.averaged else "number")
        avg_syn = _synonyms(f"average {words}", f"avg {words}", f"mean {words}")
        if not r.averaged:
            name = d.unique(_dim_name(r.column), d.metrics)
            syn = _synonyms(f"total {words}", words, _plural(words), *_thesaurus(words))
            d.metrics[name] = {"sql": f"SUM({_col(r.column)})", "format": fmt, "description": f"total of {r.column}",
                               "synonyms": syn}  # fmt: skip
            per_row = f"{words} per {_singular(d.fact.replace('_', ' '))}"
            if not any(e.entity == _singular(d.fact.replace("_", " ")) for e in d.roles.values()):
                avg_syn.append(per_row)
        else:
            avg_syn.append(words)
        d.metrics[d.unique(f"average_{_dim_name(r.column)}", d.metrics)] = {
            "sql": f"AVG({_col(r.column)})", "format": fmt, "description": f"average of {r.column} per row",
            "synonyms": avg_syn,
        }  # fmt: skip


#: per-entity ratios are drafted for at most this many entities and summed measures each
MAX_RATIO_ENTITIES = 3
MAX_RATIO_MEASURES = 4


def derived_amount(d: Draft) -> None:
    """Order lines with a quantity and a unit price but no amount (the Online Retail shape):
    revenue is SUM(quantity * unit price), never SUM(unit price)."""
    measures = [r for r in d.roles.values() if r.kind == "measure"]
    if any(r.money and not r.averaged for r in measures):
        return
    qty = next((r for r in measures if set(grain.tokens(r.column)) & {"quantity", "units", "qty", "count"}), None)
    price = next((r for r in measures if r.money and r.averaged and "price" in grain.tokens(r.column)), None)
    if qty is None or price is None:
        return
    name = d.unique("revenue", d.metrics)
    d.metrics[name] = {
        "sql": f"SUM({_col(qty.column)} * {_col(price.column)})", "format": "currency",
        "description": f"{qty.column} times {price.column}, summed",
        "synonyms": _synonyms("revenue", "sales", "total sales", "sales amount", "turnover", "total revenue"),
    }  # fmt: skip
    d.why.append(f"metric {name}: no amount column, so {qty.column} x {price.column} summed")


def entity_metrics(d: Draft) -> None:
    """Distinct counts of grouping entities and per-entity ratios (totals over distinct entities)."""
    entities = sorted((r for r in d.roles.values() if r.kind == "entity"), key=lambda r: -_distinct(d.fp, r.column))
    summed = _ratio_measures(d)
    # ratios only over entities named in plain words (order, customer), not cdemo/hdemo surrogate keys
    ratio_entities = [r for r in entities if grain.known_words(r.entity or "")][:MAX_RATIO_ENTITIES]
    for r in entities:
        ent = r.entity or r.column
        plural = _plural(ent)
        count_sql = f"COUNT(DISTINCT {_col(r.column)})"
        d.metrics[d.unique(plural.replace(" ", "_"), d.metrics)] = {
            "sql": count_sql, "format": "count", "description": f"distinct {r.column}",
            "synonyms": _synonyms(f"number of {plural}", f"how many {plural}", f"{ent} count", f"distinct {plural}",
                                  plural, f"count of {plural}",
                                  *[f"number of {_plural(a)}" for a in _free_alternatives(d, ent)]),
        }  # fmt: skip
        if r not in ratio_entities:
            continue
        for i, m in enumerate(summed):
            _ratio(d, m, ent, count_sql, value_phrase=i == _value_measure(d, summed))
        for other in ratio_entities:
            if _distinct(d.fp, other.column) > _distinct(d.fp, r.column):
                o_plural = _plural(other.entity or other.column)
                d.metrics[d.unique(f"{o_plural}_per_{ent}".replace(" ", "_"), d.metrics)] = {
                    "sql": f"COUNT(DISTINCT {_col(other.column)}) / {count_sql}", "format": "number",
                    "synonyms": _synonyms(f"{o_plural} per {ent}", f"average {o_plural} per {ent}"),
                }  # fmt: skip


def _ratio_measures(d: Draft) -> list[str]:
    """Summed metrics worth a per-entity ratio: money and quantities, the sales-like ones first."""
    summed = [n for n, m in d.metrics.items() if str(m.get("sql", "")).startswith("SUM(")]

    preferred = ("net_paid", "sales", "revenue", "amount", "paid", "profit", "total", "value", "quantity")

    def rank(n: str) -> int:
        hit = next((i for i, w in enumerate(preferred) if w in n), None)
        if hit is not None:
            return hit
        return len(preferred) if d.metrics[n]["format"] == "currency" else 99

    return sorted((n for n in summed if rank(n) < 99), key=rank)[:MAX_RATIO_MEASURES]


def _value_measure(d: Draft, summed: list[str]) -> int:
    """Which summed metric "average order value" means: the first money one named like sales/amount/total."""
    money = [i for i, m in enumerate(summed) if d.metrics[m]["format"] == "currency"]
    named = [i for i in money if re.search(r"(sales|revenue|amount|total|price|value)", summed[i])]
    return (named or money or [-1])[0]


def _free_alternatives(d: Draft, ent: str) -> list[str]:
    """Everyday names of an entity that no other entity of the table has (invoice -> order)."""
    others = {r.entity for r in d.roles.values() if r.kind == "entity"} | {_singular(d.fact.replace("_", " "))}
    return [a for a in _thesaurus(ent) if a not in others]


def _ratio(d: Draft, metric: str, ent: str, count_sql: str, value_phrase: bool) -> None:
    m = d.metrics[metric]
    words = metric.replace("_", " ")
    syn = _synonyms(f"{words} per {ent}", f"average {words} per {ent}", f"avg {words} per {ent}",
                    f"mean {words} per {ent}", f"average {ent} {words}")  # fmt: skip
    if value_phrase:
        for e in (ent, *_free_alternatives(d, ent)):  # "average order value" over invoices
            syn += [f"average {e} value", f"{e} value", f"average {e} size", f"mean {e} value", f"{words} per {e}"]
    inner = str(m["sql"])
    d.metrics[d.unique(f"{metric}_per_{ent.replace(' ', '_')}", d.metrics)] = {
        "sql": f"{inner} / {count_sql}", "format": m["format"],
        "description": f"{metric} per distinct {ent} (total / distinct count, not the average per row)",
        "synonyms": syn,
    }  # fmt: skip


def category_dimensions(d: Draft) -> None:
    join_cols = {j["column"] for j in d.joins}
    for t in d.tables:
        if t == d.time_table and t != d.fact:
            continue  # a date table's flags and names (d_holiday, d_current_day) are not categories
        roles = d.roles if t == d.fact else grain.classify(d.profiles[t])
        key = d.tables[t].get("key")
        lookup = t != d.fact and sum(r.kind in ("category", "key", "text") for r in roles.values()) == 2
        for r in roles.values():
            values = next((c.get("values") for c in d.profiles[t]["columns"] if c["name"] == r.column), None)
            if r.kind == "key" and t != d.fact and values and r.column != key:
                r = Role(r.column, "category", r.why, values=values)  # a lookup's other column (the manager)
            if r.kind == "category" and r.column != key:
                _category(d, t, r, also=_singular(t.replace("_", " ")) if lookup else None)
            elif r.kind in ("text", "key", "identifier") and "name" in grain.tokens(r.column) and r.column != key:
                _named(d, t, r)
            elif t == d.fact and r.kind in ("entity", "identifier") and r.column not in join_cols:
                _named(d, t, r, keep_id=True)


def _category(d: Draft, table: str, r: Role, also: str | None = None) -> None:
    """A vocabulary dimension; ``also`` names a lookup table's one column after the table (managers)."""
    name = d.unique(_dim_name(r.column), d.dimensions, table)
    words = grain.words(r.column)
    extra = [also, _plural(also)] if also else []
    toks = grain.tokens(r.column)
    if "name" in toks and len(toks) > 1:  # product_name: "products" means its values
        stem = " ".join(t for t in toks if t != "name")
        extra += [stem, _plural(stem)]
    dim: dict[str, Any] = {"column": r.column, "vocabulary": True,
                           "synonyms": _synonyms(words, _plural(words), *_thesaurus(words), *extra)}  # fmt: skip
    d.dimensions[name] = {"table": table, **dim} if table != d.fact else dim
    d.vocabulary[name] = r.values


def _named(d: Draft, table: str, r: Role, keep_id: bool = False) -> None:
    toks = grain.tokens(r.column)
    base = "_".join(toks if keep_id else [t for t in toks if t != "name"])
    if base in ("first", "last", "middle", "full", "given", "family", "user", "login", "display"):
        base = f"{base}_name"  # c_first_name stays "first name"
    if not base or base in ("name", "title"):  # part.p_name is the part
        base = _singular(table).lower()
    name = d.unique(base, d.dimensions, table)
    words = name.replace("_", " ")
    own = grain.words(r.column)
    dim: dict[str, Any] = {
        "column": r.column,
        "synonyms": _synonyms(words, _plural(words), own if own not in ("name", "title") else f"{words} {own}"),
    }
    d.dimensions[name] = {"table": table, **dim} if table != d.fact else dim


def short_synonyms(d: Draft) -> None:
    """``priority`` for order_priority when no other dimension ends in that word (``status`` is
    both line status and order status, so neither gets it)."""
    last: dict[str, list[str]] = {}
    for name, dim in d.dimensions.items():
        words = name.split("_")
        if len(words) > 1 and dim.get("kind") != "time":
            last.setdefault(words[-1], []).append(name)
    taken = set(d.dimensions) | {s for dim in d.dimensions.values() for s in dim.get("synonyms", [])}
    for word, names in last.items():
        if len(names) == 1 and word not in taken and word not in grain.ID_WORDS:
            syn = d.dimensions[names[0]].setdefault("synonyms", [])
            syn += [word, _plural(word)]


PASSES: tuple[Callable[[Draft], None], ...] = (
    pick_fact, find_joins, table_entries, assign_roles, time_dimensions, count_metrics, measure_metrics,
    derived_amount, entity_metrics, category_dimensions, short_synonyms,
)  # fmt: skip


def draft_model(profiles: dict[str, dict[str, Any]], name: str = "draft") -> dict[str, Any]:
    """The model as a plain dict (``yaml.safe_dump`` it), validated by :class:`SemanticModel`;
    ``_why``, ``_notes`` and ``_vocabulary`` carry the explanation (not part of the model)."""
    if not profiles:
        raise NotFoundError("no registered tables to draft a model from", "run `workbench register NAME URL` first")
    d = Draft(profiles)
    for step in PASSES:
        step(d)
    model: dict[str, Any] = {"name": name, "fact": d.fact, "tables": d.tables, "joins": d.joins,
                             "metrics": d.metrics, "dimensions": d.dimensions}  # fmt: skip
    if d.time:
        model["time"] = d.time
    SemanticModel.model_validate(model)
    return {**model, "_why": d.why, "_notes": d.notes, "_vocabulary": d.vocabulary}


def _alias(table: str, used: set[str]) -> str:
    base = "".join(w[0] for w in table.split("_") if w) or "t"
    alias, i = base, 1
    while alias in used:
        i += 1
        alias = f"{base}{i}"
    used.add(alias)
    return alias


def explain(model: dict[str, Any]) -> list[str]:
    """What the draft inferred and why, one line each (the ``_why``/``_notes`` of :func:`draft_model`)."""
    lines = list(model.get("_why", []))
    lines += [f"note: {n}" for n in model.get("_notes", [])]
    for dim, values in model.get("_vocabulary", {}).items():
        shown = ", ".join(str(v) for v in values[:12]) + (" ..." if len(values) > 12 else "")
        lines.append(f"values of {dim}: {shown}")
    return lines


def to_yaml(model: dict[str, Any], tables: list[str]) -> str:
    """The YAML text: the explanation as comments, then the model."""
    body = {k: v for k, v in model.items() if not k.startswith("_")}
    lines = [
        f"# Draft semantic model from the profiles of: {', '.join(tables)}",
        "# Edit names, synonyms and aggregations, then activate it: workbench model use <this file>",
        *[f"# {line}" for line in explain(model)],
    ]
    return "\n".join(lines) + "\n" + yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=110)


def draft_yaml(lake: Any, tables: list[str] | None = None, name: str = "draft") -> str:
    """Profiles (stored, or taken now) of ``tables`` -> YAML text of a draft model."""
    profiles = load_profiles(lake, tables or None)
    return to_yaml(draft_model(profiles, name), sorted(profiles))
