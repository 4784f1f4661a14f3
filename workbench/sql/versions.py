"""The current version of a Delta table from one directory listing of its ``_delta_log``.

Why not ``DeltaTable(...).version()``: opening a table replays its log (thousands of add
actions for a large ``sales``), which alone would exceed the cache-hit budget (10 ms). The
router needs only the number, for cache keys and rollup freshness, and the highest
``<version>.json`` commit file is that number (checkpoints never remove the latest commit).
"""

from __future__ import annotations

import os
import re

from workbench.errors import ServiceUnavailable
from workbench.lake.storage import Lake

_COMMIT = re.compile(r"(\d{20})\.json$")


def delta_version(lake: Lake, name: str) -> int:
    """Latest committed version of table ``name``; -1 when the table does not exist."""
    path = lake.fs_path(lake.uri(name, "_delta_log"))
    try:
        # a local log is listed with os.listdir: fsspec's ls stats every entry (a cache hit's budget)
        entries = lake.fs.ls(path, detail=False, refresh=True) if lake.is_s3 else os.listdir(path)
    except FileNotFoundError:
        return -1
    except Exception as e:  # network / credentials
        raise ServiceUnavailable(f"cannot read the Delta log of {name!r}: {e}", "check the lake location") from e
    versions = [int(m.group(1)) for e in entries if (m := _COMMIT.search(str(e)))]
    return max(versions) if versions else -1


def delta_versions(lake: Lake, names: list[str] | set[str]) -> dict[str, int]:
    return {n: delta_version(lake, n) for n in sorted(names)}
