"""Catalog tests, one suite over SQLite and a real PostgreSQL server.

Expected numbers are computed independently: file counts and sizes from the Delta log's file
list and the filesystem, row counts and min/max by DuckDB over the same Parquet files.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from deltalake import write_deltalake

from workbench.catalog import AuditEntry, Catalog, QueryLogEntry, ScanEstimate
from workbench.errors import NotFoundError, ServiceUnavailable
from workbench.lake.storage import Lake

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _sales(n: int = 20_000, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.to_datetime("2022-01-01") + pd.to_timedelta(rng.integers(0, 3 * 365, n), unit="D")
    df = pd.DataFrame(
        {
            "transaction_id": [f"t{i}" for i in range(n)],
            "date": dates.date,
            "region": rng.choice(["North", "South", "East", "West", "Central"], n),
            "quantity": rng.integers(1, 10, n),
            "revenue": rng.gamma(2.0, 50.0, n).round(2),
        }
    )
    df["year"] = dates.year.astype("int64")
    df["month"] = dates.month.astype("int64")
    return df


@pytest.fixture(scope="module")
def tiny_lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """sales (year/month/region partitions) and an unpartitioned products table."""
    root = tmp_path_factory.mktemp("lake")
    write_deltalake(str(root / "sales"), _sales(), partition_by=["year", "month", "region"])
    products = pd.DataFrame({"product_id": ["p1", "p2"], "category": ["Books", "Toys"], "unit_cost": [1.5, 2.0]})
    write_deltalake(str(root / "products"), products)
    return Lake(str(root))


@pytest.fixture(params=BACKENDS)
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path / 'catalog.db'}"


@pytest.fixture
def catalog(catalog_url: str, tmp_path: Path) -> Iterator[Catalog]:
    cat = Catalog(catalog_url, spool_dir=tmp_path / "spool")
    yield cat
    cat.close()


def _duck(lake: Lake, name: str, sql: str, filters: Any = None) -> Any:
    files = lake.files(name, filters)
    if not files:
        return 0
    con = duckdb.connect()
    con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet({files!r}, hive_partitioning=true)")
    return con.execute(sql).fetchone()


# --- schema -------------------------------------------------------------------------------
def test_schema_is_created_versioned_and_reopenable(catalog_url: str, tmp_path: Path) -> None:
    first = Catalog(catalog_url)
    assert first.schema_version() == 1
    first.close()
    again = Catalog(catalog_url)  # create_all on an existing schema is a no-op
    assert again.schema_version() == 1
    names = set(sa.inspect(again.engine).get_table_names())
    assert {"catalog_tables", "catalog_partition_stats", "query_log", "audit_log", "catalog_meta"} <= names
    again.close()


def test_concurrent_processes_open_a_fresh_catalog(catalog_url: str) -> None:
    code = "import sys; from workbench.catalog import Catalog; Catalog(sys.argv[1]).close(); print('ok')"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, catalog_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        for _ in range(3)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [r[1].decode()[-800:] for r in results]


def test_unreachable_database_is_service_unavailable(tmp_path: Path) -> None:
    with pytest.raises(ServiceUnavailable) as err:
        Catalog("postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert "WORKBENCH_CATALOG_URL" in err.value.hint
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ServiceUnavailable):
        Catalog(f"sqlite:///{blocker / 'sub' / 'catalog.db'}")


# --- tables and statistics ---------------------------------------------------------------
def test_sync_records_schema_stats_and_descriptions(catalog: Catalog, tiny_lake: Lake) -> None:
    info = catalog.sync_table(tiny_lake, "sales")
    files = tiny_lake.files("sales")
    assert info.delta_version == tiny_lake.version("sales")
    assert info.files == len(files)
    assert info.bytes == sum(os.path.getsize(f) for f in files)
    assert info.rows == _duck(tiny_lake, "sales", "SELECT count(*) FROM t")[0]
    assert info.partition_columns == ["year", "month", "region"]
    assert info.kind == "base" and info.registered is False
    cols = {c.name: c for c in info.columns}
    assert cols["revenue"].type == "double"
    assert "quantity * unit_price" in (cols["revenue"].description or "")

    parts = catalog.partitions("sales")
    expected = (
        duckdb.connect()
        .execute(
            f"SELECT year, month, region, count(*), min(revenue), max(revenue), min(date), max(date) "
            f"FROM read_parquet({files!r}, hive_partitioning=true) GROUP BY ALL"
        )
        .fetchall()
    )
    assert len(parts) == len(expected)
    by_key = {(p.values["year"], p.values["month"], p.values["region"]): p for p in parts}
    for year, month, region, rows, rmin, rmax, dmin, dmax in expected:
        p = by_key[(int(year), int(month), region)]
        assert p.rows == rows
        assert p.min_max["revenue"] == [pytest.approx(rmin), pytest.approx(rmax)]
        assert p.min_max["date"] == [dmin.isoformat(), dmax.isoformat()]


def test_registered_table_keeps_origin(catalog: Catalog, tiny_lake: Lake) -> None:
    info = catalog.sync_table(
        tiny_lake,
        "products",
        origin_url="s3://landing/products.csv",
        registered=True,
        column_descriptions={"unit_cost": "what one unit costs us"},
    )
    assert info.registered is True and info.origin_url == "s3://landing/products.csv"
    assert info.partition_columns == []
    assert {c.name: c.description for c in info.columns}["unit_cost"] == "what one unit costs us"
    again = catalog.sync_table(tiny_lake, "products", force=True)
    assert again.origin_url == "s3://landing/products.csv"
    assert [t.name for t in catalog.tables()] == ["products"]


def test_sync_is_idempotent_and_follows_new_versions(catalog_url: str, tmp_path: Path) -> None:
    root = tmp_path / "lake"
    df = _sales(2_000, seed=1)
    write_deltalake(str(root / "sales"), df, partition_by=["year", "month", "region"])
    lake = Lake(str(root))
    catalog = Catalog(catalog_url)
    first = catalog.sync_table(lake, "sales")
    assert catalog.estimate_scan("sales").rows == 2_000
    same = catalog.sync_table(lake, "sales")
    assert same.synced_at == first.synced_at  # unchanged version: nothing rewritten
    assert len(catalog.versions("sales")) == 1

    write_deltalake(str(root / "sales"), df.head(300), partition_by=["year", "month", "region"], mode="append")
    after = catalog.sync_table(lake, "sales")
    assert after.delta_version == first.delta_version + 1
    assert after.rows == 2_300
    assert catalog.estimate_scan("sales").rows == 2_300  # the memoised stats follow the new version
    assert [v["version"] for v in catalog.versions("sales")] == [1, 0]
    assert catalog.versions("sales")[0]["operation"] == "WRITE"
    assert catalog.table_versions(["sales", "nope"]) == {"sales": 1}
    catalog.close()


@pytest.mark.parametrize(
    "filters",
    [
        None,
        [("year", "=", 2023)],
        [("year", "=", "2023")],  # Delta partition values are text; both spellings work
        [("region", "in", ["North", "East"])],
        [("region", "not in", ["North"]), ("year", ">=", 2023)],
        [("month", "<", 4), ("region", "!=", "South")],
        [("year", ">", 2022), ("month", "<=", 2)],
    ],
)
def test_estimate_scan_matches_the_delta_file_list(catalog: Catalog, tiny_lake: Lake, filters: Any) -> None:
    catalog.sync_table(tiny_lake, "sales")
    est = catalog.estimate_scan("sales", filters)
    files = tiny_lake.files("sales", filters)
    assert isinstance(est, ScanEstimate)
    assert est.files == len(files)
    assert est.bytes == sum(os.path.getsize(f) for f in files)
    assert est.rows == _duck(tiny_lake, "sales", "SELECT count(*) FROM t", filters)[0]


def test_estimate_prunes_by_min_max_of_other_columns(catalog: Catalog, tiny_lake: Lake) -> None:
    catalog.sync_table(tiny_lake, "sales")
    est = catalog.estimate_scan("sales", [("date", ">=", dt.date(2024, 1, 1))])
    # dates follow year/month exactly, so min/max pruning keeps exactly the 2024 partitions
    assert est.rows == _duck(tiny_lake, "sales", "SELECT count(*) FROM t WHERE date >= DATE '2024-01-01'")[0]
    assert est.files == len(tiny_lake.files("sales", [("year", "=", 2024)]))
    # a filter statistics cannot decide keeps everything (never under-estimates)
    assert catalog.estimate_scan("sales", [("revenue", "!=", 1.0)]).rows == catalog.table("sales").rows


def test_decimal_statistics_are_stored_as_json_numbers(catalog: Catalog, tmp_path: Path) -> None:
    """DECIMAL min/max (TPC-DS prices, any finance export) are stored as numbers that read back as
    the same decimals, and still prune; before, the sync failed with "Decimal is not JSON serializable"."""
    from decimal import Decimal

    import pyarrow as pa

    from workbench.catalog.partition_stats import aggregate

    prices = pa.array([Decimal("0.10"), Decimal("12.34"), Decimal("99999.99")], pa.decimal128(7, 2))
    table = pa.table({"k": pa.array([1, 2, 3], pa.decimal128(10, 0)), "price": prices})
    write_deltalake(str(tmp_path / "lake" / "prices"), table)
    lake = Lake(str(tmp_path / "lake"))
    catalog.sync_table(lake, "prices")
    (stat,) = catalog.partitions("prices")
    assert stat.min_max == {"k": [1, 3], "price": [0.1, 99999.99]}
    assert [Decimal(repr(b)) for b in stat.min_max["price"]] == [Decimal("0.10"), Decimal("99999.99")]
    assert catalog.estimate_scan("prices", [("price", ">", 100_000)]).rows == 0
    assert catalog.estimate_scan("prices", [("price", "=", 12.34)]).rows == 3
    wide = Decimal("0.12345678901234567890123")  # no float holds it: no bound rather than a wrong one
    (inexact,) = aggregate([{"num_records": 1, "min.x": wide, "max.x": wide}], [], ["x"])
    assert inexact.min_max == {}


def test_unknown_table_suggests_a_name(catalog: Catalog, tiny_lake: Lake) -> None:
    catalog.sync_table(tiny_lake, "sales")
    with pytest.raises(NotFoundError) as err:
        catalog.estimate_scan("sale")
    assert "sales" in err.value.hint


# --- rollups -------------------------------------------------------------------------------
def test_rollup_definition_and_freshness(catalog: Catalog) -> None:
    built = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
    catalog.record_rollup("monthly_store", "sales", {"dimensions": ["year", "month"]}, 3, built)
    catalog.record_rollup("monthly_store", "sales", {"dimensions": ["year", "month"]}, 4)
    info = catalog.rollup("monthly_store")
    assert info.built_from_version == 4 and info.built_at is not None and info.built_at > built
    assert info.definition == {"dimensions": ["year", "month"]}
    assert [r.name for r in catalog.rollups()] == ["monthly_store"]
    with pytest.raises(NotFoundError):
        catalog.rollup("monthly_stores")


# --- query log --------------------------------------------------------------------------
def test_query_log_round_trip_and_filters(catalog: Catalog) -> None:
    catalog.log_query(
        QueryLogEntry(
            user="ana",
            sql="select  REGION, sum(revenue) from sales group by 1",
            route="duckdb",
            engine="duckdb",
            files_scanned=3,
            bytes_scanned=1234,
            rows=5,
            latency_ms=12.5,
            cost_usd=0.0,
        )
    )
    catalog.log_query(
        QueryLogEntry(user="bo", question="revenue by region?", sql="select 1", route="cache", cache_hit=True, rows=1)
    )
    catalog.log_query(QueryLogEntry(user="ana", sql="select x from nope", error="unknown table 'nope'"))
    entries = catalog.query_log()
    assert [e.user for e in entries] == ["ana", "bo", "ana"]  # newest first
    first = entries[-1]
    assert first.normalized_sql == "SELECT region, SUM(revenue) FROM sales GROUP BY 1"
    assert (first.files_scanned, first.bytes_scanned, first.rows, first.latency_ms) == (3, 1234, 5, 12.5)
    assert entries[1].cache_hit is True and entries[0].error == "unknown table 'nope'"
    assert [e.user for e in catalog.query_log(user="ana")] == ["ana", "ana"]
    assert len(catalog.query_log(limit=1)) == 1
    assert catalog.query_log(since=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)) == []
    assert entries[0].ts.tzinfo is not None


def test_record_writes_a_batch_of_log_and_audit_rows_in_order(catalog: Catalog) -> None:
    """The router's writer thread sends what queued up in one call; nothing is lost or reordered."""
    entries = [QueryLogEntry(user="ana", sql=f"select {i}", route="duckdb", rows=i) for i in range(5)]
    audits = [AuditEntry(user="ana", outcome="ok", sql=f"select {i}", rows=i) for i in range(5)]
    assert catalog.record(entries, audits) is True
    logged = catalog.query_log(user="ana")
    assert [e.rows for e in logged] == [4, 3, 2, 1, 0]
    assert [e.normalized_sql for e in logged][-1] == "SELECT 0"
    assert [e.rows for e in catalog.audit_entries(user="ana")] == [4, 3, 2, 1, 0]


# --- audit ------------------------------------------------------------------------------
def test_audit_append_and_query(catalog: Catalog) -> None:
    catalog.audit("ana", "ok", sql="select 1", route="duckdb", rows=1, policy="analyst")
    catalog.audit("bo", "denied", question="customer emails?", policy="viewer", detail="column email is PII")
    catalog.audit("ana", "refused", sql="drop table sales", policy="analyst")
    assert [e.outcome for e in catalog.audit_entries()] == ["refused", "denied", "ok"]
    assert [e.outcome for e in catalog.audit_entries(user="ana", limit=1)] == ["refused"]
    cut = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    assert len(catalog.audit_entries(since=cut)) == 3
    assert catalog.audit_entries(since=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)) == []


def test_audit_log_is_append_only(catalog: Catalog) -> None:
    catalog.audit("ana", "ok", sql="select 1")
    assert not any(hasattr(catalog, n) for n in ("delete_audit", "update_audit", "purge_audit"))
    for stmt in ("UPDATE audit_log SET outcome = 'forged'", "DELETE FROM audit_log"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), catalog.engine.begin() as conn:
            conn.execute(sa.text(stmt))
    assert [e.outcome for e in catalog.audit_entries()] == ["ok"]
