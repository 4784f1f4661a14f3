"""Atomicity: an ingest killed with SIGKILL after writing its data files exposes nothing.

The subprocess pauses in ``before_commit("sales")`` (every data file of the batch is on disk,
the dimension tables are already committed), the test SIGKILLs it, checks that readers see
the previous sales version, then re-runs the ingest and checks it completes the batch and
removes the killed batch's files.
"""

from __future__ import annotations

import shutil
import signal
import textwrap
from pathlib import Path

import duckdb

from tests.fixtures.lake import killed_when_ready
from workbench.lake.ingest import ingest
from workbench.lake.storage import Lake

SCRIPT = textwrap.dedent(
    """
    import sys, time
    from workbench.lake.ingest import ingest

    def hook(table):
        if table == "sales":
            print("READY", flush=True)
            time.sleep(600)

    ingest(sys.argv[1], sys.argv[2], before_commit=hook)
    """
)


def _count(lake: Lake) -> tuple[int, int]:
    files = lake.files("sales")
    return duckdb.sql(f"select count(*), count(distinct transaction_id) from read_parquet({files!r})").fetchall()[0]


def test_killed_ingest_exposes_nothing_and_rerun_completes(fresh_lake: str, landing_dir: Path, tmp_path: Path) -> None:
    lake = Lake(fresh_lake)
    landing = tmp_path / "landing"
    landing.mkdir()
    lines = (landing_dir / "sales-00001.csv").read_text().splitlines()
    new = [lines[0]] + [line.replace('"T0', '"K0', 1) for line in lines[1:]]
    (landing / "sales-k.csv").write_text("\n".join(new) + "\n")
    shutil.copy(landing_dir / "products.csv", landing / "products-extra.csv")
    version = lake.version("sales")
    before = _count(lake)
    data_files_before = len(list(Path(fresh_lake, "sales").rglob("*.parquet")))

    with killed_when_ready(SCRIPT, str(landing), fresh_lake) as proc:
        # data files of the batch are written but not committed
        assert len(list(Path(fresh_lake, "sales").rglob("*.parquet"))) > data_files_before
    assert proc.returncode == -signal.SIGKILL

    assert lake.version("sales") == version
    assert _count(lake) == before

    report = ingest(landing, lake)
    sales = report.tables["sales"]
    assert [Path(f).name for f in sales.files] == ["sales-k.csv"]
    assert sales.rows_written > 9_000
    assert lake.version("sales") == version + 1
    assert _count(lake) == (before[0] + sales.rows_written, before[0] + sales.rows_written)
    # the killed batch's own files are gone: every Parquet file on disk is one the table references
    on_disk = {p.name for p in Path(fresh_lake, "sales").rglob("*.parquet")}
    assert on_disk == {Path(u).name for u in lake.files("sales")}
    # products were committed before the kill: the re-run recognises that file
    assert [Path(f).name for f in report.tables["products"].skipped_files] == ["products-extra.csv"]
