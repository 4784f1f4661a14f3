"""Partition pruning: predicates on partition columns become Delta partition filters.

Neither engine should read a file the query cannot need: DuckDB would still open every file
listed in the view, and dask-sql does not prune from WHERE at all (DESIGN.md). So before a
query runs we collect, for each reference to a partitioned table, the top-level AND-ed
predicates of the same SELECT on its partition columns (=, IN, BETWEEN, <, <=, >, >=), turn
them into Delta filters and take only the matching files from the Delta log. Predicates
under OR/NOT, on another scope (outer query over a CTE) or on ambiguous unqualified columns
are ignored: pruning less is always safe, pruning wrongly never is.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from sqlglot import exp

from workbench.lake.partition_values import coerce_like
from workbench.lake.storage import PartitionFilter

#: one reference's filters; None = this reference needs every file
RefFilters = list[PartitionFilter]

_RANGE_OPS: dict[type[exp.Expression], Callable[[Any, Any], bool]] = {
    exp.GT: operator.gt,
    exp.GTE: operator.ge,
    exp.LT: operator.lt,
    exp.LTE: operator.le,
}
_FLIP = {exp.GT: exp.LT, exp.GTE: exp.LTE, exp.LT: exp.GT, exp.LTE: exp.GTE}


@dataclass
class Condition:
    """One prunable predicate: ``column`` must satisfy ``test``; ``values`` when it is a list."""

    column: str
    test: Callable[[Any], bool]
    values: list[Any] | None = None
    negated: bool = False


@dataclass
class TablePruning:
    """Per table: the conditions of each reference (a reference with no condition reads all)."""

    references: list[list[Condition]] = field(default_factory=list)


def collect(tree: exp.Expression, partitioned: dict[str, list[str]]) -> dict[str, TablePruning]:
    """Conditions per reference of each partitioned lake table (``{table: [partition cols]}``)."""
    cte_names = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    out: dict[str, TablePruning] = {}
    for table in tree.find_all(exp.Table):
        name = table.name.lower()
        if name in cte_names or name not in partitioned:
            continue
        select = table.find_ancestor(exp.Select)
        conds = _conditions_for(table, select, partitioned[name]) if select is not None else []
        out.setdefault(name, TablePruning()).references.append(conds)
    return out


def _sources(select: exp.Select) -> list[exp.Expression]:
    from_ = select.args.get("from")
    sources: list[exp.Expression] = [from_.this] if from_ is not None else []
    sources += [j.this for j in select.args.get("joins") or []]
    return sources


def _conditions_for(table: exp.Table, select: exp.Select, columns: list[str]) -> list[Condition]:
    # the table must be a direct source of this SELECT (not inside a nested subquery of it)
    sources = _sources(select)
    if not any(s is table for s in sources):
        return []
    where = select.args.get("where")
    if where is None:
        return []
    alias = (table.alias_or_name or "").lower()
    single_source = len(sources) == 1
    conds: list[Condition] = []
    for pred in where.this.flatten() if isinstance(where.this, exp.And) else [where.this]:
        cond = _condition(pred, alias, single_source, columns)
        if cond is not None:
            conds.append(cond)
    return conds


def _column(node: exp.Expression, alias: str, single: bool, columns: list[str]) -> str | None:
    if not isinstance(node, exp.Column) or node.name.lower() not in columns:
        return None
    qualifier = node.table.lower()
    if qualifier == alias or (not qualifier and single):
        return node.name.lower()
    return None


def _literal(node: exp.Expression) -> Any:
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal):
        value = _literal(node.this)
        return None if value is None else -value
    if isinstance(node, exp.Literal):
        if node.is_string:
            return node.this
        try:
            return int(node.this)
        except ValueError:
            return float(node.this)
    return None


def _condition(pred: exp.Expression, alias: str, single: bool, columns: list[str]) -> Condition | None:
    while isinstance(pred, exp.Paren):
        pred = pred.this
    if isinstance(pred, (exp.EQ, *_RANGE_OPS)):
        binary = cast(exp.Binary, pred)
        kind: type[exp.Expression] = type(binary)
        left, right = binary.left, binary.right
        col = _column(left, alias, single, columns)
        value = _literal(right)
        if col is None:
            col, value = _column(right, alias, single, columns), _literal(left)
            kind = _FLIP.get(kind, kind)  # type: ignore[arg-type]
        if col is None or value is None:
            return None
        if kind is exp.EQ:
            return Condition(col, _equals(value), values=[value])
        return Condition(col, _compares(_RANGE_OPS[kind], value))  # type: ignore[index]
    if isinstance(pred, exp.In) and not pred.args.get("query"):
        col = _column(pred.this, alias, single, columns)
        values = [_literal(e) for e in pred.expressions]
        if col is None or any(v is None for v in values):
            return None
        return Condition(col, _one_of(values), values=values)
    if isinstance(pred, exp.Between):
        col = _column(pred.this, alias, single, columns)
        low, high = _literal(pred.args["low"]), _literal(pred.args["high"])
        if col is None or low is None or high is None:
            return None
        return Condition(col, _between(low, high))
    return None


# predicates over one partition value; small factories so each closes over its own constants
def _equals(x: Any) -> Callable[[Any], bool]:
    return lambda v: _eq(v, x)


def _compares(op: Callable[[Any, Any], bool], x: Any) -> Callable[[Any], bool]:
    return lambda v: _cmp(op, v, x)


def _one_of(xs: list[Any]) -> Callable[[Any], bool]:
    return lambda v: any(_eq(v, x) for x in xs)


def _between(lo: Any, hi: Any) -> Callable[[Any], bool]:
    return lambda v: _cmp(operator.ge, v, lo) and _cmp(operator.le, v, hi)


def _eq(value: Any, literal: Any) -> bool:
    return bool(coerce_like(value, literal) == literal)


def _cmp(op: Callable[[Any, Any], bool], value: Any, literal: Any) -> bool:
    try:
        return bool(op(coerce_like(value, literal), literal))
    except TypeError:
        return True  # incomparable: keep the file


def delta_filters(conds: list[Condition], present: dict[str, list[Any]]) -> list[PartitionFilter]:
    """Delta ``(column, 'in', [values])`` filters: ranges expanded over the values in the log."""
    by_col: dict[str, list[Any]] = {}
    for cond in conds:
        candidates = by_col.get(cond.column, present.get(cond.column, []))
        by_col[cond.column] = [v for v in candidates if cond.test(v)]
    return [(col, "in", [str(v) for v in vals]) for col, vals in by_col.items()]
