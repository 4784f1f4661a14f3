"""Split execution: the heavy aggregate on the cluster, the small remainder in DuckDB.

dask-sql cannot run ranking/offset windows (RANK, DENSE_RANK, LAG, LEAD, NTILE) or
DATE_TRUNC (DESIGN.md), but in analyst SQL they nearly always sit *on top of* a GROUP BY:
``RANK() OVER (ORDER BY SUM(revenue))``. So a grouped SELECT is cut in two:

* the **stage** (dask-sql, on the cluster): ``SELECT <keys> AS _k0.., <aggregates> AS _a0..
  FROM .. WHERE .. GROUP BY <keys>``, the scan/filter/join/aggregate that reads the lake;
* the **remainder** (DuckDB in process, over the stage's pandas result, no lake access):
  the original projections, HAVING, windows, ORDER BY, LIMIT with every aggregate and key
  replaced by the stage column that holds it.

``DATE_TRUNC('month'|'year', date)`` as a key of ``sales`` becomes the keys ``year, month``
in the stage and ``MAKE_DATE(year, month, 1)`` in the remainder (both are derived from
``date`` in the lake, retail-schema.md), so it needs no date arithmetic on the cluster.
Anything the cut cannot express exactly (subqueries in the projection, columns that are
neither keys nor inside aggregates) is not split: the engine refuses it by name.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from workbench.sql import rewrites

#: name of the stage result inside the remainder query
STAGE = "_stage"
_DATE_GRAINS = {"MONTH": ("year", "month"), "YEAR": ("year",)}


@dataclass
class SplitPlan:
    """What runs where: ``stage`` on dask-sql; ``remainder`` (None = nothing) on DuckDB."""

    stage: exp.Expression
    remainder: exp.Expression | None = None

    def display(self) -> exp.Expression:
        """One tree showing both parts (``WITH _stage AS (stage) remainder``)."""
        if not isinstance(self.remainder, exp.Select):
            return self.stage
        return self.remainder.copy().with_(STAGE, as_=self.stage.copy())


def plan_split(tree: exp.Expression) -> SplitPlan | str:
    """A plan for ``tree`` on the dask engine, or the reason it cannot run there correctly."""
    whole = rewrites.rewrite_for_dask(tree)
    why = rewrites.unsupported_reason(whole)
    if why is None:
        return SplitPlan(whole)
    cut = aggregate_split(tree)
    if cut is None:
        return why
    inner, outer = cut
    stage = rewrites.rewrite_for_dask(inner)
    why_stage = rewrites.unsupported_reason(stage)
    if why_stage is not None:
        return why_stage
    return SplitPlan(stage, outer)


def aggregate_split(tree: exp.Expression) -> tuple[exp.Select, exp.Select] | None:
    """``(stage, remainder)`` for a grouped SELECT, or None when the cut would not be exact."""
    if not isinstance(tree, exp.Select) or tree.args.get("with") or tree.args.get("group") is None:
        return None
    sel = tree.copy()
    upper = [*sel.expressions, sel.args.get("having"), sel.args.get("order"), sel.args.get("qualify")]
    parts = [p for p in upper if p is not None]
    if any(p.find(exp.Subquery, exp.Exists) for p in parts):
        return None
    from_ = sel.args.get("from")
    if from_ is None:
        return None

    stage_proj: list[exp.Expression] = []
    stage_group: list[exp.Expression] = []
    replace_keys: list[tuple[exp.Expression, exp.Expression]] = []
    for i, item in enumerate(sel.args["group"].expressions):
        key = rewrites._resolve_group_item(sel, item)
        grain = _date_trunc_grain(sel, key)
        if grain is not None:
            col = key.this
            names = []
            for part in _DATE_GRAINS[grain]:
                name = f"_k{i}_{part}"
                src = exp.column(part, table=col.table or None)
                stage_proj.append(exp.alias_(src, name))
                stage_group.append(src.copy())
                names.append(exp.column(name))
            month = names[1] if len(names) > 1 else exp.Literal.number(1)
            replace_keys.append((key, exp.func("MAKE_DATE", names[0], month, exp.Literal.number(1))))
            continue
        name = f"_k{i}"
        stage_proj.append(exp.alias_(key.copy(), name))
        stage_group.append(key.copy())
        replace_keys.append((key, exp.column(name)))

    aggs: dict[str, str] = {}
    for part in parts:
        for node in part.walk():
            if _is_group_aggregate(node) and node.sql() not in aggs:
                aggs[node.sql()] = f"_a{len(aggs)}"
                stage_proj.append(exp.alias_(node.copy(), aggs[node.sql()]))

    stage = exp.Select(expressions=stage_proj)
    stage.set("from", from_.copy())
    for arg in ("joins", "where"):
        if sel.args.get(arg):
            stage.set(arg, [j.copy() for j in sel.args[arg]] if arg == "joins" else sel.args[arg].copy())
    stage.set("group", exp.Group(expressions=stage_group))

    def swap(node: exp.Expression) -> exp.Expression:
        if _is_group_aggregate(node) and node.sql() in aggs:
            return exp.column(aggs[node.sql()])
        for key, repl in replace_keys:
            if _same(node, key):
                return repl.copy()
        return node

    outer = exp.Select(expressions=[_keep_name(p, p.transform(swap)) for p in sel.expressions])
    outer.set("from", exp.From(this=exp.to_table(STAGE)))
    if sel.args.get("having") is not None:
        outer.set("where", exp.Where(this=sel.args["having"].this.transform(swap)))
    for arg in ("order", "qualify"):
        if sel.args.get(arg) is not None:
            outer.set(arg, sel.args[arg].transform(swap))
    for arg in ("limit", "offset", "distinct"):
        if sel.args.get(arg) is not None:
            outer.set(arg, sel.args[arg].copy())

    allowed = {v for v in aggs.values()} | {c.name for _, r in replace_keys for c in r.find_all(exp.Column)}
    allowed |= {p.alias for p in outer.expressions if isinstance(p, exp.Alias)}
    if any(c.name not in allowed for c in outer.find_all(exp.Column)):
        return None  # a column that is neither a key nor aggregated: leave it to the refusal
    return stage, outer


def _keep_name(original: exp.Expression, swapped: exp.Expression) -> exp.Expression:
    """The remainder's column keeps the name the unsplit query gives it (``shop_id``, not ``_k0``)."""
    if isinstance(original, exp.Alias) or swapped.alias_or_name == original.alias_or_name:
        return swapped
    name = original.name if isinstance(original, exp.Column) else original.sql(dialect="duckdb")
    return exp.alias_(swapped, exp.to_identifier(name, quoted=True))


def _is_group_aggregate(node: exp.Expression) -> bool:
    """An aggregate of the GROUP BY (not the function of a window, not nested in another)."""
    if not isinstance(node, exp.AggFunc) or isinstance(node.parent, exp.Window):
        return False
    parent = node.parent
    while parent is not None:
        if isinstance(parent, exp.AggFunc) and not isinstance(parent.parent, exp.Window):
            return False
        parent = parent.parent
    return True


def _same(node: exp.Expression, key: exp.Expression) -> bool:
    if isinstance(node, exp.Column) and isinstance(key, exp.Column):
        if node.name.lower() != key.name.lower():
            return False
        return not node.table or not key.table or node.table.lower() == key.table.lower()
    return not isinstance(node, exp.Column) and node == key


def _date_trunc_grain(sel: exp.Select, key: exp.Expression) -> str | None:
    """``MONTH``/``YEAR`` when ``key`` is ``DATE_TRUNC(grain, sales.date)``."""
    if not isinstance(key, (exp.TimestampTrunc, exp.DateTrunc)):
        return None
    unit = key.args.get("unit")
    grain = (unit.name if unit is not None else "").upper()
    col = key.this
    if grain not in _DATE_GRAINS or not isinstance(col, exp.Column) or col.name.lower() != "date":
        return None
    sources = [sel.args["from"].this, *(j.this for j in sel.args.get("joins") or [])]
    tables = [s for s in sources if isinstance(s, exp.Table)]
    if len(tables) != len(sources):
        return None
    if col.table:
        match = [t for t in tables if t.alias_or_name.lower() == col.table.lower()]
    else:
        match = tables if len(tables) == 1 else []
    return grain if len(match) == 1 and match[0].name.lower() == "sales" else None
