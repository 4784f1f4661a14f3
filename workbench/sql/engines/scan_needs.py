"""What each lake table must deliver to a query: its columns and the rows no reference can need.

The cluster engine reads lake files in tasks on the workers; anything those tasks can drop
there never crosses the network. sqlglot's ``qualify`` resolves every column to its source
(``USING``, ``*`` and correlated references included), so per table we know:

* **columns**: every column any scope reads from it (the task projects to those);
* **filter**: per reference, the ``WHERE`` (and inner-join ``ON``) conjuncts that read only
  that reference's columns. A task may keep only rows that satisfy the OR of its references'
  filters, because the full query still runs over the kept rows and re-applies every
  predicate. A reference on the nullable side of an outer join, or one whose conjuncts hold
  a subquery, an aggregate, a window or a volatile function, gets no filter: then the table
  is not filtered at all. Being wrong here would be a silently wrong answer, so any doubt
  (a table reference no scope explains, a query ``qualify`` rejects) means "all rows, all
  columns".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, traverse_scope

#: functions whose value differs per call: a filter holding one is never moved
_VOLATILE = (exp.Rand, exp.Uuid, exp.CurrentTimestamp, exp.CurrentDate, exp.CurrentTime)
_NOT_PUSHABLE = (exp.Subquery, exp.Exists, exp.AggFunc, exp.Window, exp.Placeholder, *_VOLATILE)


@dataclass
class TableNeed:
    """Columns (lower-case) a query reads from one table, and one filter per reference (None: all rows)."""

    columns: set[str] = field(default_factory=set)
    filters: list[exp.Expr | None] = field(default_factory=list)

    def row_filter(self) -> exp.Expr | None:
        """The OR of the references' filters; None when some reference needs every row."""
        if not self.filters or any(f is None for f in self.filters):
            return None
        return exp.or_(*(f.copy() for f in self.filters if f is not None))


def table_needs(tree: exp.Expr, schema: dict[str, list[str]]) -> dict[str, TableNeed]:
    """Per lake table of ``schema`` (``{table: columns}``): the columns and row filter ``tree`` needs.

    Falls back to every column and no filter for a table when the query cannot be qualified.
    """
    everything = {t: TableNeed({c.lower() for c in cols}, [None]) for t, cols in schema.items()}
    mapping: dict[str, object] = {t: {c: "UNKNOWN" for c in cols} for t, cols in schema.items()}
    try:
        qualified = qualify(tree.copy(), schema=mapping, dialect="duckdb", quote_identifiers=False)
        scopes = traverse_scope(qualified)
    except Exception:  # sqlglot raises OptimizeError and friends for what it cannot resolve
        return everything
    needs = {t: TableNeed() for t in schema}
    seen = 0
    for scope in scopes:
        _collect_columns(scope, needs)
        seen += _collect_filters(scope, needs)
    lake_refs = sum(1 for t in qualified.find_all(exp.Table) if t.name.lower() in schema)
    if seen != lake_refs:  # a reference no scope explained: trust nothing about rows
        for need in needs.values():
            need.filters.append(None)
    for name, need in needs.items():
        if not need.columns:  # COUNT(*) reads no column; one keeps the row count
            need.columns = {schema[name][0].lower()} if schema[name] else set()
    return needs


def _source(scope: Scope | None, alias: str) -> exp.Expr | Scope | None:
    while scope is not None:
        if alias in scope.sources:
            return scope.sources[alias]
        scope = scope.parent
    return None


def _collect_columns(scope: Scope, needs: dict[str, TableNeed]) -> None:
    for col in scope.columns:
        source = _source(scope, col.table)
        if isinstance(source, exp.Table) and source.name.lower() in needs:
            needs[source.name.lower()].columns.add(col.name.lower())


def _collect_filters(scope: Scope, needs: dict[str, TableNeed]) -> int:
    """Adds one filter per lake-table reference selected in ``scope``; returns how many."""
    select = scope.expression
    if not isinstance(select, exp.Select):
        return 0
    found = 0
    for alias, (node, source) in scope.selected_sources.items():
        if not isinstance(source, exp.Table) or source.name.lower() not in needs:  # a CTE is a Scope
            continue
        needs[source.name.lower()].filters.append(_reference_filter(select, alias, node))
        found += 1
    return found


def _reference_filter(select: exp.Select, alias: str, node: exp.Expr) -> exp.Expr | None:
    """The conjuncts that read only ``alias``, unqualified; None when none can move."""
    joins = select.args.get("joins") or []
    if any(j.side in ("RIGHT", "FULL") or j.args.get("method") for j in joins):
        return None
    own = next((j for j in joins if j.this is node), None)
    preds: list[exp.Expr] = []
    if own is not None:
        if own.side or own.kind not in ("", "INNER", "CROSS"):
            return None
        preds += _conjuncts(own.args.get("on"))
    elif select.args.get("from_") is None or select.args["from_"].this is not node:
        return None
    where = select.args.get("where")
    preds += _conjuncts(where.this if where is not None else None)
    for j in joins:
        if j is not own and not j.side and j.kind in ("", "INNER", "CROSS"):
            preds += _conjuncts(j.args.get("on"))
    mine = [p for p in preds if _reads_only(p, alias)]
    if not mine:
        return None
    return exp.and_(*(_unqualified(p) for p in mine))


def _conjuncts(cond: exp.Expr | None) -> list[exp.Expr]:
    if cond is None:
        return []
    return list(cond.flatten()) if isinstance(cond, exp.And) else [cond]


def _reads_only(pred: exp.Expr, alias: str) -> bool:
    cols = list(pred.find_all(exp.Column))
    if not cols or pred.find(*_NOT_PUSHABLE) is not None:
        return False
    return all(c.table == alias for c in cols)


def _unqualified(pred: exp.Expr) -> exp.Expr:
    def strip(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column):
            return exp.column(node.name)
        return node

    return pred.copy().transform(strip)
