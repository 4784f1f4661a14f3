""" "The catalog database briefly unavailable" must not fail a query: log rows are spooled.

Uses the real PostgreSQL server: it is stopped mid-test and started again on the same port.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.fixtures.postgres import PostgresServer
from workbench.catalog import Catalog, QueryLogEntry
from workbench.errors import ServiceUnavailable

pytestmark = pytest.mark.postgres


def test_log_writes_survive_a_database_outage(
    postgres_server: PostgresServer, postgres_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    catalog = Catalog(postgres_url, spool_dir=tmp_path)
    assert catalog.log_query(QueryLogEntry(user="ana", sql="select 1", rows=1)) is True

    postgres_server.stop()
    try:
        with caplog.at_level(logging.WARNING):
            assert catalog.log_query(QueryLogEntry(user="ana", sql="select 2", rows=1)) is False
            catalog.audit("ana", "ok", sql="select 2", rows=1)  # does not raise either
            assert catalog.log_query(QueryLogEntry(user="bo", sql="select 3", error="boom")) is False
        assert len(catalog.spool) == 3
        assert any("spooled" in r.message for r in caplog.records)
        with pytest.raises(ServiceUnavailable) as err:  # reads do report the outage
            catalog.tables()
        assert "PostgreSQL" in err.value.hint
    finally:
        postgres_server.start()

    assert catalog.log_query(QueryLogEntry(user="cy", sql="select 4")) is True  # flushes the spool first
    assert len(catalog.spool) == 0
    assert [e.sql for e in catalog.query_log()] == ["select 4", "select 3", "select 2", "select 1"]
    assert [e.sql for e in catalog.audit_entries()] == ["select 2"]
    catalog.close()


def test_spool_is_replayed_by_the_next_process(postgres_url: str, tmp_path: Path) -> None:
    """Rows spooled by one process are written by the next one that reaches the database."""
    earlier = Catalog(postgres_url, spool_dir=tmp_path, connect=False)
    earlier.spool.add("query_log", {"user": "ana", "sql": "select 9", "ts": "2024-01-01T00:00:00+00:00"})
    later = Catalog(postgres_url, spool_dir=tmp_path)
    assert len(later.spool) == 1
    assert [e.sql for e in later.query_log()] == ["select 9"]  # reads flush the spool first
    assert len(later.spool) == 0
    earlier.close()
    later.close()


def test_unreachable_catalog_never_fails_a_log_write(tmp_path: Path) -> None:
    catalog = Catalog("postgresql+psycopg://nobody@127.0.0.1:1/none", spool_dir=tmp_path, connect=False)
    assert catalog.log_query(QueryLogEntry(user="ana", sql="select 1")) is False
    catalog.audit("ana", "ok", sql="select 1")
    assert len(catalog.spool) == 2
    assert catalog.flush_spool() == 0
    assert len(catalog.spool) == 2
