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
