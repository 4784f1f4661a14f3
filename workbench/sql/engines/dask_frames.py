"""File groups: how a table's pruned Delta files become cluster tasks.

Measured at 50k rows (180 files of ~25 KB, 2-core machine): one task per file made a
one-table group-by take 20-90 s, all of it scheduling. So consecutive files are grouped
into tasks of bounded size (:data:`TARGET_PARTITION_BYTES`, at most
:data:`MAX_FILES_PER_PARTITION` files), and a scan large enough to be worth splitting gets
at least one task per worker thread so every worker reads.
"""

from __future__ import annotations

import math

#: Parquet bytes per task by default (on-disk, compressed; ~3-5x in memory); settings.dask_task_mb
TARGET_PARTITION_BYTES = 256 * 2**20
#: bound on files per task so a task of many tiny files still starts early
MAX_FILES_PER_PARTITION = 256


def group_files(
    files: list[str], sizes: list[int], min_partitions: int = 1, target: int = TARGET_PARTITION_BYTES
) -> list[list[str]]:
    """Consecutive files grouped into partitions of about ``target`` bytes (``settings.dask_task_mb``).

    ``min_partitions`` (e.g. the cluster's thread count) keeps every worker busy when the
    scan is large enough to be worth splitting (more than a few MB).
    """
    if not files:
        return []
    total = sum(sizes)
    n = max(1, math.ceil(total / target), math.ceil(len(files) / MAX_FILES_PER_PARTITION))
    if total > 4 * 2**20:
        n = max(n, min_partitions)
        # whole rounds: 5 tasks on 2 threads run as 3 + 2, the slowest thread setting the pace
        n = math.ceil(n / min_partitions) * min_partitions
    n = min(n, len(files))
    per = total / n if total else 0
    groups: list[list[str]] = [[]]
    acc = 0
    for f, size in zip(files, sizes, strict=True):
        full = len(groups[-1]) >= MAX_FILES_PER_PARTITION or (per and acc >= per * len(groups))
        if groups[-1] and full and len(groups) < n:
            groups.append([])
        groups[-1].append(f)
        acc += size
    return groups
