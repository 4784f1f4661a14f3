"""Personal data: tokens at rest, and the right to be forgotten down to the disk.

The ingest tokenises ``customer_name`` and ``email`` with a keyed hash
(``workbench.lake.clean.tokenise``, HMAC-SHA256 with ``settings.pii_key``), so raw personal
values never reach a Parquet file. :func:`forget` removes one customer everywhere the
workbench keeps derived copies, in an order that never leaves a half-forgotten state visible
as "done":

1. a Delta ``delete`` on every table (and rollup) that has ``customer_id``; the partitions
   that held the customer's sales are noted first;
2. rollups without ``customer_id`` are refreshed for those partitions (through
   ``workbench.sql.rollups`` when that module provides a refresh function);
3. result-cache entries of every touched table are invalidated, session memories and
   summaries that mention the customer are purged, and the summaries are rebuilt (their
   figures included the customer's sales);
4. ``vacuum`` with retention 0 so the rewritten files (which still held the rows) are
   physically deleted; time travel to older versions of those tables stops working,
   which is the point;
5. one audit row records the erasure, by a keyed token of the id (the log proves the request
   was honoured without keeping the identifier).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from workbench.errors import DataError, ServiceUnavailable, WorkbenchError
from workbench.lake.storage import Lake

if TYPE_CHECKING:
    from workbench.session import Workbench

log = logging.getLogger(__name__)

CUSTOMER_COLUMN = "customer_id"
_ID = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")


@dataclass
class ForgetReport:
    """What :func:`forget` did; ``to_dict()`` is the ``workbench forget --json`` shape."""

    customer_token: str
    deleted_rows: dict[str, int] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    partitions: list[dict[str, Any]] = field(default_factory=list)
    rollups_refreshed: list[str] = field(default_factory=list)
    rollups_stale: list[str] = field(default_factory=list)
    vacuumed_files: dict[str, int] = field(default_factory=dict)
    cache_entries_dropped: int = 0
    summaries_purged: int = 0
    summaries_rebuilt: bool = False
    sessions_purged: int = 0
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_text(self) -> str:
        total = sum(self.deleted_rows.values())
        lines = [f"forgot customer (token {self.customer_token[:16]}...): {total} rows deleted in {self.seconds:.1f} s"]
        for table, n in self.deleted_rows.items():
            lines.append(f"  {table:<40} {n:>8} rows  -> version {self.versions.get(table)}")
        lines.append(f"  files vacuumed: {sum(self.vacuumed_files.values())}")
        lines.append(f"  cache entries dropped: {self.cache_entries_dropped}")
        lines.append(f"  summaries purged: {self.summaries_purged}; rebuilt: {self.summaries_rebuilt}")
        lines.append(f"  session turns purged: {self.sessions_purged}")
        if self.rollups_refreshed:
            lines.append(f"  rollups refreshed: {', '.join(self.rollups_refreshed)}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def token(value: str, key: bytes) -> str:
    """The keyed hash the ingest stores for a personal value (same function, same key)."""
    from workbench.lake.clean import tokenise

    return str(tokenise(pa.array([value]), key)[0].as_py())


def _subject_token(customer_id: str, key: bytes) -> str:
    return hmac.new(key, f"forget:{customer_id}".encode(), hashlib.sha256).hexdigest()


def _check_id(customer_id: str) -> str:
    value = (customer_id or "").strip()
    if not _ID.match(value):
        raise DataError(
            f"invalid customer id {customer_id!r}",
            "pass the customer_id exactly as stored in the customers table (letters, digits, - _ . : @)",
        )
    return value


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def customer_tables(lake: Lake) -> tuple[list[str], list[str]]:
    """(tables with a customer_id column, rollup tables without one)."""
    with_id: list[str] = []
    without: list[str] = []
    for name in lake.tables() + lake.tables("rollups"):
        fields = {f.name for f in lake.table(name).schema().fields}
        if CUSTOMER_COLUMN in fields:
            with_id.append(name)
        elif name.startswith("rollups/"):
            without.append(name)
    return with_id, without


def _touched_partitions(lake: Lake, table: str, customer_id: str) -> list[dict[str, Any]]:
    import pyarrow.dataset as ds

    dt = lake.table(table)
    parts = list(dt.metadata().partition_columns)
    if not parts:
        return []
    data = dt.to_pyarrow_dataset().to_table(columns=parts, filter=ds.field(CUSTOMER_COLUMN) == customer_id)
    seen = {tuple(row[c] for c in parts) for row in data.to_pylist()}
    return [dict(zip(parts, p, strict=True)) for p in sorted(seen, key=str)]


def forget(
    customer_id: str,
    lake: Lake | str | None = None,
    *,
    user: str | None = None,
    rebuild_summaries: bool = True,
    wb: Workbench | None = None,
) -> ForgetReport:
    """Delete every row of ``customer_id`` from the lake and every derived copy; see the module doc."""
    start = time.perf_counter()
    lake = lake if isinstance(lake, Lake) else Lake(lake)
    settings = lake.settings
    customer_id = _check_id(customer_id)
    key = settings.pii_key_bytes()
    report = ForgetReport(customer_token=_subject_token(customer_id, key))
    who = user or settings.user

    with_id, rollups_without = customer_tables(lake)
    if not with_id:
        raise DataError(f"no table with a {CUSTOMER_COLUMN} column in {lake.url}", "check --lake; ingest data first")
    previous_sales_version: int | None = None
    if "sales" in with_id:
        report.partitions = _touched_partitions(lake, "sales", customer_id)
        previous_sales_version = lake.version("sales")

    # 1. logical delete, one Delta commit per table
    predicate = f"{CUSTOMER_COLUMN} = {_quoted(customer_id)}"
    for name in with_id:
        dt = lake.table(name)
        try:
            metrics = dt.delete(predicate, custom_metadata={"workbench.forget": report.customer_token})
        except Exception as e:
            raise ServiceUnavailable(
                f"deleting the customer's rows from {name!r} failed: {e}",
                "nothing further was changed; re-run `workbench forget` (it is idempotent)",
            ) from e
        report.deleted_rows[name] = int(metrics.get("num_deleted_rows", 0) or 0)
        report.versions[name] = int(lake.table(name).version())

    # 2. rollups without customer_id: recompute the touched partitions
    if rollups_without:
        _refresh_rollups(lake, rollups_without, report, previous_sales_version, wb)

    # 3. derived copies: cache, session memory, summaries
    touched = [*with_id, *rollups_without]
    report.sessions_purged = _purge_sessions(settings, _needles(customer_id, key))
    _purge_summaries(lake, customer_id, key, report, rebuild_summaries, wb)
    # last, so entries the summary rebuild just cached go too (every touched table's entries)
    report.cache_entries_dropped = _invalidate_cache(settings, touched, report)
    local = getattr(getattr(wb, "router", None), "local", None)
    if local is not None and hasattr(local, "clear"):
        local.clear()  # this session's in-process results (keys carry versions: unreachable anyway)

    # 4. physical delete: files the delete rewrote are still on disk until vacuumed
    for name in touched:
        report.vacuumed_files[name] = vacuum(lake, name)

    _sync_catalog(settings, lake, touched, report)
    report.seconds = round(time.perf_counter() - start, 3)

    # 5. audit
    _audit(settings, who, report)
    return report


def vacuum(lake: Lake, name: str) -> int:
    """Physically delete every file the current version no longer references; returns how many."""
    dt = lake.table(name)
    try:
        removed = dt.vacuum(retention_hours=0, dry_run=False, enforce_retention_duration=False)
    except Exception as e:
        raise ServiceUnavailable(
            f"vacuum of {name!r} failed: {e}", "the rows are already deleted logically; re-run `workbench forget`"
        ) from e
    return len(removed)


def _refresh_rollups(
    lake: Lake, names: list[str], report: ForgetReport, previous_sales_version: int | None, wb: Workbench | None
) -> None:
    """Recompute the months the customer's sales were in (exact: the rollup knows its base version)."""
    from workbench.sql import rollups as rollups_module

    months = sorted({(int(p["year"]), int(p["month"])) for p in report.partitions if "year" in p and "month" in p})
    if not months:
        report.notes.append("the customer had no sales rows: rollups unchanged")
        return
    client = wb.engines.dask_client if wb is not None else None
    builds = rollups_module.build(
        lake, lake.settings, months=months, previous_version=previous_sales_version, client=client
    )
    report.rollups_refreshed = [f"{b.name} ({b.mode}: {len(b.months)} months)" for b in builds]


def _invalidate_cache(settings: Any, tables: list[str], report: ForgetReport) -> int:
    from workbench.cache import open_cache

    cache = open_cache(settings)
    try:
        names = {*tables, *(t.split("/", 1)[-1] for t in tables)}
        return int(cache.invalidate_tables(sorted(names)))
    except WorkbenchError as e:
        report.notes.append(f"cache not invalidated: {e.message}")
        return 0
    finally:
        cache.close()


def _needles(customer_id: str, key: bytes) -> list[str]:
    return [customer_id.lower(), token(customer_id, key).lower()]


def _mentions(text: Any, needles: Iterable[str]) -> bool:
    blob = json.dumps(text, default=str).lower() if not isinstance(text, str) else text.lower()
    return any(n and n in blob for n in needles)


def _purge_sessions(settings: Any, needles: list[str]) -> int:
    """Drop conversation turns that mention the customer (questions are kept on disk)."""
    folder = settings.home_path / "sessions"
    purged = 0
    for path in sorted(folder.glob("*.json")) if folder.exists() else []:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        turns = data.get("turns", [])
        kept = [t for t in turns if not _mentions(t, needles)]
        if len(kept) != len(turns):
            purged += len(turns) - len(kept)
            data["turns"] = kept
            tmp = path.with_suffix(".forget.tmp")
            tmp.write_text(json.dumps(data))
            tmp.replace(path)
    return purged


def _purge_summaries(
    lake: Lake, customer_id: str, key: bytes, report: ForgetReport, rebuild: bool, wb: Workbench | None
) -> None:
    from workbench.assistant.retrieval.index import SummaryIndex

    if not SummaryIndex.exists(lake):
        return
    if rebuild:
        # figures in every summary included the customer's sales: regenerate them from the lake
        from workbench.assistant import build_summaries
        from workbench.session import Workbench

        session = wb if wb is not None else Workbench(lake, lake.settings)
        try:
            build_summaries(session)
            report.summaries_rebuilt = True
        finally:
            if session is not wb:
                session.close()
    index = SummaryIndex.load(lake)
    needles = _needles(customer_id, key)
    kept = [r for r in index.records if not _mentions(r, needles)]
    report.summaries_purged = len(index.records) - len(kept)
    if report.summaries_purged:
        SummaryIndex.build(lake, kept, index.embedder).save()


def _sync_catalog(settings: Any, lake: Lake, tables: list[str], report: ForgetReport) -> None:
    try:
        from workbench.catalog import open_catalog

        catalog = open_catalog(settings)
    except WorkbenchError as e:
        report.notes.append(f"catalog not updated: {e.message}")
        return
    try:
        for name in tables:
            catalog.sync_table(lake, name)
    except WorkbenchError as e:
        report.notes.append(f"catalog not updated: {e.message}")
    finally:
        catalog.close()


def _audit(settings: Any, user: str, report: ForgetReport) -> None:
    """One audit row; spooled by the catalog when its database is down."""
    from workbench.catalog import open_catalog

    detail = json.dumps(
        {
            "action": "forget",
            "customer_token": report.customer_token,
            "deleted_rows": report.deleted_rows,
            "vacuumed_files": sum(report.vacuumed_files.values()),
            "cache_entries_dropped": report.cache_entries_dropped,
            "summaries_purged": report.summaries_purged,
        }
    )
    try:
        catalog = open_catalog(settings, connect=False)
    except WorkbenchError as e:
        report.notes.append(f"audit row not written: {e.message}")
        return
    try:
        catalog.audit(
            user,
            "ok",
            question="forget customer",
            route="forget",
            rows=sum(report.deleted_rows.values()),
            detail=detail,
        )
    finally:
        catalog.close()


# --- checks (used by tests and `workbench forget --verify`) -----------------------------------


def parquet_files(lake: Lake, include_log: bool = True) -> list[str]:
    """Every Parquet file physically under the lake (not only the live ones), for scans."""
    fs = lake.fs
    root = lake.fs_path(lake.url)
    found = [p for p in fs.find(root) if p.endswith(".parquet")]
    if not include_log:
        found = [p for p in found if "/_delta_log/" not in p]
    return sorted(found)


def files_mentioning(lake: Lake, needles: Iterable[str], include_log: bool = True) -> list[str]:
    """Parquet files holding any of ``needles`` as a whole string value, read with pyarrow."""
    values = pa.array(sorted({str(n) for n in needles}), pa.string())
    hits = []
    for path in parquet_files(lake, include_log):
        with lake.fs.open(path, "rb") as f:
            table = pq.read_table(f)
        if _table_has(table, values):
            hits.append(path)
    return hits


def _table_has(table: pa.Table, values: pa.Array) -> bool:
    return any(_column_has(column, values) for column in table.columns)


def _column_has(column: pa.ChunkedArray, values: pa.Array) -> bool:
    typ = column.type
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return bool(pc.any(pc.is_in(column, value_set=values)).as_py() or False)
    if pa.types.is_dictionary(typ):
        return _column_has(column.cast(typ.value_type), values)
    if pa.types.is_struct(typ):
        flat = column.combine_chunks() if column.num_chunks else pa.array([], typ)
        return any(_column_has(pa.chunked_array([flat.field(i)]), values) for i in range(typ.num_fields))
    if pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_map(typ):
        return _column_has(pc.list_flatten(column), values) if not pa.types.is_map(typ) else False
    return False
