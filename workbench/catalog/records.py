"""Plain records the catalog takes and returns, so callers never touch SQLAlchemy rows."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class QueryLogEntry:
    """One executed (or failed) question/SQL; written by the router after every query."""

    user: str
    sql: str | None = None
    question: str | None = None
    normalized_sql: str | None = None  # filled from ``sql`` when omitted
    route: str | None = None  # e.g. cache | rollup | duckdb | dask
    engine: str | None = None
    files_scanned: int | None = None
    bytes_scanned: int | None = None
    rows: int | None = None
    latency_ms: float | None = None
    cache_hit: bool = False
    cost_usd: float | None = None
    error: str | None = None
    ts: dt.datetime = field(default_factory=utcnow)
    id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AuditEntry:
    """One row of the append-only audit log (who asked what, under which policy, outcome)."""

    user: str
    outcome: str  # ok | refused | denied | error ...
    question: str | None = None
    sql: str | None = None
    route: str | None = None
    rows: int | None = None
    policy: str | None = None
    detail: str | None = None
    ts: dt.datetime = field(default_factory=utcnow)
    id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ScanEstimate:
    """What a scan would read, from stored partition statistics (no data is touched)."""

    files: int
    bytes: int
    rows: int
    partitions: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ColumnInfo:
    name: str
    type: str
    description: str | None = None


@dataclass
class TableInfo:
    """A table as the catalog knows it (latest synced version)."""

    name: str
    origin_url: str
    format: str
    registered: bool
    kind: str
    partition_columns: list[str]
    delta_version: int | None
    rows: int | None
    bytes: int | None
    files: int | None
    synced_at: dt.datetime | None
    description: str | None = None
    columns: list[ColumnInfo] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PartitionStat:
    """Rows, bytes, files and per-column min/max of one partition, from the Delta log."""

    values: dict[str, Any]
    rows: int
    bytes: int
    files: int
    min_max: dict[str, list[Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RollupInfo:
    name: str
    base_table: str
    definition: dict[str, Any]
    built_from_version: int | None
    built_at: dt.datetime | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
