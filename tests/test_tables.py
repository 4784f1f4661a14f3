"""`workbench tables`: stats from the Delta log agree with an independent scan of the data."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
from click.testing import CliRunner

from workbench.cli import main
from workbench.lake.storage import Lake
from workbench.lake.tables import lake_tables


def test_stats_match_the_data(small_lake: str) -> None:
    lake = Lake(small_lake)
    # rollups/* tables (built by the post-ingest hook) are listed too; check the base tables here
    stats = {t.name: t for t in lake_tables(lake) if not t.name.startswith("rollups/")}
    assert set(stats) == {"sales", "products", "stores", "customers"}
    for name, t in stats.items():
        files = lake.files(name)
        rows = duckdb.sql(f"select count(*) from read_parquet({files!r})").fetchall()[0][0]
        assert t.rows == rows, name
        assert t.files == len(files)
        assert t.size_bytes == sum(Path(f).stat().st_size for f in files)
        assert t.version == 1
    parts = duckdb.sql(
        f"select count(*) from (select distinct year, month, region from "
        f"read_parquet({lake.files('sales')!r}, hive_partitioning=true))"
    ).fetchall()[0][0]
    assert stats["sales"].partitions == parts == 180
    assert stats["sales"].partition_by == ["year", "month", "region"]
    assert stats["products"].partitions == 1


def test_cli_tables_json_and_text(small_lake: str, tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(main, ["tables", "--lake", small_lake, "--json"])
    assert res.exit_code == 0, res.output
    body = json.loads(res.output)
    names = [t["name"] for t in body["tables"]]
    assert names[:4] == ["customers", "products", "sales", "stores"]
    text = runner.invoke(main, ["--lake", small_lake, "tables"])
    assert text.exit_code == 0 and "sales" in text.output and "partitions" in text.output
    empty = runner.invoke(main, ["tables", "--lake", str(tmp_path / "empty")])
    assert empty.exit_code == 0 and "no tables" in empty.output
