"""Partition pruning over stored statistics: which partitions a Delta-style filter keeps.

Filters are ``(column, op, value)`` tuples as deltalake takes them (op in =, !=, in, not in,
<, <=, >, >=). A filter on a partition column is decided by the partition's value; a filter on
another column prunes a partition only when its stored min/max proves no row can match. Anything
the statistics cannot decide keeps the partition, so an estimate is never too small.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from workbench.catalog.records import PartitionStat, ScanEstimate
from workbench.errors import DataError
from workbench.lake.partition_values import coerce_like

#: a Delta partition filter: (column, op, value)
Filter = tuple[str, str, Any]

OPS = ("=", "!=", "in", "not in", "<", "<=", ">", ">=")


def _compare(op: str, left: Any, right: Any) -> bool:
    right = coerce_like(right, left)
    try:
        if op == "=":
            return bool(left == right)
        if op == "!=":
            return bool(left != right)
        if op == "<":
            return bool(left < right)
        if op == "<=":
            return bool(left <= right)
        if op == ">":
            return bool(left > right)
        if op == ">=":
            return bool(left >= right)
    except TypeError:
        return True  # incomparable types: cannot prune
    raise DataError(f"unsupported filter operator {op!r}", f"use one of {', '.join(OPS)}")


def _partition_value_matches(value: Any, op: str, target: Any) -> bool:
    if op == "in":
        return any(_compare("=", value, t) for t in _as_list(target))
    if op == "not in":
        return not any(_compare("=", value, t) for t in _as_list(target))
    return _compare(op, value, target)


def _range_may_match(lo: Any, hi: Any, op: str, target: Any) -> bool:
    """Whether some value in [lo, hi] can satisfy ``op target`` (True when unsure)."""
    if op == "=":
        return _compare("<=", lo, target) and _compare(">=", hi, target)
    if op == "in":
        return any(_range_may_match(lo, hi, "=", t) for t in _as_list(target))
    if op in ("<", "<="):
        return _compare(op, lo, target)
    if op in (">", ">="):
        return _compare(op, hi, target)
    return True  # != and not in rarely prune a range


def _as_list(target: Any) -> list[Any]:
    if isinstance(target, (list, tuple, set, frozenset)):
        return list(target)
    raise DataError(
        f"filter value {target!r} must be a list for 'in' / 'not in'", "pass e.g. ('region', 'in', ['North'])"
    )


def keeps(stat: PartitionStat, filters: Sequence[Filter]) -> bool:
    """Whether a partition may hold rows matching every filter (conjunction)."""
    for flt in filters:
        if len(flt) != 3:
            raise DataError(f"malformed partition filter {flt!r}", "use (column, op, value) tuples")
        col, op, target = flt
        op = op.lower().strip()
        if op not in OPS:
            raise DataError(f"unsupported filter operator {op!r}", f"use one of {', '.join(OPS)}")
        if col in stat.values:
            if not _partition_value_matches(stat.values[col], op, target):
                return False
        elif col in stat.min_max:
            lo, hi = stat.min_max[col]
            if not _range_may_match(lo, hi, op, target):
                return False
    return True


def estimate(stats: Sequence[PartitionStat], filters: Sequence[Filter] | None) -> ScanEstimate:
    """Sum files, bytes and rows of the partitions the filters keep."""
    kept = [s for s in stats if keeps(s, filters or ())]
    return ScanEstimate(
        files=sum(s.files for s in kept),
        bytes=sum(s.bytes for s in kept),
        rows=sum(s.rows for s in kept),
        partitions=len(kept),
    )
