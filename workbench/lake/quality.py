"""The ingest quality report: rows read, written and dropped by reason, per table.

It is printed, returned as an object and stored under the lake (``_reports/``) so a data
question ("why are there fewer rows than in the export?") can be answered later. It also
lists the partitions each table's commit touched: that is the hook for catalog statistics
and rollup refresh, which run after an ingest and only over what changed.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.lake.storage import Lake

#: why a row was dropped (the only reasons the ingest uses)
DROP_REASONS: dict[str, str] = {
    "missing_value": "a required value is empty",
    "malformed_value": "a value does not parse (number, date)",
    "invalid_value": "a value outside the vocabulary or range (e.g. unknown region, quantity < 1)",
    "nonpositive_revenue": "revenue <= 0 (refunds, zero rows)",
    "duplicate": "same key as an earlier row in this batch (exact or near duplicate)",
    "already_in_lake": "key already present in the lake table",
}


@dataclass
class TableQuality:
    """Counts for one table in one ingest."""

    rows_read: int = 0
    rows_written: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    skipped_files: list[str] = field(default_factory=list)
    data_files_written: int = 0
    version: int | None = None
    #: partitions this ingest added rows to, as {column: value} dicts (empty dict = unpartitioned)
    touched_partitions: list[dict[str, str]] = field(default_factory=list)

    def drop(self, counts: dict[str, int]) -> None:
        merged = Counter(self.dropped)
        merged.update({k: v for k, v in counts.items() if v})
        self.dropped = dict(sorted(merged.items()))

    @property
    def rows_dropped(self) -> int:
        return sum(self.dropped.values())


@dataclass
class QualityReport:
    """Result of one ``ingest`` call."""

    batch_id: str
    lake: str
    landing: str
    started_at: str
    finished_at: str = ""
    seconds: float = 0.0
    tables: dict[str, TableQuality] = field(default_factory=dict)
    unknown_files: list[str] = field(default_factory=list)
    report_uri: str | None = None
    #: where the time went: phase -> {"wall_s", "cpu_s"} (CPU of the whole process, all threads)
    phases: dict[str, dict[str, float]] = field(default_factory=dict)
    #: where the tasks ran: "threads" (this process) or the scheduler address of a Dask cluster
    ran_on: str = "threads"

    def table(self, name: str) -> TableQuality:
        return self.tables.setdefault(name, TableQuality())

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time a phase of the ingest (wall and process CPU seconds): on a shared machine
        the CPU seconds say what the code costs, the wall seconds what the neighbours allowed."""
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.phases[name] = {
                "wall_s": round(time.perf_counter() - wall, 3),
                "cpu_s": round(time.process_time() - cpu, 3),
            }

    @property
    def rows_written(self) -> int:
        return sum(t.rows_written for t in self.tables.values())

    @property
    def rows_read(self) -> int:
        return sum(t.rows_read for t in self.tables.values())

    def touched_partitions(self) -> dict[str, list[dict[str, str]]]:
        """Per table, the partitions that got new rows (for catalog and rollup refresh)."""
        return {name: t.touched_partitions for name, t in self.tables.items() if t.rows_written}

    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        for name, t in self.tables.items():
            body["tables"][name]["rows_dropped"] = t.rows_dropped
        body["rows_read"] = self.rows_read
        body["rows_written"] = self.rows_written
        return body

    def to_text(self) -> str:
        lines = [f"ingest {self.batch_id}: {self.landing} -> {self.lake} ({self.seconds:.1f} s)"]
        lines.append(f"{'table':<10} {'files':>5} {'skipped':>7} {'read':>12} {'written':>12} {'dropped':>9}  version")
        for name, t in self.tables.items():
            lines.append(
                f"{name:<10} {len(t.files):>5} {len(t.skipped_files):>7} {t.rows_read:>12,} {t.rows_written:>12,}"
                f" {t.rows_dropped:>9,}  {t.version if t.version is not None else '-'}"
            )
            for reason, n in t.dropped.items():
                lines.append(f"{'':<10}   dropped {n:,} {reason} ({DROP_REASONS.get(reason, reason)})")
        if self.unknown_files:
            lines.append(
                f"ignored {len(self.unknown_files)} file(s) that match no table: {', '.join(self.unknown_files[:5])}"
            )
        if self.report_uri:
            lines.append(f"report: {self.report_uri}")
        return "\n".join(lines)

    def save(self, lake: Lake) -> str:
        """Store the report as JSON under ``<lake>/_reports/`` and remember where."""
        stamp = self.started_at.replace(":", "").replace("-", "").split(".")[0]
        uri = lake.uri("_reports", f"ingest-{stamp}-{self.batch_id[:8]}.json")
        self.report_uri = uri
        path = lake.fs_path(uri)
        if not lake.is_s3:
            lake.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        lake.fs.pipe(path, json.dumps(self.to_dict(), indent=2).encode())
        return uri
