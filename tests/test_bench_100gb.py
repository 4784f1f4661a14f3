"""The 100 GB harness (benchmarks/bench_100gb.py): its batching, its query windows, one small run.

The numbers the harness reports are checked against plain DuckDB over the same Delta files.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from pathlib import Path

import duckdb
import pytest
from deltalake import DeltaTable

from benchmarks.scale import land, measure


@pytest.mark.parametrize("batches", [1, 4, 12, 36])
def test_periods_are_whole_months_covering_the_dataset(batches: int) -> None:
    periods = land.periods(batches)
    assert len(periods) == batches
    assert periods[0].first == dt.date(2022, 1, 1) and periods[-1].last == dt.date(2024, 12, 31)
    for a, b in itertools.pairwise(periods):
        assert b.first == a.last + dt.timedelta(days=1) and b.first.day == 1
    with pytest.raises(SystemExit, match="BATCHES"):
        land.periods(37)


def _files(lake: str) -> list[str]:
    return [u.removeprefix("file://") for u in DeltaTable(f"{lake}/sales").file_uris()]


@pytest.mark.parametrize("share", [0.01, 0.1, 0.5])
def test_query_window_reads_the_share_it_reports(small_lake: str, share: float) -> None:
    parts = measure.partition_rows(Path(small_lake))
    pred, got = measure.window(parts, share)
    files = _files(small_lake)
    total, inside = duckdb.execute(
        f"SELECT COUNT(*), COUNT(*) FILTER (WHERE {pred}) FROM read_parquet({files!r}, hive_partitioning = true)"
    ).fetchall()[0]
    assert got == pytest.approx(inside / total)
    assert share / 2 <= got <= share * 2


@pytest.mark.slow
def test_small_run_end_to_end(tmp_path: Path) -> None:
    """Three batches, the second SIGKILLed mid-write: the lake holds every batch once, no CSV remains."""
    from benchmarks import bench_100gb

    args = ["--rows", "90000", "--batches", "3", "--kill-batch", "2", "--data", str(tmp_path / "data")]
    assert bench_100gb.main([*args, "--out", str(tmp_path / "out"), "--repeat", "1"]) == 0
    doc = json.loads((tmp_path / "out" / "scale-90000.json").read_text())
    lake = str(tmp_path / "data" / "rows-90000" / "lake")
    (rows,) = duckdb.execute(f"SELECT COUNT(*) FROM read_parquet({_files(lake)!r})").fetchall()[0]
    assert [b["batch"] for b in doc["batches"]] == [1, 2, 3]
    assert sum(b["sales_rows_written"] for b in doc["batches"]) == rows
    kill = doc["kill_and_rerun"]
    assert kill["sigkilled"] and kill["readers_see_nothing_of_the_batch"] and kill["held"]
    assert kill["lake_rows_added"] == kill["expected_rows_from_uninterrupted_ingest"] > 0
    assert not list((tmp_path / "data" / "rows-90000" / "landing").rglob("*.csv"))
    assert doc["seed_queries"]["full_scan"]["paths"]["base_table"]["same_answer"]
    assert doc["lake"]["tables"] and "acceptance" in doc
    assert (tmp_path / "out" / "scale-90000.md").read_text().startswith("# Scale run: 90,000 rows in 3 batches")
    for written in ("scale-90000.json", "scale-90000.md"):  # committed results name no folder of this machine
        text = (tmp_path / "out" / written).read_text()
        at = text.find(str(tmp_path))
        assert at < 0, text[max(0, at - 300) : at + 100]
    assert '"<data>/rows-90000/lake' in (tmp_path / "out" / "scale-90000.json").read_text()
