"""Catalog: the metadata store (tables, schemas, partition stats, versions, rollups), query log, audit.

Typical wiring::

    catalog = open_catalog(settings)
    catalog.sync_table(lake, "sales")                 # after every ingest
    est = catalog.estimate_scan("sales", [("year", "=", 2024)])
    catalog.log_query(QueryLogEntry(user=..., sql=..., route="duckdb", rows=10, latency_ms=12.5))
    catalog.audit(user, "ok", sql=sql, rows=10, policy="analyst")
"""

from __future__ import annotations

from workbench.catalog.records import (
    AuditEntry,
    ColumnInfo,
    PartitionStat,
    QueryLogEntry,
    RollupInfo,
    ScanEstimate,
    TableInfo,
)
from workbench.catalog.store import Catalog, open_catalog

__all__ = [
    "AuditEntry",
    "Catalog",
    "ColumnInfo",
    "PartitionStat",
    "QueryLogEntry",
    "RollupInfo",
    "ScanEstimate",
    "TableInfo",
    "open_catalog",
]
