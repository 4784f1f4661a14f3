"""The SQL path against a lake on S3 (moto on loopback): same answers, same pruning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.corpus import dev_queries, normalise
from workbench.session import Workbench


def _upload(local_root: str, server: Any, url: str) -> None:
    client = server.client()
    prefix = url[len(f"s3://{server.bucket}/") :]
    for path in Path(local_root).rglob("*"):
        if path.is_file():
            key = f"{prefix}/{path.relative_to(local_root).as_posix()}"
            client.upload_file(str(path), server.bucket, key)


@pytest.mark.slow
def test_dev_questions_and_pruning_on_s3(sql_lake: str, s3_env: Any, s3_lake_url: str) -> None:
    _upload(sql_lake, s3_env, s3_lake_url)
    with Workbench.open(lake=sql_lake) as local, Workbench.open(lake=s3_lake_url) as remote:
        for case in dev_queries()[:12]:
            got = remote.sql(case["sql"], engine="duckdb")
            want = local.sql(case["sql"], engine="duckdb")
            assert normalise(got.rows, case["compare"]) == normalise(want.rows, case["compare"]), case["id"]
        sql = "SELECT COUNT(*) FROM sales WHERE year = 2024 AND region = 'North'"
        remote_result, local_result = remote.sql(sql), local.sql(sql)
        assert 0 < remote_result.files_scanned == local_result.files_scanned
        assert remote_result.bytes_scanned == local_result.bytes_scanned
        assert remote_result.rows == local_result.rows
