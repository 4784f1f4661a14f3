"""Small sqlglot passes that make dask-sql answer correctly, or say why it cannot.

Measured here (DESIGN.md and re-checked in tests/test_engines_dask.py): dask-sql fails on
GROUP BY over expressions, DATE_TRUNC, ranking/offset windows, one-argument TRIM and
unaliased scalar subqueries, and is *silently wrong* on correlated EXISTS, ``IN (subquery
with duplicates)`` and ``CAST(float AS INTEGER)`` (truncates). Each pass fixes one
concern; :func:`unsupported_reason` names whatever is left so the engine refuses it.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

_INT_TYPES = {exp.DataType.Type.INT, exp.DataType.Type.BIGINT, exp.DataType.Type.SMALLINT, exp.DataType.Type.TINYINT}
_UNSUPPORTED_WINDOWS = {
    "RANK",
    "DENSE_RANK",
    "NTILE",
    "LAG",
    "LEAD",
    "PERCENT_RANK",
    "CUME_DIST",
    "FIRST_VALUE",
    "LAST_VALUE",
    "NTH_VALUE",
    "ROW_NUMBER",
}


def distinct_in_subquery(tree: exp.Expression) -> exp.Expression:
    """``x IN (SELECT y ...)`` -> ``x IN (SELECT DISTINCT y ...)``: dask-sql multiplies rows on duplicates."""
    for node in tree.find_all(exp.In):
        query = node.args.get("query")
        select = query.this if isinstance(query, exp.Subquery) else query
        if isinstance(select, exp.Select) and not select.args.get("distinct"):
            select.set("distinct", exp.Distinct())
    return tree


def round_integer_casts(tree: exp.Expression) -> exp.Expression:
    """``CAST(x AS INT)`` -> ``CAST(ROUND(x) AS INT)``: DuckDB rounds, dask-sql truncates."""
    for cast in list(tree.find_all(exp.Cast)):
        to = cast.args.get("to")
        if (
            isinstance(to, exp.DataType)
            and to.this in _INT_TYPES
            and not isinstance(cast.this, (exp.Literal, exp.Round))
        ):
            cast.set("this", exp.Round(this=cast.this.copy()))
    return tree


def int_division(tree: exp.Expression) -> exp.Expression:
    """``a // b`` -> ``FLOOR(a / CAST(b AS DOUBLE))``: postgres' DIV() is unknown to dask-sql."""
    for node in list(tree.find_all(exp.IntDiv)):
        divided = exp.Div(this=exp.paren(node.this.copy()), expression=exp.cast(node.expression.copy(), "DOUBLE"))
        node.replace(exp.Cast(this=exp.Floor(this=divided), to=exp.DataType.build("BIGINT")))
    return tree


def float_division(tree: exp.Expression) -> exp.Expression:
    """``a / b`` -> ``a / CAST(b AS DOUBLE)``: DuckDB divides in floating point, dask-sql may not."""
    for node in list(tree.find_all(exp.Div)):
        right = node.expression
        if not (isinstance(right, exp.Cast) and right.to.this == exp.DataType.Type.DOUBLE):
            node.set("expression", exp.cast(right.copy(), "DOUBLE"))
        node.set("safe", None)
        node.set("typed", None)
    return tree


#: the passes, in order (each takes and returns a tree; they mutate a copy)
PASSES: list[Callable[[exp.Expression], exp.Expression]] = [
    distinct_in_subquery,
    int_division,
    float_division,
    round_integer_casts,
]


def rewrite_for_dask(tree: exp.Expression) -> exp.Expression:
    out = tree.copy()
    for rewrite in PASSES:
        out = rewrite(out)
    return out


def unsupported_reason(tree: exp.Expression) -> str | None:
    """The first construct dask-sql would get wrong or cannot run, named for the user."""
    for node in tree.walk():
        if isinstance(node, exp.Window):
            fn = node.this
            name = (fn.name if isinstance(fn, exp.Anonymous) else fn.sql_name()).upper()
            if name in _UNSUPPORTED_WINDOWS:
                return f"window function {name} is not supported by dask-sql"
        if isinstance(node, (exp.TimestampTrunc, exp.DateTrunc)) or (
            isinstance(node, exp.Anonymous) and node.name.upper() == "DATE_TRUNC"
        ):
            return "DATE_TRUNC is not supported by dask-sql (group by year and month instead)"
        if isinstance(node, exp.Trim) and node.expression is None:
            return "one-argument TRIM is not supported by dask-sql"
        if isinstance(node, exp.Exists):
            return "EXISTS (subquery) gives wrong results on dask-sql (use IN (SELECT ...) or a join)"
        if isinstance(node, exp.Select) and _groups_by_expression(node):
            return "GROUP BY on an expression is not supported by dask-sql (compute it in a subquery)"
        if isinstance(node, exp.Select):
            for proj in node.expressions:
                if isinstance(proj, exp.Subquery) and not proj.alias:
                    return "an unaliased scalar subquery is not supported by dask-sql (add AS name)"
    return None


def _groups_by_expression(select: exp.Select) -> bool:
    group = select.args.get("group")
    if group is None:
        return False
    aliases = {p.alias: p.this for p in select.expressions if isinstance(p, exp.Alias)}
    for item in group.expressions:
        target = item
        if isinstance(item, exp.Literal) and item.is_int:
            idx = int(item.this) - 1
            target = select.expressions[idx] if 0 <= idx < len(select.expressions) else item
            target = target.this if isinstance(target, exp.Alias) else target
        elif isinstance(item, exp.Column) and not item.table and item.name in aliases:
            target = aliases[item.name]
        if not isinstance(target, exp.Column):
            return True
    return False
