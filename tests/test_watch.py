"""``workbench ingest --watch``: micro-batches, exactly once (from the Delta log), and freshness."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from workbench.lake.storage import Lake
from workbench.lake.watch import freshness, pending_files, watch


def _sales_rows(lake: str) -> int:
    return int(
        duckdb.connect().execute("SELECT COUNT(*) FROM read_parquet(?)", [Lake(lake).files("sales")]).fetchone()[0]
    )


def _distinct_ids(lake: str) -> tuple[int, int]:
    return (
        duckdb.connect()
        .execute("SELECT COUNT(*), COUNT(DISTINCT transaction_id) FROM read_parquet(?)", [Lake(lake).files("sales")])
        .fetchone()
    )


@pytest.fixture
def split_landing(landing_dir: Path, tmp_path: Path) -> tuple[Path, list[Path], list[Path]]:
    """An empty watched folder, the dimension files, and the sales files to drop in one by one."""
    watched = tmp_path / "watched"
    watched.mkdir()
    files = sorted(landing_dir.iterdir())
    dims = [f for f in files if not f.name.startswith("sales")]
    sales = [f for f in files if f.name.startswith("sales")]
    assert len(sales) >= 2
    return watched, dims, sales


def _drop(src: Path, folder: Path) -> None:
    """Write as a producer should: hidden temporary name, then an atomic rename."""
    tmp = folder / f".{src.name}.tmp"
    shutil.copyfile(src, tmp)
    tmp.rename(folder / src.name)


def test_watch_ingests_each_file_exactly_once(
    split_landing: tuple[Path, list[Path], list[Path]], tmp_path: Path, small_lake: str
) -> None:
    watched, dims, sales = split_landing
    lake = str(tmp_path / "lake")
    for f in [*dims, sales[0]]:
        _drop(f, watched)
    first = watch(str(watched), lake, once=True)
    assert first.batches == 1
    rows_after_first = _sales_rows(lake)
    assert rows_after_first > 0

    # nothing new: no batch, no commit
    version = Lake(lake).version("sales")
    assert watch(str(watched), lake, once=True).batches == 0
    assert Lake(lake).version("sales") == version

    # a watcher running in the background picks up the remaining files, each once
    stop = threading.Event()
    batches: list[dict] = []
    runner = threading.Thread(
        target=lambda: watch(str(watched), lake, interval_s=0.2, settle_s=0.0, stop=stop, on_batch=batches.append),
        daemon=True,
    )
    runner.start()
    try:
        for f in sales[1:]:
            _drop(f, watched)
        deadline = time.time() + 120
        while time.time() < deadline:
            done = sum(len(b["tables"].get("sales", {}).get("files", [])) for b in batches)
            if done >= len(sales) - 1:
                break
            time.sleep(0.2)
    finally:
        stop.set()
        runner.join(120)
    assert not runner.is_alive()
    # same rows as a one-shot ingest of the whole landing folder (the session's small_lake)
    total, distinct = _distinct_ids(lake)
    assert total == distinct == _sales_rows(small_lake)
    # re-watching everything again changes nothing
    assert watch(str(watched), lake, once=True).batches == 0
    assert _distinct_ids(lake) == (total, distinct)


def test_changing_files_wait_until_settled(landing_dir: Path, tmp_path: Path) -> None:
    watched = tmp_path / "w"
    watched.mkdir()
    sales = sorted(landing_dir.glob("sales*"))[0]
    shutil.copyfile(sales, watched / sales.name)
    lake = Lake(str(tmp_path / "lake"))
    seen: dict[str, str] = {}
    ready, changing = pending_files(str(watched), lake, seen, settle_s=3600)
    assert not ready and len(changing) == 1  # first sighting of a fresh file: wait
    ready, changing = pending_files(str(watched), lake, seen, settle_s=3600)
    assert len(ready) == 1 and not changing  # unchanged since the last poll: take it


def test_freshness_cli(small_lake: str) -> None:
    from workbench.cli import main

    result = CliRunner().invoke(main, ["freshness", "--lake", small_lake, "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["age_s"] >= 0 and body["tables"]["sales"]["version"] >= 0
    assert body == {**body, "lake": Lake(small_lake).url}
    text = CliRunner().invoke(main, ["freshness", "--lake", small_lake])
    assert "newest ingest" in text.output
    assert freshness(small_lake)["last_ingest_at"] == body["last_ingest_at"]


def test_ingest_watch_cli_once(landing_dir: Path, tmp_path: Path) -> None:
    from workbench.cli import main

    lake = str(tmp_path / "lake")
    result = CliRunner().invoke(main, ["ingest", "--watch", str(landing_dir), "--once", "--lake", lake, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["rows_written"] > 0
    again = CliRunner().invoke(main, ["ingest", "--watch", str(landing_dir), "--once", "--lake", lake, "--json"])
    assert json.loads(again.output.strip().splitlines()[-1]) == {"batches": 0, "rows": 0}
