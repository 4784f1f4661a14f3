"""The catalog's tables, as SQLAlchemy Core metadata shared by SQLite and PostgreSQL.

Core (not the ORM) because every access is a small insert/select and the same statements must
run on both backends. ``SCHEMA_VERSION`` is written into ``catalog_meta`` so a later release
can tell which layout a database has; migrations themselves are out of scope for now.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    event,
)
from sqlalchemy.engine import Connection

#: bumped whenever a table or column changes; stored in ``catalog_meta``
SCHEMA_VERSION = 1

metadata = MetaData()

catalog_meta = Table(
    "catalog_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

tables = Table(
    "catalog_tables",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("origin_url", Text, nullable=False),
    Column("format", String(32), nullable=False, default="delta"),
    Column("registered", Boolean, nullable=False, default=False),  # False = built-in
    Column("kind", String(16), nullable=False, default="base"),  # base | rollup
    Column("description", Text),
    Column("partition_columns", JSON, nullable=False, default=list),
    Column("delta_version", BigInteger),
    Column("rows", BigInteger),
    Column("bytes", BigInteger),
    Column("files", Integer),
    Column("synced_at", DateTime(timezone=True)),
)

columns = Table(
    "catalog_columns",
    metadata,
    Column("table_name", String(255), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("type", String(128), nullable=False),
    Column("description", Text),
)

partition_stats = Table(
    "catalog_partition_stats",
    metadata,
    Column("table_name", String(255), primary_key=True),
    # canonical JSON of the partition values, e.g. {"month": 1, "region": "North", "year": 2023}
    Column("partition_key", String(512), primary_key=True),
    Column("partition_values", JSON, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("files", Integer, nullable=False),
    # {column: [min, max]} for numeric and date columns (dates as ISO strings)
    Column("min_max", JSON, nullable=False),
)

versions = Table(
    "catalog_versions",
    metadata,
    Column("table_name", String(255), primary_key=True),
    Column("version", BigInteger, primary_key=True),
    Column("committed_at", DateTime(timezone=True)),
    Column("operation", String(64)),
    Column("parameters", JSON),
)

rollups = Table(
    "catalog_rollups",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("base_table", String(255), nullable=False),
    Column("definition", JSON, nullable=False),
    Column("built_from_version", BigInteger),
    Column("built_at", DateTime(timezone=True)),
)

query_log = Table(
    "query_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", DateTime(timezone=True), nullable=False, index=True),
    Column("user", String(255), nullable=False, index=True),
    Column("question", Text),
    Column("sql", Text),
    Column("normalized_sql", Text),
    Column("route", String(64)),
    Column("engine", String(64)),
    Column("files_scanned", Integer),
    Column("bytes_scanned", BigInteger),
    Column("rows", BigInteger),
    Column("latency_ms", Float),
    Column("cache_hit", Boolean, nullable=False, default=False),
    Column("cost_usd", Float),
    Column("error", Text),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", DateTime(timezone=True), nullable=False, index=True),
    Column("user", String(255), nullable=False, index=True),
    Column("question", Text),
    Column("sql", Text),
    Column("route", String(64)),
    Column("rows", BigInteger),
    Column("policy", Text),
    Column("outcome", String(64), nullable=False),
    Column("detail", Text),
)


# API bearer tokens (workbench.auth.tokens): only a SHA-256 of the secret is kept
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(32), primary_key=True),  # public part of the token, shown by `token list`
    Column("user", String(255), nullable=False, index=True),
    Column("secret_sha256", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    Column("last_used_at", DateTime(timezone=True)),
    Column("note", Text),
)


# --- append-only audit log, enforced by the database as well as by the API --------------
_PG_AUDIT_FUNCTION = """
CREATE OR REPLACE FUNCTION workbench_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END
$$ LANGUAGE plpgsql
"""
_PG_AUDIT_TRIGGERS = (
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION workbench_audit_append_only()",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION workbench_audit_append_only()",
)
_SQLITE_AUDIT_TRIGGERS = (
    "CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
)


@event.listens_for(audit_log, "after_create")
def _audit_append_only(target: Table, connection: Connection, **_: object) -> None:
    """Install the triggers in the same transaction that creates the table."""
    name = connection.dialect.name
    if name == "postgresql":
        connection.exec_driver_sql(_PG_AUDIT_FUNCTION)
        for ddl in _PG_AUDIT_TRIGGERS:
            connection.exec_driver_sql(ddl)
    elif name == "sqlite":
        for ddl in _SQLITE_AUDIT_TRIGGERS:
            connection.exec_driver_sql(ddl)
