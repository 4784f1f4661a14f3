"""The value vocabulary: distinct values of low-cardinality dimensions, read from the lake once.

Planners need to know that "Electronics" is a category and "Mobile" a channel; the lake is the
only authority (a user's own tables have their own values). Reading is cheap by design:
partition columns come from the Delta log, other columns from the smallest table that holds
them (``products.category`` rather than a scan of ``sales``), and the result is cached in
memory and on disk per table version, so a 100 GB fact table is scanned at most once per
version for the few columns that live only there.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from typing import TYPE_CHECKING, Any

import sqlglot
from sqlglot import exp

from workbench.errors import WorkbenchError
from workbench.semantic.model import DimensionDef, SemanticModel

if TYPE_CHECKING:
    from workbench.runner import QueryRunner

log = logging.getLogger(__name__)

#: dimensions with more distinct values than this are not a vocabulary (ids, names)
MAX_VALUES = 500

_memory: dict[str, dict[str, list[str]]] = {}


def load_vocabulary(wb: QueryRunner, model: SemanticModel) -> dict[str, list[str]]:
    """``{dimension: sorted distinct values}`` for every dimension marked ``vocabulary: true``."""
    versions = _versions(wb, model)
    # the dimensions are part of the key: a redrafted model under the same name must not reuse old values
    dims = sorted((n, d.table, d.column, d.sql) for n, d in model.dimensions.items() if d.vocabulary)
    key = hashlib.sha256(json.dumps([wb.lake.url, model.name, versions, dims], sort_keys=True).encode()).hexdigest()[
        :16
    ]
    if key in _memory:
        return _memory[key]
    cache_file = wb.settings.home_path / "vocabulary" / f"{key}.json"
    if cache_file.exists():
        try:
            _memory[key] = json.loads(cache_file.read_text())
            return _memory[key]
        except (OSError, ValueError):
            pass
    out: dict[str, list[str]] = {}
    for name, d in model.dimensions.items():
        if not d.vocabulary:
            continue
        try:
            values = _distinct(wb, model, d)
        except WorkbenchError as e:
            log.warning("vocabulary of %s unavailable: %s", name, e.message)
            continue
        if 0 < len(values) <= MAX_VALUES:
            out[name] = values
    _memory[key] = out
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        cache_file.write_text(json.dumps(out))
    except OSError as e:  # a read-only home only costs a re-read
        log.info("vocabulary cache not written: %s", e)
    return out


def latest_date(wb: QueryRunner, model: SemanticModel) -> dt.date | None:
    """The latest date of the fact table (relative dates resolve against it), pruned to its last year."""
    t = model.time
    query = exp.select(exp.Max(this=exp.column(t.date)).as_("latest")).from_(model.fact)
    derived = model.dimensions.get(t.date)
    if derived is not None and derived.sql and derived.table in (None, model.fact):  # dates kept as text
        latest = exp.Max(this=sqlglot.parse_one(derived.sql, read="duckdb")).as_("latest")
        return _latest(wb, exp.select(latest).from_(model.fact))
    on = next((d for d in model.dimensions.values() if d.column == t.date and d.kind == "time"), None)
    if on is not None and on.table not in (None, model.fact):  # a joined date table (TPC-DS date_dim)
        j = model.join_for(on.table)
        cond = exp.column(j.column, table="f").eq(exp.column(j.key, table="d"))
        query = (
            exp.select(exp.Max(this=exp.column(t.date, table="d")).as_("latest"))
            .from_(exp.to_table(model.fact, alias="f"))
            .join(exp.to_table(on.table, alias="d"), on=cond)
        )
        return _latest(wb, query)
    try:
        years = wb.snapshot.meta(model.fact).values.get(t.year)
        if years:
            query = query.where(exp.column(t.year).eq(max(int(y) for y in years)))
    except (WorkbenchError, AttributeError):
        pass
    return _latest(wb, query)


def _latest(wb: QueryRunner, query: exp.Select) -> dt.date | None:
    value = wb.sql(query.sql(dialect="duckdb")).df.iloc[0, 0]
    if value is None or str(value) in ("NaT", "nan", "None"):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _versions(wb: QueryRunner, model: SemanticModel) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for table in model.tables:
        try:
            out[table] = wb.lake.version(table)
        except WorkbenchError:
            out[table] = None
    return out


def _distinct(wb: QueryRunner, model: SemanticModel, d: DimensionDef) -> list[str]:
    """Distinct values, from the Delta log for partition columns, else from the smallest table."""
    candidates = [(d.table or model.fact, d.column), *d.also.items()]
    for table, column in candidates:
        if column and column in model.tables[table].partitions:
            try:
                values = wb.snapshot.meta(table).values.get(column)
            except (WorkbenchError, AttributeError):
                values = None
            if values:
                return sorted({str(v) for v in values})
    # prefer a dimension table over the fact table
    table, column = sorted(candidates, key=lambda tc: tc[0] == model.fact)[0]
    if not column:
        return []
    query = exp.select(exp.column(column).as_("v")).distinct().from_(table).limit(MAX_VALUES + 1)
    df = wb.sql(query.sql(dialect="duckdb")).df
    return sorted({str(v) for v in df["v"].dropna() if str(v).strip()})
