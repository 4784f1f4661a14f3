"""Aggregate-aware rewriting: run a query on a rollup when the rollup holds everything it needs.

A pass over the sqlglot tree (one concern, like sqlglot's optimizer rules). For every SELECT
scope that reads ``sales`` it checks coverage and, when *every* such scope is covered, swaps
``sales`` for the smallest covering rollup and re-aggregates:

- ``SUM(t)`` stays ``SUM(t')`` for any *linear* term ``t`` over measures: measures, ``+ - *``,
  ``/`` by a dimension-only expression, ``CASE WHEN <dimension-only condition> THEN t ...``;
  a dimension-only term ``e`` (a literal, ``CASE WHEN region = 'North' THEN 1 ...``) becomes
  ``e * rollup_rows`` because it was summed once per base row;
- ``COUNT(*)`` -> ``COALESCE(SUM(rollup_rows), 0)``; ``AVG(m)`` -> ``SUM(m) / SUM(rollup_rows)``;
- ``MIN``/``MAX`` of a dimension stay as they are; of a measure they use its declared
  ``rollup_min_<m>``/``rollup_max_<m>`` column.

Columns outside aggregates (SELECT, WHERE, GROUP BY, HAVING, ORDER BY, window clauses) must be
rollup dimensions. Joins are covered only to ``products``/``stores``/``customers`` on their key,
and only when that key is a rollup dimension: every rollup row then joins exactly the rows its
base rows joined. ``COUNT(DISTINCT ...)``, other aggregates, row-level queries, correlated
subqueries and anything unrecognised stay on ``sales`` (the reason says which). The
differential test in ``tests/test_rollup_rewrite.py`` runs original and rewritten SQL over the
whole query corpus and compares results.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import pyarrow as pa
from sqlglot import exp
from sqlglot.optimizer.scope import Scope, traverse_scope

from workbench.lake.schema import TABLES
from workbench.sql.rollups import BASE_TABLE, ROWS, Rollup

#: dimension tables a rollup can be joined to, by the key column they share with sales
JOIN_KEYS: dict[str, str] = {"products": "product_id", "stores": "store_id", "customers": "customer_id"}
_COLUMNS: dict[str, set[str]] = {name: set(schema.names) for name, schema in TABLES.items()}
#: numeric sales columns that are summed (not grouped) when they appear bare inside SUM
MEASURES: frozenset[str] = frozenset(
    f.name
    for f in TABLES[BASE_TABLE]
    if (pa.types.is_integer(f.type) or pa.types.is_floating(f.type)) and f.name not in ("year", "month")
)


class NotCovered(Exception):
    """Why a scope cannot run on a rollup (the message is shown as the route reason)."""


@dataclass
class Needs:
    """What one ``sales`` scope needs from a rollup."""

    dimensions: set[str] = field(default_factory=set)
    sums: set[str] = field(default_factory=set)
    min_max: set[str] = field(default_factory=set)

    def missing(self, rollup: Rollup) -> list[str]:
        out = sorted(self.dimensions - set(rollup.dimensions))
        out += sorted(f"SUM({m})" for m in self.sums - set(rollup.measures))
        out += sorted(f"MIN/MAX({m})" for m in self.min_max - set(rollup.min_max))
        return out

    def describe(self) -> str:
        parts = [f"dimensions {sorted(self.dimensions)}"]
        if self.sums:
            parts.append(f"sums {sorted(self.sums)}")
        if self.min_max:
            parts.append(f"min/max {sorted(self.min_max)}")
        return ", ".join(parts)


@dataclass
class RollupMatch:
    """A rewritten tree and the rollup used by each ``sales`` reference."""

    tree: exp.Expression
    rollups: list[Rollup]
    reason: str

    @property
    def views(self) -> dict[str, Rollup]:
        return {r.view: r for r in self.rollups}


def rewrite(
    tree: exp.Expression,
    rollups: Sequence[Rollup],
    size: Callable[[Rollup], int] | None = None,
    require: Iterable[str] = (),
) -> RollupMatch | str:
    """The tree on rollups, or the reason (a string) why it must stay on ``sales``.

    ``require``: dimensions every chosen rollup must also have (e.g. the column of an access
    policy's row filter, which is applied to the rollup after this rewrite).
    """
    if not rollups:
        return "no fresh rollup is available"
    tree = tree.copy()
    if any(i.name.lower().startswith("rollup_") for i in tree.find_all(exp.Identifier)):
        return "the query names rollup_* identifiers"
    try:
        scopes = traverse_scope(tree)
    except Exception as e:  # sqlglot cannot resolve the scopes: do not guess
        return f"scopes not resolvable ({type(e).__name__})"
    sales_scopes = [s for s in scopes if _sales_sources(s)]
    if not sales_scopes:
        return "the query does not read sales"
    if any(_correlated(s) for s in scopes):
        return "correlated subquery"
    plans = []
    for scope in sales_scopes:
        try:
            scope_plan = _ScopePlan(scope)
        except NotCovered as e:
            return str(e)
        scope_plan.needs.dimensions |= {c.lower() for c in require}
        covering = [r for r in rollups if not scope_plan.needs.missing(r)]
        if not covering:
            best = min(rollups, key=lambda r: len(scope_plan.needs.missing(r)))
            lacks = ", ".join(scope_plan.needs.missing(best))
            return f"no rollup covers {scope_plan.needs.describe()} (closest: {best.name}, lacks {lacks})"
        plans.append((scope_plan, min(covering, key=size or (lambda r: len(r.dimensions)))))
    for scope_plan, rollup in plans:
        scope_plan.apply(rollup)
    used = list(dict.fromkeys(r for _, r in plans))
    reason = "; ".join(f"{p.needs.describe()} covered by rollup {r.name}" for p, r in plans)
    return RollupMatch(tree, used, reason)


def _sources(scope: Scope) -> dict[str, exp.Expression | Scope]:
    """Sources named in the scope's FROM/JOINs (not CTEs merely visible to it)."""
    return {alias: src for alias, (_, src) in scope.selected_sources.items()}


def _sales_sources(scope: Scope) -> list[str]:
    return [
        alias
        for alias, src in _sources(scope).items()
        if isinstance(src, exp.Table) and src.name.lower() == BASE_TABLE and not src.args.get("db")
    ]


def _output_names(src: exp.Expression | Scope) -> set[str]:
    if isinstance(src, exp.Table):
        return _COLUMNS.get(src.name.lower(), set())
    expr = src.expression
    return {n.lower() for n in expr.named_selects} if isinstance(expr, exp.Query) else set()


def _correlated(scope: Scope) -> bool:
    """A subquery that reads a column of an enclosing query (names resolved against the schema)."""
    if not scope.is_subquery:
        return False
    sources = _sources(scope)
    names = set().union(*(_output_names(s) for s in sources.values())) if sources else set()
    select = scope.expression
    aliases = {e.alias.lower() for e in select.expressions if e.alias} if isinstance(select, exp.Select) else set()
    for col in scope.columns:
        if col.table:
            if col.table not in sources:
                return True
        elif col.name.lower() not in names | aliases:
            return True
    return False


def _is_group_agg(node: exp.Expression) -> bool:
    """An aggregate over the group (not a window function's own aggregate)."""
    if not isinstance(node, exp.AggFunc):
        return False
    parent = node.parent
    return not (isinstance(parent, exp.Window) and parent.this is node)


class _ScopePlan:
    """Coverage analysis of one SELECT scope over ``sales`` and, later, its rewrite."""

    def __init__(self, scope: Scope) -> None:
        select = scope.expression
        if not isinstance(select, exp.Select):
            raise NotCovered("a sales scope is not a plain SELECT")
        self.scope = scope
        self.select = select
        self.needs = Needs()
        sales = _sales_sources(scope)
        if len(sales) != 1:
            raise NotCovered("sales is read twice in one SELECT")
        self.alias = sales[0]
        self.table: exp.Table = _sources(scope)[self.alias]  # type: ignore[assignment]
        self.tables: dict[str, str] = {}  # alias -> lake table name
        for alias, src in _sources(scope).items():
            if not isinstance(src, exp.Table) or src.name.lower() not in _COLUMNS:
                raise NotCovered("sales is joined to a derived table")
            self.tables[alias] = src.name.lower()
        if select.args.get("laterals") or select.args.get("pivots") or self.table.args.get("pivots"):
            raise NotCovered("LATERAL/PIVOT over sales")
        extra = {k for k, v in self.table.args.items() if v and k not in ("this", "alias")}
        if extra:  # TABLESAMPLE, time travel, hints: rows of sales that a rollup cannot reproduce
            raise NotCovered(f"sales with {', '.join(sorted(extra))}")
        self.using: set[str] = set()
        self._check_joins()
        self.aggs = [
            a for a in select.find_all(exp.AggFunc) if _is_group_agg(a) and a.find_ancestor(exp.Select) is select
        ]
        if not (self.aggs or select.args.get("group") or select.args.get("distinct")):
            raise NotCovered("row-level query (no aggregation) over sales")
        if any(isinstance(s, exp.Star) for s in select.expressions):
            raise NotCovered("SELECT * over sales")
        for agg in self.aggs:
            self._check_agg(agg)
        self._check_columns()

    # --- analysis -------------------------------------------------------------------------
    def _owner(self, col: exp.Column) -> str | None:
        """Alias of the source a column belongs to; None for a select-list alias."""
        if col.table:
            if col.table not in self.tables:
                raise NotCovered(f"column {col.sql()} of an outer scope")
            return str(col.table)
        aliases = {e.alias.lower() for e in self.select.expressions if e.alias}
        if col.name.lower() in aliases and col.find_ancestor(exp.Order, exp.Having, exp.Select) is not None:
            # ORDER BY / HAVING names bind to select aliases first (DuckDB); the rollup has the
            # same column names as sales for every dimension and measure, so binding is identical
            clause = col.find_ancestor(exp.Order, exp.Having, exp.Select)
            if isinstance(clause, (exp.Order, exp.Having)) and _enclosing_agg(col, self.select) is None:
                return None
        owners = [a for a, t in self.tables.items() if col.name.lower() in _COLUMNS[t]]
        if len(owners) == 1:
            return owners[0]
        if len(owners) > 1 and col.name.lower() in self.using:
            return self.alias
        if not owners and col.name.lower() in aliases:
            return None
        raise NotCovered(f"cannot resolve column {col.sql()}")

    def _is_sales(self, col: exp.Column) -> bool:
        return self._owner(col) == self.alias

    def _check_joins(self) -> None:
        for join in self.select.args.get("joins") or []:
            target = join.this
            if not isinstance(target, exp.Table):
                raise NotCovered("join to a derived table")
            side = (join.args.get("side") or "").upper()
            kind = (join.args.get("kind") or "").upper()
            if (kind and kind not in ("INNER", "OUTER")) or side in ("RIGHT", "FULL"):
                raise NotCovered(f"{side or kind} JOIN")
            if target is self.table:
                if side:
                    raise NotCovered("sales on the right of an outer join")
                other = self.select.args["from_"].this
            else:
                other = target
            dim = other.name.lower() if isinstance(other, exp.Table) else ""
            if dim not in JOIN_KEYS:
                raise NotCovered(f"join to {dim or 'a derived table'}")
            key = JOIN_KEYS[dim]
            using = join.args.get("using")
            on = join.args.get("on")
            if using:
                names = {i.name.lower() for i in using}
                if names != {key}:
                    raise NotCovered(f"join to {dim} not on its key {key}")
                self.using.add(key)
            elif isinstance(on, exp.EQ) and all(isinstance(c, exp.Column) for c in (on.this, on.expression)):
                left, right = on.this, on.expression
                if {left.name.lower(), right.name.lower()} != {key}:
                    raise NotCovered(f"join to {dim} not on its key {key}")
                owners = {self._owner(left), self._owner(right)}
                if self.alias not in owners or len(owners) != 2:
                    raise NotCovered(f"join to {dim} not on sales.{key}")
            else:
                raise NotCovered(f"join to {dim} with a condition other than sales.{key} = {dim}.{key}")
            self.needs.dimensions.add(key)

    def _check_columns(self) -> None:
        for col in self.scope.columns:
            if not isinstance(col, exp.Column) or col.find_ancestor(exp.Select) is not self.select:
                continue
            owner = self._owner(col)
            if owner is None:
                continue
            agg = _enclosing_agg(col, self.select)
            if agg is not None:
                continue  # checked by _check_agg
            if owner == self.alias:
                self.needs.dimensions.add(col.name.lower())

    def _pure(self, node: exp.Expression) -> bool:
        """No aggregate, subquery or measure column: constant within a rollup row."""
        if any(isinstance(n, (exp.AggFunc, exp.Subquery, exp.Select, exp.Window)) for n in node.walk()):
            return False
        return not any(self._is_sales(c) and c.name.lower() in MEASURES for c in node.find_all(exp.Column))

    def _dims_only(self, node: exp.Expression) -> bool:
        """True (recording the dimensions) when ``node`` reads no measure and no aggregate."""
        if any(isinstance(n, (exp.AggFunc, exp.Subquery, exp.Select, exp.Window)) for n in node.walk()):
            return False
        for col in node.find_all(exp.Column):
            if self._is_sales(col):
                self.needs.dimensions.add(col.name.lower())
        return True

    def _check_agg(self, agg: exp.AggFunc) -> None:
        if isinstance(agg.parent, (exp.Filter, exp.WithinGroup)) or any(
            isinstance(n, exp.Distinct) for n in agg.iter_expressions()
        ):
            raise NotCovered(f"{agg.sql()} (DISTINCT/FILTER aggregates stay on sales)")
        arg = agg.this
        if isinstance(agg, exp.Sum):
            self._term(arg, None)
        elif isinstance(agg, exp.Count):
            if not (isinstance(arg, exp.Star) or (isinstance(arg, exp.Literal) and not arg.is_string)):
                raise NotCovered(f"{agg.sql()} (only COUNT(*) re-aggregates)")
        elif isinstance(agg, exp.Avg):
            if not (isinstance(arg, exp.Column) and self._is_sales(arg)):
                raise NotCovered(f"{agg.sql()} (AVG re-aggregates only for a measure column)")
            self.needs.sums.add(arg.name.lower())
        elif isinstance(agg, (exp.Min, exp.Max)):
            if isinstance(arg, exp.Column) and not self._is_sales(arg):
                return
            if not isinstance(arg, exp.Column):
                if self._dims_only(arg):
                    return
                raise NotCovered(f"{agg.sql()} (MIN/MAX of an expression over measures)")
            name = arg.name.lower()
            if name in MEASURES:
                self.needs.min_max.add(name)
            else:
                self.needs.dimensions.add(name)
        else:
            raise NotCovered(f"aggregate {agg.key.upper()} does not re-aggregate from a rollup")

    def _term(self, node: exp.Expression, rollup: Rollup | None) -> exp.Expression:
        """A linear term of SUM, rewritten for ``rollup`` (None: only record what it needs)."""
        if isinstance(node, exp.Column) and self._is_sales(node) and node.name.lower() in MEASURES:
            self.needs.sums.add(node.name.lower())
            return node.copy()
        if self._pure(node) and self._dims_only(node):
            if isinstance(node, exp.Null):
                return node.copy()
            return exp.Mul(this=exp.Paren(this=node.copy()), expression=self._rows())
        if isinstance(node, exp.Paren):
            return exp.Paren(this=self._term(node.this, rollup))
        if isinstance(node, exp.Neg):
            return exp.Neg(this=self._term(node.this, rollup))
        if isinstance(node, (exp.Add, exp.Sub)):
            return node.__class__(this=self._term(node.this, rollup), expression=self._term(node.expression, rollup))
        if isinstance(node, exp.Mul):
            if self._pure(node.this) and self._dims_only(node.this):
                return exp.Mul(this=node.this.copy(), expression=self._term(node.expression, rollup))
            if self._pure(node.expression) and self._dims_only(node.expression):
                return exp.Mul(this=self._term(node.this, rollup), expression=node.expression.copy())
        if isinstance(node, exp.Div) and self._pure(node.expression) and self._dims_only(node.expression):
            return node.__class__(
                this=self._term(node.this, rollup), expression=node.expression.copy(), **_div_flags(node)
            )
        if isinstance(node, exp.Case) and node.this is None:
            ifs = []
            for branch in node.args.get("ifs") or []:
                if not self._dims_only(branch.this):
                    raise NotCovered(f"CASE condition {branch.this.sql()} reads a measure")
                ifs.append(exp.If(this=branch.this.copy(), true=self._term(branch.args["true"], rollup)))
            default = node.args.get("default")
            return exp.Case(ifs=ifs, default=self._term(default, rollup) if default is not None else None)
        raise NotCovered(f"SUM({node.sql()}) is not a linear sum of measures")

    def _rows(self) -> exp.Column:
        return exp.column(ROWS, table=self.alias)

    # --- rewrite --------------------------------------------------------------------------
    def apply(self, rollup: Rollup) -> None:
        replacements = []
        for agg in self.aggs:
            arg = agg.this
            if isinstance(agg, exp.Sum):
                new: exp.Expression = exp.Sum(this=self._term(arg, rollup))
            elif isinstance(agg, exp.Count):
                summed = exp.Coalesce(this=exp.Sum(this=self._rows()), expressions=[exp.Literal.number(0)])
                new = exp.Cast(this=summed, to=exp.DataType.build("BIGINT"))
            elif isinstance(agg, exp.Avg):
                new = exp.Paren(this=exp.Div(this=exp.Sum(this=arg.copy()), expression=exp.Sum(this=self._rows())))
            elif isinstance(arg, exp.Column) and self._is_sales(arg) and arg.name.lower() in rollup.min_max:
                col = Rollup.min_col(arg.name) if isinstance(agg, exp.Min) else Rollup.max_col(arg.name)
                new = agg.__class__(this=exp.column(col, table=self.alias))
            else:
                continue
            replacements.append((agg, new))
        for old, new in replacements:
            old.replace(new)
        alias = self.table.args.get("alias") or exp.TableAlias(this=exp.to_identifier(self.alias))
        self.table.replace(exp.Table(this=exp.to_identifier(rollup.view), alias=alias.copy()))


def _enclosing_agg(node: exp.Expression, stop: exp.Expression) -> exp.AggFunc | None:
    parent = node.parent
    while parent is not None and parent is not stop:
        if _is_group_agg(parent):
            return parent  # type: ignore[return-value]
        parent = parent.parent
    return None


def _div_flags(node: exp.Expression) -> dict[str, object]:
    return {k: v for k, v in node.args.items() if k in ("typed", "safe")}
