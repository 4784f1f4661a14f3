"""The aggregate split: partial aggregates per task, combined once, the rest in DuckDB.

A grouped SELECT over one large fact table (plus small tables joined to it) is cut in three:

* **partial** (DuckDB in each task, over one group of the fact table's files and the whole
  small tables): ``SELECT <keys> AS _k0.., <partials> AS _a0.. FROM .. WHERE .. GROUP BY
  <keys>``, where SUM, COUNT, MIN and MAX are their own partials and AVG becomes SUM and COUNT;
* **combine** (DuckDB over every task's partial rows): the same keys, SUM of SUMs and
  COUNTs, MIN of MINs, MAX of MAXes, SUM/COUNT for AVG;
* **final** (DuckDB over the combined rows, no lake access): the original projections,
  HAVING, windows, DISTINCT, ORDER BY, LIMIT with every aggregate and key replaced by the
  combined column that holds it.

The cut is exact because every task sees whole small tables and a disjoint slice of the fact
rows, the fact is never on the nullable side of an outer join, and only aggregates that
combine exactly are split. Anything else (subqueries, CTEs, set operations, DISTINCT
aggregates, FILTER, grouping sets, ambiguous keys) returns the reason the cut does not apply;
the engine then runs the query another way or refuses it by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from sqlglot import exp

from workbench.sql.engines.base import with_row_limit

#: table names of the intermediate results inside the combine and final queries
PARTIALS = "_partials"
STAGE = "_stage"
#: the partial column holding the COUNT(DISTINCT ..) argument (what the buckets hash on)
DISTINCT = "_d"
_DECOMPOSABLE = (exp.Sum, exp.Count, exp.Min, exp.Max, exp.Avg)


@dataclass
class AggregateSplit:
    """The three queries of a split aggregate (see the module docstring)."""

    fact: str
    partial: exp.Select
    combine: exp.Select
    final: exp.Select
    #: partials merged into partials (same columns); with COUNT(DISTINCT x) the query of one hash
    #: bucket of x, over every partial's rows of that bucket
    merge: exp.Select
    bucketed: bool = False
    _finals: dict[int, list[str]] = field(default_factory=dict, repr=False, compare=False)

    # the statements as DuckDB SQL, generated once per plan (a remembered plan runs again and again)
    @cached_property
    def partial_sql(self) -> str:
        return self.partial.sql(dialect="duckdb")

    @cached_property
    def merge_sql(self) -> str:
        return self.merge.sql(dialect="duckdb")

    @cached_property
    def combine_sql(self) -> str:
        return self.combine.sql(dialect="duckdb")

    def final_statements(self, row_limit: int) -> list[str]:
        """Combine and final as DuckDB statements over ``PARTIALS``, capped at ``row_limit`` rows.

        One statement (the combined partials as a WITH query) unless the final query has WITH
        queries of its own. Remembered per row limit: generating them cost ~0.5 ms a query.
        """
        if row_limit not in self._finals:
            final = with_row_limit(self.final, row_limit)
            if final.args.get("with_") is None:
                statements = [f"WITH {STAGE} AS ({self.combine_sql}) {final.sql(dialect='duckdb')}"]
            else:
                statements = [f"CREATE TEMP TABLE {STAGE} AS {self.combine_sql}", final.sql(dialect="duckdb")]
            self._finals[row_limit] = statements
        return self._finals[row_limit]

    def describe(self) -> str:
        what = f"per hash bucket of {DISTINCT}" if self.bucketed else "per batch of partials (a tree on the workers)"
        bucket = f"{what} (DuckDB on a worker):\n  {self.merge_sql}\n"
        return (
            f"per task over a file group of {self.fact} (DuckDB on a worker):\n  {self.partial_sql}\n"
            f"{bucket}combine the partials ({PARTIALS}, DuckDB):\n  {self.combine_sql}\n"
            f"final ({STAGE}, DuckDB):\n  {self.final.sql(dialect='duckdb')}"
        )


def split_aggregate(tree: exp.Expr, fact: str, columns: dict[str, list[str]]) -> AggregateSplit | str:
    """The split of ``tree`` over the fact table ``fact``, or why it does not apply.

    ``columns``: the columns of each table the query reads (to resolve ``GROUP BY name``).
    """
    why = _shape_problem(tree, fact)
    if why is not None:
        return why
    assert isinstance(tree, exp.Select)
    sel = tree.copy()
    keys = _group_keys(sel, columns)
    if isinstance(keys, str):
        return keys
    parts = [p for p in (*sel.expressions, sel.args.get("having"), sel.args.get("order")) if p is not None]
    aggs: dict[str, exp.AggFunc] = {}
    for part in parts:
        for node in part.walk():
            if _is_group_aggregate(node) and node.sql() not in aggs:
                aggs[node.sql()] = node
    if not aggs and not keys:
        return "no aggregate to split"
    distinct = {d.sql() for d in map(_distinct_arg, aggs.values()) if d is not None}
    if len(distinct) > 1:
        return "COUNT(DISTINCT ..) of more than one expression"
    bad = next((a for a in aggs.values() if not _decomposable(a) and _distinct_arg(a) is None), None)
    if bad is not None:
        return f"{bad.sql(dialect='duckdb')} does not combine from partial results"
    names = {sql: f"_a{i}" for i, sql in enumerate(aggs)}
    final = _final(sel, keys, names)
    if final is None:
        return "a column that is neither grouped nor aggregated"
    partial = _partial(sel, keys, aggs, names)
    merge = _merge(keys, aggs, names)
    return AggregateSplit(fact, partial, _combine(keys, aggs, names), final, merge, bool(distinct))


def _distinct_arg(agg: exp.Expr) -> exp.Expr | None:
    """``x`` of ``COUNT(DISTINCT x)`` (one argument), else None."""
    inner = agg.this if isinstance(agg, exp.Count) else None
    if not isinstance(inner, exp.Distinct) or len(inner.expressions) != 1 or inner.args.get("on"):
        return None
    arg = inner.expressions[0]
    return None if arg.find(exp.AggFunc, exp.Window, exp.Subquery) else arg


def _shape_problem(tree: exp.Expr, fact: str) -> str | None:
    if not isinstance(tree, exp.Select):
        return "a set operation (UNION/INTERSECT/EXCEPT) is global"
    if tree.args.get("with_") is not None or tree.args.get("with") is not None:
        return "a WITH clause"
    if any(isinstance(n, (exp.Subquery, exp.Exists, exp.Select)) for n in tree.walk() if n is not tree):
        return "a subquery"
    if tree.find(exp.Filter) is not None:
        return "an aggregate FILTER clause"
    group = tree.args.get("group")
    if group is not None and (group.args.get("all") or group.find(exp.Rollup, exp.Cube, exp.GroupingSets)):
        return "GROUP BY ALL/ROLLUP/CUBE/GROUPING SETS"
    from_ = tree.args.get("from_")
    joins = tree.args.get("joins") or []
    sources = [from_.this if from_ is not None else None, *(j.this for j in joins)]
    if not all(isinstance(s, exp.Table) for s in sources):
        return "a FROM item that is not a lake table"
    facts = [s for s in sources if isinstance(s, exp.Table) and s.name.lower() == fact]
    if len(facts) != 1:
        return f"{fact} is read more than once"
    for j in joins:
        if j.side in ("RIGHT", "FULL") or j.kind not in ("", "INNER", "CROSS", "OUTER") or j.args.get("method"):
            return f"a {' '.join(filter(None, [j.args.get('method'), j.side, j.kind]))} JOIN"
        if j.this is facts[0] and j.side:
            return f"{fact} on the nullable side of an outer join"
    return None


def shuffle_keys(tree: exp.Expr, fact: str, other: str, columns: dict[str, list[str]]) -> tuple[str, str] | str:
    """The columns of ``fact`` and ``other`` that an inner equi-join pairs, or why there are none.

    Hash-partitioning both tables on them puts every pair of rows that can join into the same
    bucket, so the partial query can run per bucket. Only with inner joins: an outer join
    would emit unmatched rows per bucket.
    """
    assert isinstance(tree, exp.Select)
    joins = tree.args.get("joins") or []
    if any(j.side for j in joins):
        return "an outer join with two tables too large to broadcast"
    from_ = tree.args["from_"].this
    sources = {s.alias_or_name.lower(): s.name.lower() for s in [from_, *(j.this for j in joins)]}
    if list(sources.values()).count(other) != 1:
        return f"{other} is read more than once"
    conds = _conjuncts(tree.args.get("where")) + [c for j in joins for c in _conjuncts(j.args.get("on"))]
    for cond in conds:
        if isinstance(cond, exp.EQ) and isinstance(cond.left, exp.Column) and isinstance(cond.right, exp.Column):
            owners = [_owner(c, sources, columns) for c in (cond.left, cond.right)]
            if owners == [fact, other]:
                return cond.left.name, cond.right.name
            if owners == [other, fact]:
                return cond.right.name, cond.left.name
    return f"no equality joins {fact} and {other}"


def _conjuncts(node: exp.Expr | None) -> list[exp.Expr]:
    if isinstance(node, exp.Where):
        node = node.this
    if node is None:
        return []
    return list(node.flatten()) if isinstance(node, exp.And) else [node]


def _owner(col: exp.Column, sources: dict[str, str], columns: dict[str, list[str]]) -> str | None:
    """The table a column reads (by qualifier, else the one source table that has that column)."""
    if col.table:
        return sources.get(col.table.lower())
    tables = {t for t in sources.values() if col.name.lower() in {c.lower() for c in columns.get(t, [])}}
    return tables.pop() if len(tables) == 1 else None


def _group_keys(sel: exp.Select, columns: dict[str, list[str]]) -> list[exp.Expr] | str:
    """GROUP BY items resolved to expressions (positions and projection aliases)."""
    group = sel.args.get("group")
    items = list(group.expressions) if group is not None else []
    source_cols = {c.lower() for cols in columns.values() for c in cols}
    keys: list[exp.Expr] = []
    for item in items:
        if isinstance(item, exp.Literal) and item.is_int:
            target = sel.expressions[int(item.this) - 1]
            keys.append(target.this if isinstance(target, exp.Alias) else target)
            continue
        aliased = [p.this for p in sel.expressions if isinstance(p, exp.Alias) and p.alias.lower() == item.name.lower()]
        if isinstance(item, exp.Column) and not item.table and aliased:
            if item.name.lower() in source_cols and aliased[0] != item:
                return f"GROUP BY {item.name} is both a column and an alias"
            if item.name.lower() not in source_cols:
                keys.append(aliased[0])
                continue
        keys.append(item)
    return keys


def _is_group_aggregate(node: exp.Expr) -> bool:
    """An aggregate of the GROUP BY (not the function of a window, not nested in another)."""
    if not isinstance(node, exp.AggFunc) or isinstance(node.parent, exp.Window):
        return False
    parent = node.parent
    while parent is not None:
        if isinstance(parent, exp.AggFunc) and not isinstance(parent.parent, exp.Window):
            return False
        parent = parent.parent
    return True


def _decomposable(agg: exp.AggFunc) -> bool:
    if type(agg) not in _DECOMPOSABLE or agg.find(exp.Distinct) is not None:
        return False
    extra = (v for k, v in agg.args.items() if k != "this")
    if any(isinstance(v, exp.Expr) or (isinstance(v, list) and v) for v in extra):
        return False  # a second argument: MIN(x, n) is a top-n list in DuckDB
    return agg.this is None or agg.this.find(exp.AggFunc, exp.Window, exp.Subquery) is None


def _partial(sel: exp.Select, keys: list[exp.Expr], aggs: dict[str, exp.AggFunc], names: dict[str, str]) -> exp.Select:
    proj: list[exp.Expr] = [exp.alias_(k.copy(), f"_k{i}") for i, k in enumerate(keys)]
    groups = [k.copy() for k in keys]
    for sql, agg in aggs.items():
        name = names[sql]
        arg = _distinct_arg(agg)
        if arg is not None:  # grouped by its argument: each task keeps the distinct values it saw
            if not any(isinstance(p, exp.Alias) and p.alias == DISTINCT for p in proj):
                proj.append(exp.alias_(arg.copy(), DISTINCT))
                groups.append(arg.copy())
            continue
        if isinstance(agg, exp.Avg):
            proj.append(exp.alias_(exp.Sum(this=agg.this.copy()), f"{name}_s"))
            proj.append(exp.alias_(exp.Count(this=agg.this.copy()), f"{name}_c"))
        else:
            proj.append(exp.alias_(agg.copy(), name))
    partial = exp.Select(expressions=proj)
    for part in ("from_", "joins", "where"):
        if sel.args.get(part):
            value = sel.args[part]
            partial.set(part, [j.copy() for j in value] if isinstance(value, list) else value.copy())
    if groups:
        partial.set("group", exp.Group(expressions=groups))
    return partial


def _merge(keys: list[exp.Expr], aggs: dict[str, exp.AggFunc], names: dict[str, str]) -> exp.Select:
    """Partials merged into partials of the same columns (SUM of sums and counts, MIN, MAX).

    With COUNT(DISTINCT), over one hash bucket of ``_d``: the count is exact within a bucket
    and adds up across buckets (a value lives in one bucket only).
    """
    proj: list[exp.Expr] = [exp.column(f"_k{i}") for i in range(len(keys))]
    for sql, agg in aggs.items():
        name = names[sql]
        if _distinct_arg(agg) is not None:
            proj.append(exp.alias_(exp.Count(this=exp.Distinct(expressions=[exp.column(DISTINCT)])), name))
        elif isinstance(agg, exp.Avg):
            proj += [exp.alias_(exp.Sum(this=exp.column(f"{name}_{p}")), f"{name}_{p}") for p in ("s", "c")]
        else:
            merge = exp.Sum if isinstance(agg, (exp.Sum, exp.Count)) else type(agg)
            proj.append(exp.alias_(merge(this=exp.column(name)), name))
    bucket = exp.select(*proj).from_(PARTIALS)
    if keys:
        bucket = bucket.group_by(*[exp.column(f"_k{i}") for i in range(len(keys))])
    return bucket


def _combine(keys: list[exp.Expr], aggs: dict[str, exp.AggFunc], names: dict[str, str]) -> exp.Select:
    proj: list[exp.Expr] = [exp.column(f"_k{i}") for i in range(len(keys))]
    for sql, agg in aggs.items():
        name = names[sql]
        col = exp.column(name)
        if isinstance(agg, exp.Avg):
            total = exp.cast(exp.Sum(this=exp.column(f"{name}_s")), "DOUBLE")
            count = exp.Nullif(this=exp.Sum(this=exp.column(f"{name}_c")), expression=exp.Literal.number(0))
            value: exp.Expr = exp.Div(this=total, expression=count)
        elif isinstance(agg, exp.Count):  # COUNT(DISTINCT) too: its buckets' counts add up
            value = exp.cast(exp.Coalesce(this=exp.Sum(this=col), expressions=[exp.Literal.number(0)]), "BIGINT")
        else:
            value = type(agg)(this=col.copy())
        proj.append(exp.alias_(value, name))
    combine = exp.select(*proj).from_(PARTIALS)
    if keys:
        combine = combine.group_by(*[exp.column(f"_k{i}") for i in range(len(keys))])
    return combine


def _final(sel: exp.Select, keys: list[exp.Expr], names: dict[str, str]) -> exp.Select | None:
    def swap(node: exp.Expr) -> exp.Expr:
        if _is_group_aggregate(node) and node.sql() in names:
            return exp.column(names[node.sql()])
        for i, key in enumerate(keys):
            if _same(node, key):
                return exp.column(f"_k{i}")
        return node

    final = exp.Select(expressions=[_keep_name(p, p.copy().transform(swap)) for p in sel.expressions])
    final.set("from_", exp.From(this=exp.to_table(STAGE)))
    if sel.args.get("having") is not None:
        final.set("where", exp.Where(this=sel.args["having"].this.copy().transform(swap)))
    for arg in ("order", "qualify"):
        if sel.args.get(arg) is not None:
            final.set(arg, sel.args[arg].copy().transform(swap))
    for arg in ("limit", "offset", "distinct"):
        if sel.args.get(arg) is not None:
            final.set(arg, sel.args[arg].copy())
    allowed = set(names.values()) | {f"_k{i}" for i in range(len(keys))}
    allowed |= {p.alias for p in final.expressions if isinstance(p, exp.Alias)}
    if any(c.name not in allowed or c.table for c in final.find_all(exp.Column)):
        return None
    return final


def _keep_name(original: exp.Expr, swapped: exp.Expr) -> exp.Expr:
    """The final column keeps the name the unsplit query gives it (``region``, not ``_k0``)."""
    if isinstance(original, exp.Alias):
        return swapped
    name = original.name if isinstance(original, exp.Column) else original.sql(dialect="duckdb")
    return exp.alias_(swapped, exp.to_identifier(name, quoted=True))


def _same(node: exp.Expr, key: exp.Expr) -> bool:
    if isinstance(node, exp.Column) and isinstance(key, exp.Column):
        if node.name.lower() != key.name.lower():
            return False
        return not node.table or not key.table or node.table.lower() == key.table.lower()
    return not isinstance(node, exp.Column) and node == key
