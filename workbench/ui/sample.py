"""A small reference lake for notebooks and demos, built once and reused.

Notebooks must run top to bottom on a fresh machine in seconds, so they share one small lake
(``WORKBENCH_NOTEBOOK_ROWS`` raw sales rows, default 20,000) in a temporary folder, or in
``WORKBENCH_NOTEBOOK_LAKE`` when set. Generation and ingest are skipped when the lake already
holds ``sales``: the second notebook starts at once.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

DEFAULT_ROWS = 20_000


def notebook_rows() -> int:
    return int(os.environ.get("WORKBENCH_NOTEBOOK_ROWS") or DEFAULT_ROWS)


def notebook_lake(rows: int | None = None) -> str:
    """Where the notebooks' lake lives (``WORKBENCH_NOTEBOOK_LAKE`` or a temp folder per size)."""
    rows = rows or notebook_rows()
    found = os.environ.get("WORKBENCH_NOTEBOOK_LAKE")
    if found:
        return found
    return str(Path(tempfile.gettempdir()) / f"workbench-notebooks-{rows}" / "lake")


def sample_lake(rows: int | None = None, lake: str | None = None, seed: int = 42) -> str:
    """Generate and ingest the reference dataset into ``lake`` unless it is already there."""
    from workbench.lake.generate import generate
    from workbench.lake.ingest import ingest
    from workbench.lake.storage import Lake

    rows = rows or notebook_rows()
    lake = lake or notebook_lake(rows)
    target = Lake(lake)
    if target.exists("sales"):
        return lake
    landing = str(Path(lake).parent / "landing") if "://" not in lake else lake.rstrip("/") + "-landing"
    generate(rows, landing, seed=seed, fmt="csv", chunk_rows=max(rows // 2, 1000))
    ingest(landing, target)
    return lake
