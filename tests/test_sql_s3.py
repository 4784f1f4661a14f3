"""The SQL path against a lake on S3 (moto on loopback): same answers, same pruning, both engines.

This test used to hang: DuckDB read the lake through a registered fsspec (s3fs) filesystem and
spent its time in one Python round trip per range read. The engines now read S3 through
pyarrow's native client (``workbench.sql.engines.duckdb.arrow_s3_filesystem``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.corpus import analyst_queries, dev_queries, normalise
from workbench.errors import QueryFailed, UnsupportedQuery
from workbench.session import Workbench


def _upload(local_root: str, server: Any, url: str) -> None:
    client = server.client()
    prefix = url[len(f"s3://{server.bucket}/") :]
    for path in Path(local_root).rglob("*"):
        if path.is_file():
            key = f"{prefix}/{path.relative_to(local_root).as_posix()}"
            client.upload_file(str(path), server.bucket, key)


@pytest.mark.slow
@pytest.mark.s3
def test_dev_questions_and_pruning_on_s3(sql_lake: str, s3_env: Any, s3_lake_url: str, dask_client: Any) -> None:
    _upload(sql_lake, s3_env, s3_lake_url)
    with (
        Workbench.open(lake=sql_lake) as local,
        Workbench.open(lake=s3_lake_url, dask_client=dask_client) as remote,
    ):
        ran_on_dask = 0
        for case in (dev_queries() + analyst_queries())[:12]:
            want = normalise(local.sql(case["sql"], engine="duckdb").rows, case["compare"])
            got = remote.sql(case["sql"], engine="duckdb")
            assert normalise(got.rows, case["compare"]) == want, case["id"]
            try:
                on_dask = remote.sql(case["sql"], engine="dask")
            except (UnsupportedQuery, QueryFailed):
                continue
            assert normalise(on_dask.rows, case["compare"]) == want, case["id"]
            ran_on_dask += 1
        assert ran_on_dask >= 10
        sql = "SELECT COUNT(*) FROM sales WHERE year = 2024 AND region = 'North'"
        local_result = local.sql(sql, engine="duckdb")
        for engine in ("duckdb", "dask"):
            remote_result = remote.sql(sql, engine=engine)
            assert 0 < remote_result.files_scanned == local_result.files_scanned
            assert remote_result.bytes_scanned == local_result.bytes_scanned
            assert remote_result.rows == local_result.rows
        # the cluster's tasks read the objects themselves (pyarrow's S3 client on the worker)
        from distributed import get_task_stream

        with get_task_stream(dask_client) as ts:
            remote.sql(
                "SELECT region, SUM(revenue) FROM sales WHERE year = 2024 GROUP BY 1", engine="dask", use_cache=False
            )
        assert any("run_sql" in str(t["key"]) for t in ts.data)
