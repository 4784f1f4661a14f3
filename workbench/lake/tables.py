"""What is in the lake: per table rows, partitions, files, size and Delta version.

Everything comes from the Delta log's add actions (row counts are in the per-file stats), so
listing a 100GB lake reads a few kilobytes of log and never a data file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import pyarrow.compute as pc

from workbench.lake.delta import add_actions
from workbench.lake.storage import Lake


@dataclass
class TableStats:
    name: str
    version: int
    rows: int
    files: int
    partitions: int
    size_bytes: int
    partition_by: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def table_stats(lake: Lake, name: str) -> TableStats:
    dt = lake.table(name)
    actions = add_actions(dt)
    partition_by = list(dt.metadata().partition_columns)
    rows = int(pc.sum(actions["num_records"]).as_py() or 0) if actions.num_rows else 0
    size = int(pc.sum(actions["size_bytes"]).as_py() or 0) if actions.num_rows else 0
    if partition_by and actions.num_rows:
        cols = [actions.column(f"partition.{c}").to_pylist() for c in partition_by]
        partitions = len(set(zip(*cols, strict=True)))
    else:
        partitions = 1 if actions.num_rows else 0
    return TableStats(
        name=name,
        version=int(dt.version()),
        rows=rows,
        files=actions.num_rows,
        partitions=partitions,
        size_bytes=size,
        partition_by=partition_by,
    )


def lake_tables(lake: Lake) -> list[TableStats]:
    """Stats of every Delta table at the lake root and under ``rollups/``."""
    return [table_stats(lake, name) for name in lake.tables() + lake.tables("rollups")]
