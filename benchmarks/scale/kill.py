"""Kill one batch's ingest mid-write (SIGKILL), then show the rerun completes it exactly.

"Mid-write" is observed from outside, the way an operator would see it: the ingest's progress
(stderr) has reached its write phase and new Parquet files of the batch are on disk. The
expected row count comes from a control: the same batch CSV ingested, uninterrupted, into an
empty scratch lake (batches cover disjoint periods and ids, so nothing of it is already in the
main lake). Counts are read with plain DuckDB over the Delta table's files.
"""

from __future__ import annotations

import shutil
import signal
from pathlib import Path
from typing import Any

from benchmarks.scale import land, proc


def kill_and_rerun(period: land.Period, landing: Path, lake: Path, home: Path) -> tuple[dict[str, Any], proc.Run]:
    """Returns the check's findings and the rerun (which is the batch's measured ingest)."""
    env = proc.env_for(lake, home)
    before = land.sales_state(lake, period)
    on_disk = land.parquet_on_disk(lake)

    def writing(stderr: str) -> bool:
        return "ingest: write" in stderr and bool(land.parquet_on_disk(lake) - on_disk)

    killed = land.ingest(landing, lake, env, kill_when=writing)
    after_kill = land.sales_state(lake, period)
    orphans = land.parquet_on_disk(lake) - after_kill["files"] - before["files"]
    staging = [p for p in home.glob("ingest-*") if p.is_dir()]
    found: dict[str, Any] = {
        "batch": period.index,
        "period": period.label,
        "sigkilled": killed.killed and killed.returncode == -signal.SIGKILL,
        "killed_after_s": round(killed.seconds, 2),
        "visible_after_kill": {"version": after_kill["version"], "rows": after_kill["rows"]},
        "visible_before": {"version": before["version"], "rows": before["rows"]},
        "readers_see_nothing_of_the_batch": after_kill["version"] == before["version"]
        and after_kill["rows"] == before["rows"],
        "invisible_files_left_on_disk": len(orphans),
        "invisible_bytes_left_on_disk": sum(Path(f).stat().st_size for f in orphans),
        "staging_folders_left": len(staging),
        "staging_bytes_left": sum(land.folder_bytes(p) for p in staging),
    }
    rerun = land.ingest(landing, lake, env)
    after = land.sales_state(lake, period)
    found["staging_bytes_left_after_rerun"] = sum(land.folder_bytes(p) for p in staging)
    orphans_now = land.parquet_on_disk(lake) - after["files"]
    found["invisible_bytes_left_after_rerun"] = sum(Path(f).stat().st_size for f in orphans_now)
    expected = _control_rows(landing, lake.parent / "kill-control")
    written = rerun.json()["tables"]["sales"]["rows_written"]
    found.update(
        expected_rows_from_uninterrupted_ingest=expected,
        rerun_rows_written=written,
        lake_rows_added=after["rows"] - before["rows"],
        rows_in_period=after["period_rows"] - before["period_rows"],
        duplicate_ids_in_period=after["period_rows"] - after["period_distinct_ids"],
        versions_added=(after["version"] or 0) - (before["version"] if before["version"] is not None else -1),
    )
    found["held"] = bool(
        found["sigkilled"]
        and found["readers_see_nothing_of_the_batch"]
        and written == expected == found["lake_rows_added"] == found["rows_in_period"]
        and found["duplicate_ids_in_period"] == 0
        and found["versions_added"] == 1
    )
    return found, rerun


def _control_rows(landing: Path, scratch: Path) -> int:
    """Sales rows an uninterrupted ingest of ``landing`` writes into an empty lake (scratch, removed after)."""
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        env = proc.env_for(scratch / "lake", scratch / "home")
        run = land.ingest(landing, scratch / "lake", env)
        return int(run.json()["tables"]["sales"]["rows_written"])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
