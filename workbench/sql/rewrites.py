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
    "NTH_VALUE",
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
    """``a // b`` -> ``CAST((a - MOD(a, b)) / b AS BIGINT)``.

    Measured on dask-sql 2024.5: postgres' ``DIV()``, ``FLOOR(...)`` and ``%`` do not parse or
    plan; ``MOD`` does. Truncating division, equal to DuckDB's ``//`` on the non-negative
    values of the corpus (month, quantity). Runs after the other passes so its cast and
    division are left as they are.
    """
    for node in list(tree.find_all(exp.IntDiv)):
        a, b = _parenthesised(node.this.copy()), _parenthesised(node.expression.copy())
        mod = exp.Anonymous(this="MOD", expressions=[a.copy(), b.copy()])
        exact = exp.Div(this=exp.paren(exp.Sub(this=a, expression=mod)), expression=b)
        node.replace(exp.Cast(this=exact, to=exp.DataType.build("BIGINT")))
    return tree


def _parenthesised(node: exp.Expression) -> exp.Expression:
    return node if isinstance(node, (exp.Paren, exp.Column, exp.Literal)) else exp.paren(node)


def float_division(tree: exp.Expression) -> exp.Expression:
    """``a / b`` -> ``a / CAST(b AS DOUBLE)``: DuckDB divides in floating point, dask-sql may not."""
    for node in list(tree.find_all(exp.Div)):
        right = node.expression
        if not (isinstance(right, exp.Cast) and right.to.this == exp.DataType.Type.DOUBLE):
            node.set("expression", exp.cast(right.copy(), "DOUBLE"))
        node.set("safe", None)
        node.set("typed", None)
    return tree


def nullif_to_case(tree: exp.Expression) -> exp.Expression:
    """``NULLIF(a, b)`` -> ``CASE WHEN a = b THEN NULL ELSE a END``: dask-sql lacks NULLIF."""
    for node in list(tree.find_all(exp.Nullif)):
        a, b = node.this, node.expression
        case = exp.Case(
            ifs=[exp.If(this=exp.EQ(this=a.copy(), expression=b.copy()), true=exp.null())], default=a.copy()
        )
        node.replace(case)
    return tree


def group_by_expression_subquery(tree: exp.Expression) -> exp.Expression:
    """GROUP BY over expressions -> compute them in a subquery and group by the named result.

    Only for a SELECT with one source (the common analyst shape); anything else is left for
    :func:`unsupported_reason` to refuse.
    """
    for select in list(tree.find_all(exp.Select)):
        if not _groups_by_expression(select) or select.args.get("joins") or select.find(exp.Window):
            continue
        from_ = select.args.get("from")
        if from_ is None:
            continue
        group_exprs = [_resolve_group_item(select, item) for item in select.args["group"].expressions]
        names = {}
        inner_proj: list[exp.Expression] = []
        for i, g in enumerate(group_exprs):
            names[g] = f"_g{i}"
            inner_proj.append(exp.alias_(_unqualify(g.copy()), f"_g{i}"))
        outer = select.copy()
        outer.set("group", exp.Group(expressions=[exp.column(n) for n in names.values()]))
        for part in ("expressions", "having", "order"):
            _replace_groups(outer, part, names)
        aliases = {a.alias for a in outer.expressions if isinstance(a, exp.Alias)}
        used = [
            c for p in (*outer.expressions, outer.args.get("having")) if p is not None for c in p.find_all(exp.Column)
        ]
        order = outer.args.get("order")
        used += [c for c in (order.find_all(exp.Column) if order else []) if c.name not in aliases]
        columns = sorted({c.name for c in used if c.name not in names.values()})
        inner_proj += [exp.column(c) for c in columns]
        inner = exp.Select(expressions=inner_proj).from_(from_.this.copy())
        if select.args.get("where") is not None:
            inner.set("where", select.args["where"].copy())
        for col in outer.find_all(exp.Column):
            col.set("table", None)
        outer.set("where", None)
        outer.set("from", exp.From(this=inner.subquery("_grouped")))
        select.replace(outer)
        if select is tree:
            tree = outer
    return tree


def _resolve_group_item(select: exp.Select, item: exp.Expression) -> exp.Expression:
    if isinstance(item, exp.Literal) and item.is_int:
        target = select.expressions[int(item.this) - 1]
        return target.this if isinstance(target, exp.Alias) else target
    if isinstance(item, exp.Column) and not item.table:
        for p in select.expressions:
            if isinstance(p, exp.Alias) and p.alias == item.name:
                return p.this
    return item


def _unqualify(node: exp.Expression) -> exp.Expression:
    for col in node.find_all(exp.Column):
        col.set("table", None)
    return node


def _replace_groups(select: exp.Select, part: str, names: dict[exp.Expression, str]) -> None:
    value = select.args.get(part)
    items = value if isinstance(value, list) else [value] if value is not None else []
    for item in items:
        for node in list(item.walk()):
            for expr, name in names.items():
                if node == expr and node.parent is not None:
                    node.replace(exp.column(name))
                    break


def trim_both(tree: exp.Expression) -> exp.Expression:
    """``TRIM(x)`` -> ``TRIM(BOTH ' ' FROM x)``: dask-sql parses only the explicit form (same result)."""
    for node in list(tree.find_all(exp.Trim)):
        if node.expression is None and not node.args.get("position"):
            node.set("expression", exp.Literal.string(" "))
            node.set("position", "BOTH")
    return tree


def exists_to_in(tree: exp.Expression) -> exp.Expression:
    """Correlated ``EXISTS (SELECT .. WHERE inner.k = outer.k AND ..)`` -> ``outer.k IN (SELECT DISTINCT inner.k ..)``.

    dask-sql multiplies rows on a correlated EXISTS (measured). Only the shape with exactly one
    correlated equality, as a top-level AND-ed predicate of a WHERE, is rewritten; the semi-join
    with DISTINCT keeps each outer row at most once, and as a WHERE predicate ``IN`` and ``EXISTS``
    filter the same rows (NULL keys match in neither). Anything else is left for the refusal.
    """
    for where in list(tree.find_all(exp.Where)):
        conjuncts = list(where.this.flatten()) if isinstance(where.this, exp.And) else [where.this]
        for node in conjuncts:
            if isinstance(node, exp.Exists):
                replacement = _exists_as_in(node)
                if replacement is not None:
                    node.replace(replacement)
    return tree


def _exists_as_in(node: exp.Exists) -> exp.Expression | None:
    select = node.this.this if isinstance(node.this, exp.Subquery) else node.this
    if not isinstance(select, exp.Select) or select.args.get("joins") or select.args.get("group"):
        return None
    if select.args.get("limit") or select.args.get("having") or select.args.get("with"):
        return None
    from_ = select.args.get("from")
    if from_ is None or not isinstance(from_.this, exp.Table) or select.args.get("where") is None:
        return None
    inner = from_.this.alias_or_name.lower()
    cond = select.args["where"].this
    parts = list(cond.flatten()) if isinstance(cond, exp.And) else [cond]

    def outer_refs(e: exp.Expression) -> list[exp.Column]:
        return [c for c in e.find_all(exp.Column) if c.table and c.table.lower() != inner]

    correlated = [p for p in parts if outer_refs(p)]
    if len(correlated) != 1 or not isinstance(correlated[0], exp.EQ):
        return None
    eq = correlated[0]
    left, right = eq.left, eq.right
    if not (isinstance(left, exp.Column) and isinstance(right, exp.Column)):
        return None
    inner_col, outer_col = (left, right) if outer_refs(right) else (right, left)
    if outer_refs(inner_col) or not outer_refs(outer_col):
        return None
    if any(select.find_all(exp.Subquery)):
        return None
    rest = [p.copy() for p in parts if p is not eq]
    sub = exp.select(inner_col.copy()).from_(from_.this.copy()).distinct()
    if rest:
        sub = sub.where(exp.and_(*rest))
    return exp.In(this=outer_col.copy(), query=exp.Subquery(this=sub))


def alias_scalar_subqueries(tree: exp.Expression) -> exp.Expression:
    """``SELECT (SELECT ..)`` -> ``SELECT (SELECT ..) AS "<its SQL>"``: dask-sql needs a name.

    The alias is the subquery's own text, the name DuckDB gives such a column.
    """
    for select in list(tree.find_all(exp.Select)):
        for proj in list(select.expressions):
            if isinstance(proj, exp.Subquery) and not proj.alias:
                name = exp.to_identifier(f"({proj.this.sql(dialect='duckdb')})", quoted=True)
                proj.replace(exp.alias_(proj.copy(), name))
    return tree


def distinct_intersect(tree: exp.Expression) -> exp.Expression:
    """``a INTERSECT b`` -> ``SELECT DISTINCT * FROM (a INTERSECT b)``: dask-sql keeps duplicates.

    Measured (tests/test_tpch.py): dask-sql's INTERSECT has INTERSECT ALL semantics; the
    distinct rows of INTERSECT ALL are exactly INTERSECT. ORDER BY/LIMIT move to the wrapper.
    """
    for node in list(tree.find_all(exp.Intersect)):
        parent = node.parent
        if not node.args.get("distinct") or (isinstance(parent, exp.Subquery) and parent.alias == "_intersect"):
            continue
        inner = node.copy()
        moved = {arg: inner.args.get(arg) for arg in ("order", "limit", "offset")}
        for arg in moved:
            inner.set(arg, None)
        alias = exp.TableAlias(this=exp.to_identifier("_intersect"))
        wrapper = exp.select("*").from_(exp.Subquery(this=inner, alias=alias)).distinct()
        for arg, value in moved.items():
            if value is not None:
                wrapper.set(arg, value)
        if node is tree:
            tree = wrapper
        elif isinstance(parent, exp.Subquery):
            node.replace(wrapper)
        else:
            node.replace(exp.Subquery(this=wrapper))
    return tree


#: the passes, in order (each takes and returns a tree; they mutate a copy)
PASSES: list[Callable[[exp.Expression], exp.Expression]] = [
    exists_to_in,
    distinct_intersect,
    distinct_in_subquery,
    trim_both,
    alias_scalar_subqueries,
    nullif_to_case,
    group_by_expression_subquery,
    float_division,
    round_integer_casts,
    int_division,
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
