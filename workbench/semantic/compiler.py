"""The one compiler from a :class:`SemanticQuery` to SQL, built as sqlglot expressions.

Its output is plain SQL that every engine and the rollup rewrite handle alike (DESIGN.md):
no GROUP BY on expressions (derived grains such as quarter are computed in a subquery and
grouped by name), no DATE_TRUNC, no window functions; every division casts its numerator to
DOUBLE so integer counts never divide as integers. Filters on partition columns stay plain
``col = v`` / ``col IN (...)`` / ``col BETWEEN a AND b`` so the pruning layer sees them, and
only the dimension tables a query needs are joined.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp

from workbench.errors import NotFoundError, PlanningError, unknown_name
from workbench.semantic.model import DimensionDef, MetricDef, SemanticModel
from workbench.semantic.query import (
    Comparison,
    Filter,
    MetricFilter,
    SemanticQuery,
    TimeRange,
    Value,
    previous_month,
    previous_quarter,
)

DIALECT = "duckdb"


@dataclass
class CompiledQuery:
    """SQL plus what an answer needs to explain it."""

    sql: str
    expression: exp.Select
    tables: list[str]
    period: str
    #: output column -> what it holds: "dimension", "metric" (values of a metric, also the
    #: current/previous period of a comparison), "comparison" (growth in percent), "share" (percent)
    columns: dict[str, str] = field(default_factory=dict)


def compile_query(
    query: SemanticQuery,
    model: SemanticModel,
    vocabulary: Mapping[str, Sequence[str]] | None = None,
    dialect: str = DIALECT,
) -> CompiledQuery:
    """Compile ``query``; unknown metric/dimension/value names raise "did you mean ...?"."""
    c = _Compiler(model, vocabulary or {})
    select = c.build(query)
    return CompiledQuery(
        sql=select.sql(dialect=dialect),
        expression=select,
        tables=c.tables,
        period=query.describe_period(),
        columns=c.columns,
    )


def compile_sql(query: SemanticQuery, model: SemanticModel, **kwargs: object) -> str:
    """Just the SQL text of :func:`compile_query`."""
    return compile_query(query, model, **kwargs).sql  # type: ignore[arg-type]


class _Compiler:
    def __init__(self, model: SemanticModel, vocabulary: Mapping[str, Sequence[str]]) -> None:
        self.model = model
        self.vocabulary = vocabulary
        self.tables: list[str] = []
        self.columns: dict[str, str] = {}
        # set per query
        self.base = model.fact
        self.joined: list[str] = []
        self.nested = False
        self.inner_needs: dict[str, exp.Expression] = {}
        self.metric_override: dict[str, str] = {}
        self.per: str | None = None

    # --- entry ---------------------------------------------------------------------------
    def build(self, q: SemanticQuery) -> exp.Select:
        metrics = [self.model.metric(m) for m in q.metrics]
        comparison = q.comparison
        # "growth" is a comparison of its base metric; default: year over year
        expanded: list[MetricDef] = []
        for m in metrics:
            if m.growth_of:
                expanded.append(self.model.metric(m.growth_of))
                comparison = comparison or Comparison(kind="yoy")
            else:
                expanded.append(m)
        metrics = list({m.name: m for m in expanded}.values())
        dims = [self.model.dimension(d) for d in q.dimensions]
        filters = list(q.filters)
        if comparison and comparison.kind == "vs":
            cdim = self.model.dimension(comparison.dimension or "")
            if cdim.kind != "time":
                # two members of a category: one row each
                filters.append(Filter(dimension=cdim.name, op="in", values=list(comparison.members)))
                if cdim not in dims:
                    dims.insert(0, cdim)
                comparison = None
        for d in list(dims):
            for extra in d.with_:
                ed = self.model.dimension(extra)
                if ed not in dims and not _pinned(ed, q.time_range, filters):
                    dims.insert(dims.index(d), ed)
        self.per = q.per
        if q.per is not None and (self.model.metric(q.per).table != self.model.fact or q.share or comparison):
            raise PlanningError(
                f"a ratio per {q.per.replace('_', ' ')} is only computed over the facts, without a share or comparison",
                "ask for the two figures separately",
            )
        if q.share_of_total:
            _check_share_of_total(q, metrics, dims, comparison)
        self._choose_base(metrics, dims, filters, q, comparison)
        return self._select(q, metrics, dims, filters, comparison)

    # --- which table the query reads -----------------------------------------------------------
    def _choose_base(
        self,
        metrics: list[MetricDef],
        dims: list[DimensionDef],
        filters: list[Filter],
        q: SemanticQuery,
        comparison: Comparison | None,
    ) -> None:
        tables = {m.table for m in metrics}
        fact = self.model.fact
        if len(tables) > 1:
            raise PlanningError(
                "these metrics live on different tables: " + ", ".join(m.name for m in metrics),
                "ask for them in separate questions",
            )
        base = tables.pop() or fact
        if base != fact:
            used = dims + [self.model.dimension(f.dimension) for f in filters]
            if q.share:
                used.append(self.model.dimension(q.share.dimension))
            on_entity = all(self.model.column_on(d, base) for d in used) and not (q.time_range or comparison or q.share)
            if not on_entity:
                # count the entity through the fact table: COUNT(DISTINCT key)
                for m in metrics:
                    if _strip(m.sql) != "COUNT(*)":
                        raise PlanningError(
                            f"metric {m.name!r} cannot be combined with sales filters or periods",
                            "drop the period or the sales-only filters",
                        )
                key = self.model.tables[base].key
                self.metric_override = {m.name: f"COUNT(DISTINCT {key})" for m in metrics}
                base = fact
        self.base = base
        needed: list[str] = []
        if base == fact:
            for d in dims + [self.model.dimension(f.dimension) for f in filters]:
                t = self._table_for(d)
                if t != fact and t not in needed:
                    needed.append(t)
            if q.share:
                t = self._table_for(self.model.dimension(q.share.dimension))
                if t != fact and t not in needed:
                    needed.append(t)
            if (q.time_range or comparison) and self._time_table() not in (fact, *needed):
                needed.append(self._time_table())  # periods filter on a joined date table
        self.joined = needed
        self.tables = [base, *needed]
        self.nested = any(d.derived for d in dims)

    def _table_for(self, d: DimensionDef) -> str:
        if self.model.column_on(d, self.base):
            return self.base
        return d.table or self.model.fact

    # --- references ------------------------------------------------------------------------
    def _alias(self, table: str) -> str | None:
        return self.model.tables[table].alias if self.joined else None

    def _physical(self, d: DimensionDef) -> exp.Expression:
        """The dimension as an expression over the FROM clause (for WHERE / inner SELECT)."""
        table = self._table_for(d)
        if d.sql:
            parsed = sqlglot.parse_one(d.sql, read=DIALECT)
            return self._qualify(parsed, table, outer=False)
        col = self.model.column_on(d, table) or d.column or d.name
        return exp.column(col, table=self._alias(table))

    def _dim_ref(self, d: DimensionDef) -> exp.Expression:
        """The dimension where aggregates see it (the subquery's output in nested mode)."""
        if self.nested:
            self.inner_needs[d.name] = self._physical(d)
            return exp.column(d.name)
        return self._physical(d)

    def _qualify(self, e: exp.Expression, table: str, outer: bool = True) -> exp.Expression:
        alias = self._alias(table)

        def fix(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Column) and not node.table:
                if outer and self.nested and table == self.base:
                    self.inner_needs.setdefault(node.name, exp.column(node.name, table=alias))
                    return exp.column(node.name)
                return exp.column(node.name, table=alias)
            return node

        return e.copy().transform(fix)

    # --- metrics ---------------------------------------------------------------------------
    def _metric_expr(self, m: MetricDef, cond: exp.Expression | None = None) -> exp.Expression:
        sql = self.metric_override.get(m.name) or m.sql or ""
        parsed = sqlglot.parse_one(sql, read=DIALECT)
        if cond is not None:
            parsed = _conditional(parsed, cond)
        parsed = parsed.transform(_float_division)
        return self._qualify(parsed, self.base)

    # --- filters ---------------------------------------------------------------------------
    def _filter(self, f: Filter, outer: bool = False) -> exp.Expression:
        d = self.model.dimension(f.dimension)
        ref = self._dim_ref(d) if outer else self._physical(d)
        values = [self._literal(d, v) for v in f.values]
        op = f.op
        if op in ("=", "in") and len(values) == 1:
            return exp.EQ(this=ref, expression=values[0])
        if op == "in" or op == "=":
            return exp.In(this=ref, expressions=values)
        if op == "not in" or (op == "!=" and len(values) > 1):
            return exp.Not(this=exp.In(this=ref, expressions=values))
        if op == "between":
            return exp.Between(this=ref, low=values[0], high=values[1])
        cls = {"!=": exp.NEQ, ">": exp.GT, ">=": exp.GTE, "<": exp.LT, "<=": exp.LTE}[op]
        return cls(this=ref, expression=values[0])

    def _literal(self, d: DimensionDef, v: Value) -> exp.Expression:
        if isinstance(v, dt.date):
            return exp.cast(exp.Literal.string(v.isoformat()), "DATE")
        if d.kind in ("time", "number"):
            try:
                num = float(v)
            except (TypeError, ValueError) as e:
                raise PlanningError(f"{d.name} needs a number, got {v!r}", f"give {d.name} as a number") from e
            return exp.Literal.number(int(num) if num.is_integer() and d.kind == "time" else num)
        text = str(v)
        known = self.vocabulary.get(d.name)
        if known:
            match = {k.lower(): k for k in known}.get(text.lower())
            if match is None:
                raise unknown_name(f"{d.name.replace('_', ' ')} value", text, known)
            text = match
        return exp.Literal.string(text)

    def _period(self, tr: TimeRange) -> list[exp.Expression]:
        t = self.model.time
        year, month, date = (self._time_part(c) for c in (t.year, t.month, t.date))
        out: list[exp.Expression] = []
        if tr.year is not None:
            if tr.end_year and tr.end_year != tr.year:
                out.append(exp.Between(this=year, low=_num(tr.year), high=_num(tr.end_year)))
            else:
                out.append(exp.EQ(this=year, expression=_num(tr.year)))
            if tr.month:
                out.append(exp.EQ(this=month.copy(), expression=_num(tr.month)))
            elif tr.quarter:
                m0 = 3 * (tr.quarter - 1) + 1
                out.append(exp.Between(this=month.copy(), low=_num(m0), high=_num(m0 + 2)))
            return out
        start, end = tr.bounds()
        if tr.start and tr.end:
            if start.year == end.year:
                out.append(exp.EQ(this=year, expression=_num(start.year)))
                # month predicates let the pruner skip the other months' files
                if start.month == end.month:
                    out.append(exp.EQ(this=month, expression=_num(start.month)))
                else:
                    out.append(exp.Between(this=month, low=_num(start.month), high=_num(end.month)))
            else:
                out.append(exp.Between(this=year, low=_num(start.year), high=_num(end.year)))
            out.append(exp.Between(this=date, low=_date(start), high=_date(end)))
        elif tr.start:
            out.append(exp.GTE(this=year, expression=_num(start.year)))
            out.append(exp.GTE(this=date, expression=_date(start)))
        elif tr.end:
            out.append(exp.LTE(this=year, expression=_num(end.year)))
            out.append(exp.LTE(this=date, expression=_date(end)))
        return out

    def _time_part(self, name: str) -> exp.Expression:
        """A column of the fact, or the dimension of that name (``YEAR(order_date)`` derived from a
        user's date column, or a column of a joined date table such as TPC-DS ``date_dim``)."""
        d = self._time_dimension(name)
        if d is not None and (d.sql or d.table not in (None, self.model.fact)):
            return self._physical(d)
        return exp.column(name, table=self._alias(self.model.fact))

    def _time_dimension(self, name: str) -> DimensionDef | None:
        """The dimension called ``name``, else the one whose column is ``name`` (the date)."""
        found = self.model.dimensions.get(name)
        if found is None:
            found = next((d for d in self.model.dimensions.values() if d.column == name and d.kind == "time"), None)
        return found

    def _time_table(self) -> str:
        """The table holding the model's time columns (the fact, or a joined date table)."""
        d = self._time_dimension(self.model.time.year)
        return (d.table if d is not None else None) or self.model.fact

    # --- comparisons ---------------------------------------------------------------------------
    def _comparison_conditions(
        self, q: SemanticQuery, comparison: Comparison
    ) -> tuple[list[exp.Expression], exp.Expression, exp.Expression]:
        """(WHERE predicates, condition of the current period, condition of the base period)."""
        tr = q.time_range
        t = self.model.time
        if comparison.kind == "vs":
            d = self.model.dimension(comparison.dimension or "")
            base_v, cur_v = comparison.members
            where: list[exp.Expression] = [
                exp.In(this=self._physical(d), expressions=[self._literal(d, v) for v in (base_v, cur_v)])
            ]
            if tr is not None and d.name != "year":
                where += self._period(tr)
            ref = self._dim_ref(d)
            cur: exp.Expression = exp.EQ(this=ref, expression=self._literal(d, cur_v))
            base: exp.Expression = exp.EQ(this=ref.copy(), expression=self._literal(d, base_v))
            return where, cur, base
        if tr is None or tr.year is None:
            raise PlanningError(
                f"a {comparison.kind} comparison needs a calendar period",
                "name a year, quarter or month (e.g. 'in 2024', 'in March 2024')",
            )
        ydim, mdim = self.model.dimension(t.year), self.model.dimension(t.month)
        year_ref = self._dim_ref(ydim)
        if comparison.kind == "yoy":
            if tr.end_year and tr.end_year != tr.year:
                raise PlanningError("year over year needs a single period", "name one year, quarter or month")
            where = [exp.In(this=self._physical(ydim), expressions=[_num(tr.year - 1), _num(tr.year)])]
            where += self._period(tr)[1:]
            cur = exp.EQ(this=year_ref, expression=_num(tr.year))
            base = exp.EQ(this=year_ref.copy(), expression=_num(tr.year - 1))
            return where, cur, base
        if comparison.kind == "qoq":
            return self._quarter_over_quarter(
                tr, year_ref, self._dim_ref(mdim), self._physical(ydim), self._physical(mdim)
            )
        # month over month
        if not tr.month:
            raise PlanningError("month over month needs a month", "name a month, e.g. 'in March 2024'")
        py, pm = previous_month(tr.year, tr.month)
        month_ref = self._dim_ref(mdim)
        y_phys, m_phys = self._physical(ydim), self._physical(mdim)
        if py == tr.year:
            where = [
                exp.EQ(this=y_phys, expression=_num(tr.year)),
                exp.In(this=m_phys, expressions=[_num(pm), _num(tr.month)]),
            ]
        else:
            where = [
                exp.In(this=y_phys, expressions=[_num(py), _num(tr.year)]),
                exp.In(this=m_phys, expressions=[_num(pm), _num(tr.month)]),
            ]
        cur = exp.and_(
            exp.EQ(this=year_ref, expression=_num(tr.year)),
            exp.EQ(this=month_ref, expression=_num(tr.month)),
        )
        base = exp.and_(
            exp.EQ(this=year_ref.copy(), expression=_num(py)),
            exp.EQ(this=month_ref.copy(), expression=_num(pm)),
        )
        return where, cur, base

    @staticmethod
    def _quarter_over_quarter(
        tr: TimeRange,
        year_ref: exp.Expression,
        month_ref: exp.Expression,
        y_phys: exp.Expression,
        m_phys: exp.Expression,
    ) -> tuple[list[exp.Expression], exp.Expression, exp.Expression]:
        """Where (both quarters, for pruning), and the current / base quarter conditions."""
        if not tr.quarter or tr.year is None:
            raise PlanningError("quarter over quarter needs a quarter", "name one, e.g. 'in Q2 2024'")
        py, pq = previous_quarter(tr.year, tr.quarter)

        def quarter(y: int, q: int, yr: exp.Expression, mr: exp.Expression) -> exp.Expression:
            months = exp.Between(this=mr, low=_num(3 * (q - 1) + 1), high=_num(3 * q))
            return exp.and_(exp.EQ(this=yr, expression=_num(y)), months)

        where: list[exp.Expression] = [
            exp.In(this=y_phys, expressions=[_num(py), _num(tr.year)] if py != tr.year else [_num(tr.year)]),
            exp.paren(
                exp.or_(
                    quarter(tr.year, tr.quarter, y_phys.copy(), m_phys.copy()),
                    quarter(py, pq, y_phys.copy(), m_phys.copy()),
                )
            ),
        ]
        cur = quarter(tr.year, tr.quarter, year_ref, month_ref)
        base = quarter(py, pq, year_ref.copy(), month_ref.copy())
        return where, cur, base

    # --- assembly ----------------------------------------------------------------------------
    def _select(
        self,
        q: SemanticQuery,
        metrics: list[MetricDef],
        dims: list[DimensionDef],
        filters: list[Filter],
        comparison: Comparison | None,
    ) -> exp.Select:
        """The whole SELECT; helpers run in a fixed order because they register columns and joins."""
        where: list[exp.Expression] = [self._filter(f) for f in filters]
        projections, group = self._dimension_projections(dims)
        if comparison is not None:
            cwhere, cur, base = self._comparison_conditions(q, comparison)
            where += cwhere
            projections += self._comparison_projections(metrics, cur, base)
        else:
            if q.time_range is not None and self.base == self.model.fact:
                where += self._period(q.time_range)
            projections += self._metric_projections(q, metrics)
        if q.time_range is not None and self.base != self.model.fact:
            raise PlanningError("a period cannot apply to this metric", "drop the period")
        select = self._select_from(projections, where)
        return self._finish_select(select, q, metrics, dims, group, comparison)

    def _dimension_projections(self, dims: list[DimensionDef]) -> tuple[list[exp.Expression], list[exp.Expression]]:
        """(projections, GROUP BY) for the dimensions; aliased when the output name would differ."""
        projections: list[exp.Expression] = []
        group: list[exp.Expression] = []
        for d in dims:
            ref = self._dim_ref(d)
            projections.append(exp.alias_(ref, d.name) if (self.nested or _name(ref) != d.name) else ref)
            group.append(ref.copy())
            self.columns[d.name] = "dimension"
        return projections, group

    def _comparison_projections(
        self, metrics: list[MetricDef], cur: exp.Expression, base: exp.Expression
    ) -> list[exp.Expression]:
        """<metric>_current, _previous and _growth_pct per metric, all from one scan."""
        projections: list[exp.Expression] = []
        for m in metrics:
            now, before = self._metric_expr(m, cur), self._metric_expr(m, base)
            growth = exp.Mul(
                this=exp.Div(
                    this=exp.paren(exp.Sub(this=_as_double(now.copy()), expression=before.copy())),
                    expression=before.copy(),
                ),
                expression=_num(100),
            )
            for suffix, e, kind in (
                ("current", now, "metric"),
                ("previous", before, "metric"),
                ("growth_pct", growth, "comparison"),
            ):
                projections.append(exp.alias_(e, f"{m.name}_{suffix}"))
                self.columns[f"{m.name}_{suffix}"] = kind
        return projections

    def _metric_projections(self, q: SemanticQuery, metrics: list[MetricDef]) -> list[exp.Expression]:
        """Metrics without a comparison: as a share of a total, per another metric, or plain."""
        share_cond = self._filter(q.share, outer=True) if q.share else None
        projections: list[exp.Expression] = []
        for m in metrics:
            if share_cond is not None:
                projections += self._share_projections(m, share_cond)
            elif q.share_of_total:
                projections += self._share_of_total_projections(m)
            elif q.per:
                ratio = exp.Div(
                    this=_as_double(self._metric_expr(m)), expression=self._metric_expr(self.model.metric(q.per))
                )
                projections.append(exp.alias_(ratio, f"{m.name}_per_{q.per}"))
                self.columns[f"{m.name}_per_{q.per}"] = "metric"
            else:
                projections.append(exp.alias_(self._metric_expr(m), m.name))
                self.columns[m.name] = "metric"
        return projections

    def _share_projections(self, m: MetricDef, share_cond: exp.Expression) -> list[exp.Expression]:
        """<metric>_share_pct with the part and the total beside it, so the answer can show both."""
        part = self._metric_expr(m, share_cond)
        total = self._metric_expr(m)
        share = exp.Mul(this=exp.Div(this=_as_double(part.copy()), expression=total.copy()), expression=_num(100))
        self.columns.update({f"{m.name}_share_pct": "share", m.name: "metric", f"{m.name}_total": "metric"})
        return [
            exp.alias_(share, f"{m.name}_share_pct"),
            exp.alias_(part, m.name),
            exp.alias_(total, f"{m.name}_total"),
        ]

    def _share_of_total_projections(self, m: MetricDef) -> list[exp.Expression]:
        """<metric>_share_pct of each row in the total over all rows (a window over the groups), then the metric."""
        value = self._metric_expr(m)
        total = exp.Window(this=exp.Sum(this=value.copy()))
        share = exp.Mul(this=exp.Div(this=_as_double(value.copy()), expression=total), expression=_num(100))
        self.columns.update({f"{m.name}_share_pct": "share", m.name: "metric"})
        return [exp.alias_(share, f"{m.name}_share_pct"), exp.alias_(value, m.name)]

    def _select_from(self, projections: list[exp.Expression], where: list[exp.Expression]) -> exp.Select:
        """FROM, joins and WHERE; nested mode filters inside a subquery so aggregates see its outputs."""
        source = self._from()
        if self.nested:
            inner = exp.select(*[exp.alias_(e, n) for n, e in self.inner_needs.items()]).from_(source[0])
            for j in source[1:]:
                inner = inner.join(j)
            if where:
                inner = inner.where(exp.and_(*where))
            return exp.select(*projections).from_(
                exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier("q")))
            )
        select = exp.select(*projections).from_(source[0])
        for j in source[1:]:
            select = select.join(j)
        if where:
            select = select.where(exp.and_(*where))
        return select

    def _finish_select(
        self,
        select: exp.Select,
        q: SemanticQuery,
        metrics: list[MetricDef],
        dims: list[DimensionDef],
        group: list[exp.Expression],
        comparison: Comparison | None,
    ) -> exp.Select:
        """GROUP BY, HAVING, ORDER BY and LIMIT, appended after the FROM so clause order is stable."""
        if group:
            select = select.group_by(*group)
        if q.having:
            select = select.having(exp.and_(*[self._having(h) for h in q.having]))
        for o in self._order(q, metrics, dims, comparison):
            select = select.order_by(o)
        if q.limit:
            select = select.limit(q.limit)
        return select

    def _having(self, h: MetricFilter) -> exp.Expression:
        """ "profit < 0" over the aggregate itself (the alias is not visible in HAVING everywhere)."""
        ops: dict[str, type[exp.Binary]] = {
            "=": exp.EQ, "!=": exp.NEQ, ">": exp.GT, ">=": exp.GTE, "<": exp.LT, "<=": exp.LTE,
        }  # fmt: skip
        return ops[h.op](this=self._metric_expr(self.model.metric(h.metric)), expression=_num(h.value))

    def _from(self) -> list[exp.Expression]:
        base_alias = self._alias(self.base)
        frm: list[exp.Expression] = [
            exp.to_table(self.base, alias=base_alias) if base_alias else exp.to_table(self.base)
        ]
        for t in self.joined:
            j = self.model.join_for(t)
            right = self.model.tables[t].alias
            on = exp.EQ(this=exp.column(j.column, table=base_alias), expression=exp.column(j.key, table=right))
            frm.append(exp.Join(this=exp.to_table(t, alias=right), on=on, kind="INNER"))
        return frm

    def _order(
        self, q: SemanticQuery, metrics: list[MetricDef], dims: list[DimensionDef], comparison: Comparison | None
    ) -> list[exp.Expression]:
        out: list[exp.Expression] = []
        names = {m.name for m in metrics}
        for o in q.order:
            target = self._order_target(o.by, names, dims, comparison, q.share is not None or q.share_of_total)
            out.append(exp.Ordered(this=exp.column(target), desc=o.direction == "desc"))
        if not q.order:
            # trends read in time order
            for d in dims:
                if d.kind == "time":
                    out.append(exp.Ordered(this=exp.column(d.name), desc=False))
        return out

    def _order_target(
        self, by: str, names: set[str], dims: list[DimensionDef], comparison: Comparison | None, share: bool
    ) -> str:
        if by in self.columns:
            return by
        try:
            m = self.model.metric(by)
        except NotFoundError:  # not a metric: ordered by a dimension or an output column
            m = None
        if m is not None:
            if m.growth_of:
                return f"{m.growth_of}_growth_pct"
            if m.name in names:
                ratio = f"{m.name}_per_{self.per}" if self.per else ""
                if ratio in self.columns:
                    return ratio
                if comparison is not None:
                    return f"{m.name}_current"
                return f"{m.name}_share_pct" if share else m.name
        d = self.model.dimension(by)
        if d in dims:
            return d.name
        raise unknown_name("order column", by, list(self.columns))


# --- helpers -----------------------------------------------------------------------------------
def _check_share_of_total(
    q: SemanticQuery, metrics: list[MetricDef], dims: list[DimensionDef], comparison: Comparison | None
) -> None:
    """A share of the total needs a breakdown to share out and a metric whose parts add up to it."""
    if not dims:
        raise PlanningError("a share of the total needs a breakdown", "say by what, e.g. 'share of revenue by region'")
    if q.share is not None or comparison is not None or q.per is not None:
        raise PlanningError(
            "a share of the total is computed alone, without a filtered share, a comparison or a ratio",
            "ask for the two figures separately",
        )
    summed = [m.name for m in metrics if not m.additive]
    if summed:
        raise PlanningError(
            f"{', '.join(n.replace('_', ' ') for n in summed)} does not add up over groups: it has no share of a total",
            "ask for the share of a total such as revenue, units or transactions",
        )


def _conditional(e: exp.Expression, cond: exp.Expression) -> exp.Expression:
    """Restrict every aggregate in ``e`` to rows where ``cond`` holds (CASE WHEN inside)."""

    def fix(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.AggFunc):
            arg = node.this
            if isinstance(node, exp.Count) and (arg is None or isinstance(arg, exp.Star)):
                return exp.Count(this=exp.Case(ifs=[exp.If(this=cond.copy(), true=exp.Literal.number(1))]))
            if isinstance(arg, exp.Distinct):
                inner = arg.expressions[0]
                case = exp.Case(ifs=[exp.If(this=cond.copy(), true=inner.copy())])
                return node.__class__(this=exp.Distinct(expressions=[case]))
            case = exp.Case(ifs=[exp.If(this=cond.copy(), true=arg.copy())])
            return node.__class__(this=case)
        return node

    return e.transform(fix, copy=True)


def _float_division(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Div) and not isinstance(node.this, exp.Cast):
        return exp.Div(this=_as_double(node.this.copy()), expression=node.expression.copy())
    return node


def _as_double(e: exp.Expression) -> exp.Expression:
    return e if isinstance(e, exp.Cast) else exp.cast(e, "DOUBLE")


def _num(v: int | float) -> exp.Literal:
    return exp.Literal.number(v)


def _date(d: dt.date) -> exp.Expression:
    return exp.cast(exp.Literal.string(d.isoformat()), "DATE")


def _name(e: exp.Expression) -> str:
    return e.name if isinstance(e, exp.Column) else ""


def _strip(sql: str | None) -> str:
    return (sql or "").replace(" ", "").upper()


def _pinned(d: DimensionDef, tr: TimeRange | None, filters: list[Filter]) -> bool:
    """True when a single value of ``d`` is fixed already (no need to group by it)."""
    if d.name == "year" and tr is not None and tr.year is not None and not (tr.end_year and tr.end_year != tr.year):
        return True
    return any(f.dimension == d.name and f.op in ("=", "in") and len(f.values) == 1 for f in filters)
