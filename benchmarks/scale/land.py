"""Land the data in batches the way it arrives, and kill one batch's ingest mid-write.

Each batch is one period of the reference dataset (``workbench generate --period``): its CSV
is generated into the landing folder, ingested into the same lake (``workbench ingest``: the
ingest refreshes the rollup partitions of the months it touched and syncs the catalog), the
summaries and their index are rebuilt, and the batch's CSV is deleted after its commit, so
the disk holds one batch of CSV plus the lake.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from deltalake import DeltaTable

from benchmarks.scale import proc
from workbench.lake.delta import add_actions

#: the reference dataset's dates (workbench.lake.generate's defaults)
FIRST_MONTH, MONTHS = (2022, 1), 36
#: before any batch has been measured: disk per sales row of a batch (CSV + ingest staging + new lake
#: files), from the 4M-row harness check: ~120 + ~175 + ~45 bytes, rounded up
DEFAULT_PEAK_BYTES_PER_ROW = 400.0
SUMMARIES = (
    "import sys, workbench; from workbench.assistant import build_summaries;"
    " wb = workbench.connect(lake=sys.argv[1]); print(build_summaries(wb)); wb.close()"
)


@dataclass
class Period:
    index: int
    first: dt.date
    last: dt.date

    @property
    def label(self) -> str:
        return f"{self.first:%Y-%m}..{self.last:%Y-%m}"

    def cli(self) -> str:
        return f"{self.first.isoformat()}..{self.last.isoformat()}"


def periods(batches: int) -> list[Period]:
    """Split the dataset's 36 months into ``batches`` consecutive spans of whole months (36 = monthly)."""
    if not 1 <= batches <= MONTHS:
        raise SystemExit(f"BATCHES must be 1..{MONTHS} (36 = one batch per month, 12 = per quarter), got {batches}")
    bounds = [round(i * MONTHS / batches) for i in range(batches + 1)]
    return [Period(i + 1, _month(bounds[i]), _month(bounds[i + 1]) - dt.timedelta(days=1)) for i in range(batches)]


def _month(offset: int) -> dt.date:
    y, m = divmod(FIRST_MONTH[0] * 12 + FIRST_MONTH[1] - 1 + offset, 12)
    return dt.date(y, m + 1, 1)


class DiskFull(Exception):
    """The next batch would not fit on the disk (with the reserve kept free)."""


def disk_guard(folder: Path, rows: int, per_row: float, reserve: int) -> dict[str, int]:
    """Refuse a batch of ``rows`` unless its CSV, staging and lake growth fit above ``reserve`` bytes free.

    ``per_row`` comes from the previous batch as measured (free disk before it minus the
    least free disk seen during its ingest), so the estimate follows the data.
    """
    free = shutil.disk_usage(folder).free
    need = int(rows * per_row)
    if free - need < reserve:
        raise DiskFull(
            f"stopping before this batch: {free / 2**30:.1f} GB free, the batch needs ~{need / 2**30:.1f} GB "
            f"(CSV + ingest staging + lake growth, per row as measured on the previous batch) and "
            f"{reserve / 2**30:.1f} GB must stay free (--min-free-gb). Free disk space, or lower ROWS."
        )
    return {"free_bytes": free, "estimated_need_bytes": need}


def folder_bytes(path: Path, pattern: str = "*") -> int:
    return sum(f.stat().st_size for f in path.rglob(pattern) if f.is_file()) if path.exists() else 0


def generate(period: Period, rows: int, landing: Path, env: dict[str, str], chunk_rows: int) -> proc.Run:
    argv = [*proc.CLI, "generate", "--rows", str(rows), "--period", period.cli(), "--out", str(landing)]
    argv += ["--chunk-rows", str(chunk_rows), "--json"]
    return proc.checked(proc.run(argv, env, landing.parent), f"generating batch {period.index}")


def ingest(landing: Path, lake: Path, env: dict[str, str], kill_when: Callable[[str], bool] | None = None) -> proc.Run:
    """``workbench ingest``; with ``kill_when`` it runs with progress on stderr (and no --json)."""
    argv = [*proc.CLI, "--lake", str(lake), "ingest", str(landing)]
    home = Path(env["WORKBENCH_HOME"])
    if kill_when is None:
        return proc.checked(proc.run([*argv, "--json"], env, lake.parent, staging=home), "ingest")
    return proc.run(argv, env, lake.parent, kill_when=kill_when, staging=home)


def summaries(lake: Path, env: dict[str, str]) -> proc.Run:
    """Rebuild the assistant's summaries and their index (the public ``build_summaries``)."""
    run = proc.run([proc.sys.executable, "-c", SUMMARIES, str(lake)], env, lake.parent)
    return proc.checked(run, "summaries")


def sales_state(lake: Path, period: Period) -> dict[str, Any]:
    """Version and rows of ``sales`` as plain DuckDB reads the Delta table's files; ids in ``period``.

    Distinct ids are counted in the period only: at 100 GB a distinct count over the whole
    table would cost more than the batch, and the batch's ids can only collide inside it.
    """
    if not (lake / "sales" / "_delta_log").exists():
        return {"version": None, "rows": 0, "period_rows": 0, "period_distinct_ids": 0, "files": set()}
    table = DeltaTable(str(lake / "sales"))
    files = [u.removeprefix("file://") for u in table.file_uris()]
    inside = f"date BETWEEN DATE '{period.first}' AND DATE '{period.last}'"
    rows, in_period, ids = duckdb.execute(
        f"SELECT COUNT(*), COUNT(*) FILTER (WHERE {inside}), COUNT(DISTINCT transaction_id) FILTER (WHERE {inside}) "
        f"FROM read_parquet({files!r})"
    ).fetchall()[0]
    return {
        "version": table.version(),
        "rows": rows,
        "period_rows": in_period,
        "period_distinct_ids": ids,
        "files": set(files),
    }


def lake_rows(lake: Path) -> int:
    """Rows of ``sales`` from the Delta log (no data read)."""
    if not (lake / "sales" / "_delta_log").exists():
        return 0
    return int(add_actions(DeltaTable(str(lake / "sales"))).to_pandas()["num_records"].sum())


def parquet_on_disk(lake: Path) -> set[str]:
    return {str(p) for p in (lake / "sales").rglob("*.parquet")}
