"""No staging folder survives an ingest, failed or not; nothing to ingest is an error (issue 15).

A failed ingest used to leave ``.workbench/ingest-*`` behind (15 MB each, five after five
failures) and later successful ingests did not remove them; sibling stage tasks still
running after the failure could also recreate the folder after it was removed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import workbench.lake.ingest as ingest_module
from workbench.cli import main
from workbench.config import get_settings
from workbench.errors import DataError
from workbench.lake.ingest import ingest
from workbench.lake.storage import Lake


def _staging_left(home: Path) -> list[Path]:
    return sorted(home.glob("ingest-*"))


def _landing_with_files(landing_dir: Path, dest: Path, copies: int) -> Path:
    """``copies`` sales files (distinct ids) so several stage tasks run side by side."""
    dest.mkdir()
    lines = (landing_dir / "sales-00000.csv").read_text().splitlines()
    for i in range(copies):
        body = [lines[0]] + [line.replace('"T0', f'"S{i}', 1) for line in lines[1:2000]]
        (dest / f"sales-{i:05d}.csv").write_text("\n".join(body) + "\n")
    return dest


def test_failure_mid_stage_leaves_no_staging_and_siblings_finish_first(
    landing_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing = _landing_with_files(landing_dir, tmp_path / "landing", copies=4)
    home = get_settings().home_path
    real_stage = ingest_module._stage_blocks
    late_writes: list[Path] = []

    def stage_then_fail(uri: str, file_no: int, *args: object, **kwargs: object) -> object:
        if file_no == 0:  # the first file fails at once, mid-stage
            raise RuntimeError("injected failure while staging")
        time.sleep(0.4)  # siblings are still working when the failure propagates ...
        result = real_stage(uri, file_no, *args, **kwargs)  # type: ignore[arg-type]
        late_writes.extend(Path(str(args[3])).rglob("*.arrow"))  # ... and write into staging afterwards
        return result

    monkeypatch.setattr(ingest_module, "_stage_blocks", stage_then_fail)
    lake = Lake(str(tmp_path / "lake"))
    with pytest.raises(RuntimeError, match="injected"):
        ingest(landing, lake, workers=2)
    assert _staging_left(home) == []
    time.sleep(1.0)  # a sibling still running would recreate the folder now
    assert _staging_left(home) == []
    assert not lake.exists("sales")


def test_a_malformed_file_mid_batch_leaves_no_staging(landing_dir: Path, tmp_path: Path) -> None:
    landing = _landing_with_files(landing_dir, tmp_path / "landing", copies=3)
    (landing / "sales-00001.csv").write_text("transaction_id,date\n" + "x,2023-01-01\n" * 50)
    with pytest.raises(DataError):
        ingest(landing, str(tmp_path / "lake"), workers=2)
    assert _staging_left(get_settings().home_path) == []


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_next_ingest_sweeps_folders_of_killed_ingests_only(landing_dir: Path, tmp_path: Path) -> None:
    home = get_settings().home_path
    home.mkdir(parents=True, exist_ok=True)
    host = os.uname().nodename
    dead = home / "ingest-dead"
    (dead / "rows").mkdir(parents=True)
    (dead / ".owner").write_text(f"{host} {_dead_pid()}\n")
    orphan = home / "ingest-orphan"  # an older folder without owner file
    orphan.mkdir()
    os.utime(orphan, (time.time() - 3600, time.time() - 3600))
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = home / "ingest-live"  # a concurrent ingest of another process: left alone
        live.mkdir()
        (live / ".owner").write_text(f"{host} {alive.pid}\n")
        landing = tmp_path / "landing"
        shutil.copytree(landing_dir, landing)
        ingest(landing, str(tmp_path / "lake"))
        assert _staging_left(home) == [live]
    finally:
        alive.kill()
        alive.wait()


@pytest.mark.parametrize("files", [[], ["notes.txt", "orders-2024.csv"]], ids=["empty", "no-table-name"])
def test_nothing_to_ingest_exits_non_zero_naming_the_patterns(tmp_path: Path, files: list[str]) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    for name in files:
        (landing / name).write_text("a,b\n1,2\n")
    result = CliRunner().invoke(main, ["ingest", str(landing), "--lake", str(tmp_path / "lake")])
    assert result.exit_code == DataError.exit_code, result.output
    assert "nothing to ingest" in result.output
    for table in ("sales", "products", "stores", "customers"):
        assert f"{table}*.csv" in result.output
    if files:
        assert "orders-2024.csv" in result.output
    assert not (tmp_path / "lake").exists() or not Lake(str(tmp_path / "lake")).tables()
    assert _staging_left(get_settings().home_path) == []


def test_re_ingesting_the_same_files_is_still_fine(small_lake: str, landing_dir: Path) -> None:
    """Idempotent re-runs skip recorded files: that is not "nothing to ingest"."""
    report = ingest(landing_dir, small_lake)
    assert report.tables["sales"].skipped_files
    assert report.tables["sales"].rows_written == 0
