"""Registration on S3 (moto on loopback): Parquet in place under another prefix, a CSV copied in."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.data.star import write_star


@pytest.mark.slow
def test_register_in_place_and_copy_on_s3(s3_env: Any, s3_lake_url: str, tmp_path: Path) -> None:
    from workbench.lake.register import register, unregister
    from workbench.lake.storage import Lake
    from workbench.session import Workbench

    root = write_star(tmp_path / "star", orders=3_000)
    client = s3_env.client()
    prefix = f"byod-{uuid.uuid4().hex[:8]}"
    for path in root.rglob("*"):
        if path.is_file():
            client.upload_file(str(path), s3_env.bucket, f"{prefix}/{path.relative_to(root).as_posix()}")
    source = f"s3://{s3_env.bucket}/{prefix}"
    lake = Lake(s3_lake_url)
    orders = register("orders", f"{source}/orders", lake=lake)
    members = register("members", f"{source}/members.csv", lake=lake)
    assert orders.mode == "in_place" and orders.files == 24 and orders.partition_columns == ["year", "month"]
    assert members.mode == "copy" and members.rows == 300
    keys = [
        o["Key"] for o in client.list_objects_v2(Bucket=s3_env.bucket, Prefix=s3_lake_url.split("/", 3)[3])["Contents"]
    ]
    assert not [k for k in keys if k.startswith(s3_lake_url.split("/", 3)[3] + "/orders/") and k.endswith(".parquet")]
    with Workbench(lake, lake.settings) as wb:
        res = wb.sql(
            "SELECT m.loyalty_level, SUM(o.cups) AS cups FROM orders o JOIN members m ON o.member_id = m.member_id "
            "WHERE o.year = 2024 AND o.month = 2 GROUP BY 1 ORDER BY 1",
            engine="duckdb",
        )
    from tests.data.star import frames

    fr = frames(root)
    o = fr["orders"]
    m = fr["members"].rename(columns={"Loyalty Level": "loyalty_level"})
    j = o[(o.year == 2024) & (o.month == 2)].merge(m, on="member_id")
    expected = j.groupby("loyalty_level").cups.sum()
    assert dict(zip(res.df["loyalty_level"], res.df["cups"], strict=True)) == expected.to_dict()
    assert res.files_scanned == 2  # one month of orders + the members copy
    unregister("orders", lake=lake)
    left = client.list_objects_v2(Bucket=s3_env.bucket, Prefix=f"{prefix}/orders/")["KeyCount"]
    assert left == 24  # the user's files stay
