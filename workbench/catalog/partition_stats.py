"""Per-partition statistics taken from the Delta log's add actions, never from the data.

``DeltaTable.get_add_actions(flatten=True)`` lists every live file with its partition values,
record count, size and per-column min/max. Summing those per partition costs one read of the
log, whatever the table size, which is what lets the router estimate a scan in microseconds.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from workbench.catalog.records import PartitionStat
from workbench.lake.delta import add_actions, arrow_schema

if TYPE_CHECKING:
    from deltalake import DeltaTable


def partition_key(values: dict[str, Any]) -> str:
    """Canonical text of a partition's values (sorted keys, JSON) used as its primary key."""
    return json.dumps({k: _jsonable(v) for k, v in values.items()}, sort_keys=True, default=str)


def _jsonable(value: Any) -> Any:
    """A value the catalog's JSON columns can store and give back unchanged.

    Dates become ISO text. A DECIMAL becomes a JSON number when one holds it exactly (an int, or
    a float whose shortest repr reads back as the same decimal), so range pruning still compares
    numbers; otherwise its exact text, which :func:`aggregate` never uses as a bound.
    """
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        if not value.is_finite():
            return str(value)
        if value == value.to_integral_value():
            return int(value)
        as_float = float(value)
        return as_float if Decimal(repr(as_float)) == value else str(value)
    return value


def _is_stat_type(t: pa.DataType) -> bool:
    """Numeric and date/time columns get min/max; strings would bloat the catalog."""
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_temporal(t) or pa.types.is_decimal(t)


def partition_stats(dt_table: DeltaTable) -> list[PartitionStat]:
    """One :class:`PartitionStat` per partition of the table's current version."""
    actions = add_actions(dt_table)
    part_cols = list(dt_table.metadata().partition_columns)
    schema = arrow_schema(dt_table)
    stat_cols = [f.name for f in schema if f.name not in part_cols and _is_stat_type(f.type)]
    return aggregate(actions.to_pylist(), part_cols, stat_cols)


def aggregate(rows: Iterable[dict[str, Any]], part_cols: list[str], stat_cols: list[str]) -> list[PartitionStat]:
    """Sum add actions per partition; a min/max is kept only when every file has it."""
    groups: dict[str, PartitionStat] = {}
    unknown: dict[str, set[str]] = {}
    for row in rows:
        values = {c: row.get(f"partition.{c}") for c in part_cols}
        key = partition_key(values)
        stat = groups.get(key)
        if stat is None:
            stat = groups[key] = PartitionStat(
                values={c: _jsonable(v) for c, v in values.items()}, rows=0, bytes=0, files=0
            )
            unknown[key] = set()
        stat.rows += int(row.get("num_records") or 0)
        stat.bytes += int(row.get("size_bytes") or 0)
        stat.files += 1
        for col in stat_cols:
            lo, hi = row.get(f"min.{col}"), row.get(f"max.{col}")
            if lo is None or hi is None or col in unknown[key]:
                unknown[key].add(col)
                stat.min_max.pop(col, None)
                continue
            lo, hi = _jsonable(lo), _jsonable(hi)
            if isinstance(row.get(f"min.{col}"), Decimal) and not all(isinstance(b, (int, float)) for b in (lo, hi)):
                unknown[key].add(col)  # a decimal no JSON number holds: no bound rather than a text one
                stat.min_max.pop(col, None)
                continue
            cur = stat.min_max.get(col)
            stat.min_max[col] = [lo, hi] if cur is None else [min(cur[0], lo), max(cur[1], hi)]
    return [groups[k] for k in sorted(groups)]
