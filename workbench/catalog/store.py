"""The catalog: metadata of every lake table, partition statistics, versions, query log, audit.

One SQLAlchemy engine over SQLite (the embedded default, a file in the workbench home) or
PostgreSQL (``postgresql+psycopg://``, for a shared deployment). The schema is created on open,
under a lock so several processes may open a fresh database at once. Log writes never fail a
query: when the database is unreachable the rows go to a local :class:`Spool` and are replayed on
the next successful write.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine
from sqlglot.errors import SqlglotError

from workbench.catalog import schema as S
from workbench.catalog.descriptions import BUILT_IN_TABLES, COLUMN_DESCRIPTIONS, TABLE_DESCRIPTIONS
from workbench.catalog.estimate import Filter, estimate
from workbench.catalog.partition_stats import partition_key, partition_stats
from workbench.catalog.records import (
    AuditEntry,
    ColumnInfo,
    PartitionStat,
    QueryLogEntry,
    RollupInfo,
    ScanEstimate,
    TableInfo,
    utcnow,
)
from workbench.catalog.spool import Spool
from workbench.config import Settings, get_settings
from workbench.errors import ConfigError, ServiceUnavailable, WorkbenchError, unknown_name

if TYPE_CHECKING:
    from workbench.lake.storage import Lake

log = logging.getLogger(__name__)

#: history entries recorded on the first sync of a table with a long history
MAX_HISTORY = 100
_PG_SCHEMA_LOCK = 0x57424354  # "WBCT": serialises create_all across processes


def _engine_for(url: str) -> Engine:
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    try:
        parsed = sa.engine.make_url(url)
    except sa_exc.ArgumentError as e:
        raise ConfigError(f"invalid catalog URL {url!r}", "use sqlite:///path or postgresql+psycopg://...") from e
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            try:
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise ServiceUnavailable(
                    f"cannot create the catalog database {parsed.database}: {e}",
                    "check that the workbench home is writable (WORKBENCH_HOME) or set WORKBENCH_CATALOG_URL",
                ) from e
        engine = sa.create_engine(parsed, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    if parsed.get_backend_name() == "postgresql":
        return sa.create_engine(parsed, pool_pre_ping=True, connect_args={"connect_timeout": 5})
    raise ConfigError(f"unsupported catalog database {parsed.get_backend_name()!r}", "use SQLite or PostgreSQL")


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _store_ts(value: dt.datetime) -> dt.datetime:
    """UTC, so SQLite (which drops the zone) and PostgreSQL compare ``since`` the same way."""
    return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)


class Catalog:
    """Metadata store of the workbench. Build one with :func:`open_catalog`."""

    def __init__(self, url: str, spool_dir: Path | None = None, connect: bool = True) -> None:
        self.url = url
        self.engine = _engine_for(url)
        self.backend = self.engine.dialect.name
        spool_name = f"catalog-spool-{hashlib.sha1(url.encode()).hexdigest()[:12]}.jsonl"
        self.spool = Spool(spool_dir / spool_name if spool_dir is not None else None)
        self._ready = False
        self._stats_memo: dict[str, tuple[int | None, list[PartitionStat]]] = {}
        if connect:
            self.ensure_schema()

    def __repr__(self) -> str:
        return f"Catalog({self.engine.url.render_as_string(hide_password=True)!r})"

    def close(self) -> None:
        self.engine.dispose()

    # --- connection and schema ---------------------------------------------------------
    def _unavailable(self, e: Exception) -> ServiceUnavailable:
        where = self.engine.url.render_as_string(hide_password=True)
        hint = (
            "check that PostgreSQL is running and WORKBENCH_CATALOG_URL is right"
            if self.backend == "postgresql"
            else "check that the workbench home is writable (WORKBENCH_HOME) or set WORKBENCH_CATALOG_URL"
        )
        return ServiceUnavailable(f"catalog database {where} unavailable: {e.__class__.__name__}: {e}", hint)

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        """A transaction; connection-level failures become ServiceUnavailable."""
        if not self._ready:
            self.ensure_schema()
        try:
            with self.engine.begin() as conn:
                yield conn
        except (sa_exc.OperationalError, sa_exc.InterfaceError) as e:
            raise self._unavailable(e) from e
        except sa_exc.DBAPIError as e:
            if e.connection_invalidated:
                raise self._unavailable(e) from e
            raise

    def ensure_schema(self) -> None:
        """Create missing tables and record the schema version (idempotent, process-safe)."""
        for attempt in range(5):
            try:
                with self.engine.begin() as conn:
                    if self.backend == "postgresql":
                        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_SCHEMA_LOCK})
                    S.metadata.create_all(conn)
                    self._check_version(conn)
                self._ready = True
                return
            except (sa_exc.IntegrityError, sa_exc.ProgrammingError) as e:
                # another process created the same table between our check and CREATE
                if attempt == 4:
                    raise self._unavailable(e) from e
                time.sleep(0.05 * (attempt + 1))
            except sa_exc.OperationalError as e:
                if "already exists" in str(e) and attempt < 4:
                    time.sleep(0.05 * (attempt + 1))
                    continue
                raise self._unavailable(e) from e
            except sa_exc.DBAPIError as e:
                raise self._unavailable(e) from e

    def _check_version(self, conn: Connection) -> None:
        row = conn.execute(sa.select(S.catalog_meta.c.value).where(S.catalog_meta.c.key == "schema_version")).first()
        if row is None:
            _upsert(
                conn, S.catalog_meta, {"key": "schema_version", "value": str(S.SCHEMA_VERSION)}, ["key"], update=False
            )
        elif int(row[0]) > S.SCHEMA_VERSION:
            raise ConfigError(
                f"catalog schema version {row[0]} is newer than this workbench ({S.SCHEMA_VERSION})",
                "upgrade the workbench, or point WORKBENCH_CATALOG_URL at another database",
            )

    def schema_version(self) -> int:
        with self._tx() as conn:
            value = conn.execute(
                sa.select(S.catalog_meta.c.value).where(S.catalog_meta.c.key == "schema_version")
            ).scalar_one()
        return int(value)

    # --- tables ------------------------------------------------------------------------
    def sync_table(
        self,
        lake: Lake,
        name: str,
        *,
        origin_url: str | None = None,
        registered: bool | None = None,
        kind: str | None = None,
        description: str | None = None,
        column_descriptions: dict[str, str] | None = None,
        force: bool = False,
    ) -> TableInfo:
        """Record a lake table's schema, partition stats and versions (cheap when unchanged).

        Called after every ingest and rollup build. When the stored Delta version equals the
        table's current version nothing but that comparison runs (the log is not re-read).
        """
        dt_table = lake.table(name)
        version = int(dt_table.version())
        with self._tx() as conn:
            stored = conn.execute(sa.select(S.tables.c.delta_version).where(S.tables.c.name == name)).first()
        if stored is not None and stored[0] == version and not force and column_descriptions is None:
            return self.table(name)

        stats = partition_stats(dt_table)
        base = name.split("/", 1)[-1]
        descs = {**COLUMN_DESCRIPTIONS.get(base, {}), **(column_descriptions or {})}
        kind = kind or ("rollup" if name.startswith("rollups/") else "base")
        is_registered = registered if registered is not None else (kind == "base" and name not in BUILT_IN_TABLES)
        previous = stored[0] if stored is not None and stored[0] is not None else -1
        history = dt_table.history(limit=max(1, min(MAX_HISTORY, version - previous)))
        table_row = {
            "name": name,
            "origin_url": origin_url or lake.table_uri(name),
            "format": "delta",
            "registered": is_registered,
            "kind": kind,
            "description": description or TABLE_DESCRIPTIONS.get(name),
            "partition_columns": list(dt_table.metadata().partition_columns),
            "delta_version": version,
            "rows": sum(s.rows for s in stats),
            "bytes": sum(s.bytes for s in stats),
            "files": sum(s.files for s in stats),
            "synced_at": utcnow(),
        }
        if stored is not None and origin_url is None:
            table_row.pop("origin_url")  # keep a registered table's origin
        if stored is not None and description is None:
            table_row.pop("description")
        with self._tx() as conn:
            if self.backend == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:n))"), {"n": f"wb-sync:{name}"})
            if stored is None:
                table_row.setdefault("origin_url", lake.table_uri(name))
                _upsert(conn, S.tables, table_row, ["name"])
            else:
                conn.execute(S.tables.update().where(S.tables.c.name == name).values(**table_row))
            _write_columns(conn, name, dt_table.schema().to_pyarrow(), descs)
            _write_partition_stats(conn, name, stats)
            _write_versions(conn, name, history)
        return self.table(name)

    def table(self, name: str) -> TableInfo:
        """A table with its columns; unknown names get "did you mean ...?"."""
        with self._tx() as conn:
            row = conn.execute(sa.select(S.tables).where(S.tables.c.name == name)).mappings().first()
            if row is None:
                names = conn.execute(sa.select(S.tables.c.name)).scalars().all()
                raise unknown_name("table", name, names)
            cols = (
                conn.execute(sa.select(S.columns).where(S.columns.c.table_name == name).order_by(S.columns.c.position))
                .mappings()
                .all()
            )
        return _table_info(row, [ColumnInfo(c["name"], c["type"], c["description"]) for c in cols])

    def tables(self, kind: str | None = None) -> list[TableInfo]:
        """Every table the catalog knows (without columns; call :meth:`table` for those)."""
        stmt = sa.select(S.tables).order_by(S.tables.c.name)
        if kind:
            stmt = stmt.where(S.tables.c.kind == kind)
        with self._tx() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [_table_info(r, []) for r in rows]

    def partitions(self, name: str) -> list[PartitionStat]:
        with self._tx() as conn:
            rows = (
                conn.execute(
                    sa.select(S.partition_stats)
                    .where(S.partition_stats.c.table_name == name)
                    .order_by(S.partition_stats.c.partition_key)
                )
                .mappings()
                .all()
            )
        if not rows:
            self.table(name)  # raises NotFoundError for unknown names
        return [
            PartitionStat(dict(r["partition_values"]), r["rows"], r["bytes"], r["files"], dict(r["min_max"]))
            for r in rows
        ]

    def versions(self, name: str) -> list[dict[str, Any]]:
        """Recorded Delta commits of a table, newest first."""
        with self._tx() as conn:
            rows = (
                conn.execute(
                    sa.select(S.versions).where(S.versions.c.table_name == name).order_by(S.versions.c.version.desc())
                )
                .mappings()
                .all()
            )
        return [{**dict(r), "committed_at": _utc(r["committed_at"])} for r in rows]

    def table_versions(self, names: Sequence[str]) -> dict[str, int]:
        """Latest synced Delta version per table (what a result-cache key needs)."""
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(S.tables.c.name, S.tables.c.delta_version).where(S.tables.c.name.in_(list(names)))
            ).all()
        return {n: int(v) for n, v in rows if v is not None}

    def estimate_scan(self, table: str, partition_filters: Sequence[Filter] | None = None) -> ScanEstimate:
        """Files, bytes and rows a scan with these Delta-style filters would read (from stats).

        The router asks this for every query, so the partition list is memoised per synced
        Delta version: a repeat costs one primary-key lookup instead of reloading the stats.
        """
        with self._tx() as conn:
            version = conn.execute(sa.select(S.tables.c.delta_version).where(S.tables.c.name == table)).first()
        memo = self._stats_memo.get(table)
        if version is not None and memo is not None and memo[0] == version[0]:
            return estimate(memo[1], partition_filters)
        stats = self.partitions(table)
        if version is not None:
            self._stats_memo[table] = (version[0], stats)
        return estimate(stats, partition_filters)

    # --- rollups -----------------------------------------------------------------------
    def record_rollup(
        self,
        name: str,
        base_table: str,
        definition: dict[str, Any],
        built_from_version: int | None,
        built_at: dt.datetime | None = None,
    ) -> RollupInfo:
        """Store a rollup's definition and freshness (the base version it was built from)."""
        info = RollupInfo(name, base_table, definition, built_from_version, _store_ts(built_at or utcnow()))
        with self._tx() as conn:
            _upsert(conn, S.rollups, info.to_dict(), ["name"])
        return info

    def rollup(self, name: str) -> RollupInfo:
        with self._tx() as conn:
            row = conn.execute(sa.select(S.rollups).where(S.rollups.c.name == name)).mappings().first()
            if row is None:
                raise unknown_name("rollup", name, conn.execute(sa.select(S.rollups.c.name)).scalars().all())
        return _rollup_info(row)

    def rollups(self) -> list[RollupInfo]:
        with self._tx() as conn:
            rows = conn.execute(sa.select(S.rollups).order_by(S.rollups.c.name)).mappings().all()
        return [_rollup_info(r) for r in rows]

    # --- query log and audit (writes never raise) --------------------------------------
    def log_query(self, entry: QueryLogEntry) -> bool:
        """Append to the query log; returns False (and spools the row) when the DB is down."""
        return self.record([entry], [])

    def audit(
        self,
        user: str,
        outcome: str,
        *,
        question: str | None = None,
        sql: str | None = None,
        route: str | None = None,
        rows: int | None = None,
        policy: str | None = None,
        detail: str | None = None,
    ) -> AuditEntry:
        """Append one audit row. There is deliberately no update or delete API.

        Like the query log, a row that cannot be written now is spooled locally and written on
        the next success, so an outage delays audit rows but does not lose them.
        """
        entry = AuditEntry(
            user=user, outcome=outcome, question=question, sql=sql, route=route, rows=rows, policy=policy, detail=detail
        )
        self.record([], [entry])
        return entry

    def record(self, entries: list[QueryLogEntry], audits: list[AuditEntry]) -> bool:
        """Append query-log and audit rows in one transaction (the router's background writer).

        One commit for a batch instead of two per query keeps the writer thread short, so it
        competes less with the next query for the interpreter; rows are spooled on failure
        exactly as :meth:`log_query` and :meth:`audit` do.
        """
        rows: list[tuple[str, dict[str, Any]]] = []
        for entry in entries:
            if entry.normalized_sql is None and entry.sql:
                entry.normalized_sql = normalise_or_none(entry.sql)
            rows.append(("query_log", _row(entry.to_dict(), S.query_log)))
        rows += [("audit_log", _row(a.to_dict(), S.audit_log)) for a in audits]
        return self._write_rows(rows)

    def _write_rows(self, rows: list[tuple[str, dict[str, Any]]]) -> bool:
        pending = self.spool.take()
        try:
            with self._tx() as conn:
                for k, r in pending:
                    conn.execute(_LOG_TABLES[k].insert(), [_row(r, _LOG_TABLES[k])])
                for kind in ("query_log", "audit_log"):
                    batch = [r for k, r in rows if k == kind]
                    if batch:
                        conn.execute(_LOG_TABLES[kind].insert(), batch)
            if pending:
                log.warning("catalog back: wrote %d spooled log rows", len(pending))
            return True
        except Exception as e:  # never fail the query for its log row
            for k, r in [*pending, *rows]:
                self.spool.add(k, r)
            msg = e.message if isinstance(e, WorkbenchError) else f"{e.__class__.__name__}: {e}"
            log.warning("catalog unavailable, %d log rows spooled (%d waiting): %s", len(rows), len(self.spool), msg)
            return False

    def flush_spool(self) -> int:
        """Write spooled log rows now; returns how many were written (0 when the DB is down)."""
        pending = self.spool.take()
        if not pending:
            return 0
        try:
            with self._tx() as conn:
                for k, r in pending:
                    conn.execute(_LOG_TABLES[k].insert(), [_row(r, _LOG_TABLES[k])])
            return len(pending)
        except Exception as e:
            for k, r in pending:
                self.spool.add(k, r)
            log.warning("catalog still unavailable (%s); %d log rows stay spooled", e.__class__.__name__, len(pending))
            return 0

    def query_log(
        self, user: str | None = None, since: dt.datetime | None = None, limit: int = 50
    ) -> list[QueryLogEntry]:
        """Most recent query-log rows first."""
        self.flush_spool()
        rows = self._select_log(S.query_log, user, since, limit)
        return [QueryLogEntry(**{**r, "ts": _utc(r["ts"])}) for r in rows]

    def audit_entries(
        self, user: str | None = None, since: dt.datetime | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """Most recent audit rows first, optionally for one user and since a time."""
        self.flush_spool()
        rows = self._select_log(S.audit_log, user, since, limit)
        return [AuditEntry(**{**r, "ts": _utc(r["ts"])}) for r in rows]

    def _select_log(
        self, table: sa.Table, user: str | None, since: dt.datetime | None, limit: int
    ) -> list[dict[str, Any]]:
        stmt = sa.select(table).order_by(table.c.ts.desc(), table.c.id.desc()).limit(max(0, int(limit)))
        if user is not None:
            stmt = stmt.where(table.c.user == user)
        if since is not None:
            stmt = stmt.where(table.c.ts >= _store_ts(since))
        with self._tx() as conn:
            return [dict(r) for r in conn.execute(stmt).mappings().all()]


_LOG_TABLES = {"query_log": S.query_log, "audit_log": S.audit_log}


def _write_columns(conn: Connection, name: str, arrow_schema: Any, descs: dict[str, str]) -> None:
    """Replace a table's column rows (names, positions, types, descriptions)."""
    conn.execute(S.columns.delete().where(S.columns.c.table_name == name))
    rows = [
        {"table_name": name, "name": f.name, "position": i, "type": str(f.type), "description": descs.get(f.name)}
        for i, f in enumerate(arrow_schema)
    ]
    conn.execute(S.columns.insert(), rows)


def _write_partition_stats(conn: Connection, name: str, stats: list[Any]) -> None:
    """Replace a table's partition statistics (what scan estimates read)."""
    conn.execute(S.partition_stats.delete().where(S.partition_stats.c.table_name == name))
    if not stats:
        return
    rows = [
        {
            "table_name": name,
            "partition_key": partition_key(s.values),
            "partition_values": s.values,
            "rows": s.rows,
            "bytes": s.bytes,
            "files": s.files,
            "min_max": s.min_max,
        }
        for s in stats
    ]
    conn.execute(S.partition_stats.insert(), rows)


def _write_versions(conn: Connection, name: str, history: list[dict[str, Any]]) -> None:
    """Add the Delta commits not recorded yet (versions are immutable: never updated)."""
    for h in history:
        ts = h.get("timestamp")
        row = {
            "table_name": name,
            "version": int(h["version"]),
            "committed_at": dt.datetime.fromtimestamp(ts / 1000, dt.UTC) if ts else None,
            "operation": h.get("operation"),
            "parameters": h.get("operationParameters"),
        }
        _upsert(conn, S.versions, row, ["table_name", "version"], update=False)


def _row(data: dict[str, Any], table: sa.Table) -> dict[str, Any]:
    row = {k: v for k, v in data.items() if k in table.c and k != "id"}
    if isinstance(row.get("ts"), str):
        row["ts"] = dt.datetime.fromisoformat(row["ts"])
    row["ts"] = _store_ts(row.get("ts") or utcnow())
    return row


def normalise_or_none(sql: str) -> str | None:
    try:
        from workbench.cache.normalise import normalise_sql

        return normalise_sql(sql)
    except (SqlglotError, WorkbenchError) as e:  # unparsable SQL is still logged, just not normalised
        log.debug("query log: SQL not normalised (%s)", e)
        return None


def _upsert(conn: Connection, table: sa.Table, row: dict[str, Any], keys: list[str], update: bool = True) -> None:
    """INSERT ... ON CONFLICT for both backends (safe against a concurrent writer)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt: Any = pg_insert(table).values(**row)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(table).values(**row)
    others = {k: stmt.excluded[k] for k in row if k not in keys}
    stmt = (
        stmt.on_conflict_do_update(index_elements=keys, set_=others)
        if update and others
        else stmt.on_conflict_do_nothing(index_elements=keys)
    )
    conn.execute(stmt)


def _table_info(row: Any, cols: list[ColumnInfo]) -> TableInfo:
    return TableInfo(
        name=row["name"],
        origin_url=row["origin_url"],
        format=row["format"],
        registered=bool(row["registered"]),
        kind=row["kind"],
        partition_columns=list(row["partition_columns"] or []),
        delta_version=row["delta_version"],
        rows=row["rows"],
        bytes=row["bytes"],
        files=row["files"],
        synced_at=_utc(row["synced_at"]),
        description=row["description"],
        columns=cols,
    )


def _rollup_info(row: Any) -> RollupInfo:
    return RollupInfo(
        name=row["name"],
        base_table=row["base_table"],
        definition=dict(row["definition"]),
        built_from_version=row["built_from_version"],
        built_at=_utc(row["built_at"]),
    )


def open_catalog(settings: Settings | None = None, *, connect: bool = True) -> Catalog:
    """The configured catalog (SQLite in the home by default, or WORKBENCH_CATALOG_URL).

    ``connect=False`` defers the first connection to the first use, so a process can start
    (and spool its log rows) while the catalog database is briefly down.
    """
    settings = settings or get_settings()
    return Catalog(settings.catalog_url_resolved, spool_dir=settings.home_path, connect=connect)
