"""The lake on object storage: generate to s3://, ingest s3:// -> s3://, list tables (moto server)."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from tests.fixtures.s3 import S3Server
from workbench.lake.generate import generate
from workbench.lake.ingest import ingest
from workbench.lake.storage import Lake
from workbench.lake.tables import lake_tables


@pytest.mark.s3
@pytest.mark.slow
def test_generate_and_ingest_on_s3(s3_lake_url: str, s3_env: S3Server) -> None:
    landing = f"s3://{s3_env.bucket}/landing-{s3_lake_url.rsplit('-', 1)[-1]}"
    # two months only: few partitions keep the test quick on the S3 round trips
    result = generate(
        4_000, landing, seed=11, fmt="csv", chunk_rows=2_000, start=dt.date(2024, 11, 1), end=dt.date(2024, 12, 31)
    )
    assert len(result.files["sales"]) == 2

    report = ingest(landing, s3_lake_url)
    sales = report.tables["sales"]
    assert sales.rows_read == 4_000
    assert sales.rows_written > 3_800
    assert report.report_uri is not None and report.report_uri.startswith(s3_lake_url + "/_reports/")

    lake = Lake(s3_lake_url)
    stats = {t.name: t for t in lake_tables(lake)}
    assert {"sales", "products", "stores", "customers"} <= set(stats)
    assert stats["sales"].rows == sales.rows_written

    # independent check: DuckDB over the files of the committed version, fetched through fsspec
    con = duckdb.connect()
    con.register_filesystem(lake.fs)
    files = lake.files("sales")
    assert all(f.startswith("s3://") for f in files)
    ((n, distinct),) = con.execute(
        f"select count(*), count(distinct transaction_id) from read_parquet({files!r})"
    ).fetchall()
    assert n == distinct == sales.rows_written

    again = ingest(landing, s3_lake_url)
    assert again.rows_written == 0
    assert len(again.tables["sales"].skipped_files) == 2


@pytest.mark.s3
@pytest.mark.slow
def test_s3_failed_commit_and_malformed_file_leave_the_lake_unchanged(s3_lake_url: str, s3_env: S3Server) -> None:
    """The local atomicity and malformed-input guarantees, on S3: a crash at the commit point and
    a file missing a required column both leave readers on the previous version; a re-run completes."""
    from workbench.errors import DataError

    suffix = s3_lake_url.rsplit("-", 1)[-1]
    december = {"start": dt.date(2024, 12, 1), "end": dt.date(2024, 12, 31)}
    first = f"s3://{s3_env.bucket}/landing-a-{suffix}"
    generate(2_000, first, seed=5, chunk_rows=2_000, **december)
    ingest(first, s3_lake_url)
    lake = Lake(s3_lake_url)
    version, rows = lake.version("sales"), {t.name: t.rows for t in lake_tables(lake)}["sales"]

    second = f"s3://{s3_env.bucket}/landing-b-{suffix}"
    generate(2_000, second, seed=6, chunk_rows=2_000, **december)

    def crash(table: str) -> None:
        if table == "sales":
            raise RuntimeError("simulated crash at the commit point")

    with pytest.raises(RuntimeError, match="simulated crash"):
        ingest(second, s3_lake_url, before_commit=crash)
    assert lake.version("sales") == version
    assert {t.name: t.rows for t in lake_tables(lake)}["sales"] == rows

    broken = f"s3://{s3_env.bucket}/landing-c-{suffix}"
    header = "transaction_id,date,store_id,channel,customer_id,product_id,category,quantity,unit_price"
    lake.fs.pipe(
        lake.fs_path(f"{broken}/sales-00000.csv"), f"{header}\nT1,2024-12-01,S1,Online,C1,P1,Toys,1,9.5\n".encode()
    )
    with pytest.raises(DataError) as err:
        ingest(broken, s3_lake_url)
    assert "sales-00000.csv" in err.value.message and "revenue" in (err.value.message + err.value.hint)
    assert lake.version("sales") == version

    report = ingest(second, s3_lake_url)  # the re-run completes the crashed batch
    assert lake.version("sales") == version + 1
    assert {t.name: t.rows for t in lake_tables(lake)}["sales"] == rows + report.tables["sales"].rows_written
