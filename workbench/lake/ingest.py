"""Ingest landing files into the lake's Delta tables: clean, dedupe, derive, tokenise, commit.

How (DESIGN.md "Ingest measured here"): Dask orchestrates, Arrow does the work, and every
task holds a bounded amount of data whatever the input size (measured in
``benchmarks/results/ingest.md``).

1. *Stage* (one Dask task per landing file): stream the file in blocks of ~64 MB
   (``clean.iter_landing``), parse and clean each block with pyarrow (low-cardinality
   columns stay dictionary-encoded, so they are parsed once per distinct value), and spill
   it to a local staging folder twice, as Arrow IPC: all columns grouped by *month*, and
   just ``(transaction_id, order, month)`` hash-partitioned into ``B`` *buckets* (``B``
   proportional to the input rows, so a bucket's size is constant). A malformed file raises
   :class:`DataError` here, before anything is committed (see ``clean`` for what counts as
   dirt versus malformed).
2. *Dedupe* (one task per bucket, ids only): keep the first occurrence of a transaction id
   (files in name order, rows in file order) and drop ids already in the lake (their ids
   are bucketed the same way from the current Delta version). The output is the small set
   of losing row orders, per month.
3. *Write* (one task per month): stream the month's staged blocks, drop the losers, and
   append the rows to one Parquet file per lake partition (year/month/region), row group
   by row group: one file per partition per ingest, memory bounded by a row group.
4. *Commit* once per table through the Delta log, recording the landing files (path, size,
   mtime) in the same commit. Re-running skips recorded files (idempotent); a kill before a
   commit leaves only invisible files, and the re-run redoes that table (atomic).

Dirt versus malformed (details in ``workbench.lake.clean``): dirt is cleaned and counted per
reason (duplicates, revenue <= 0, empty/unparseable/out-of-vocabulary values, padded or
mixed-case strings); a malformed *file* (empty, unreadable, ragged, duplicated header,
missing column, wrong column type, > 5% unparseable values in a column) raises DataError
naming the file and column, and nothing of the batch is committed.

Where the tasks run: on this process's threads, or, when a cluster is configured
(``WORKBENCH_SCHEDULER`` / ``WORKBENCH_GATEWAY_URL``) and every worker can see the staging
folder, on that cluster (see :func:`workbench.cluster.client_for_paths`; the report's
``ran_on`` says which; the rollup refresh after it follows).
The PII key then travels to the workers with the tasks, over the cluster's own (TLS) comms.

The returned :class:`QualityReport` lists, per table, the partitions that got rows: the hook
for catalog statistics and rollup refresh. Its ``phases`` say where the time went.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
import math
import os
import shutil
import socket
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather
import pyarrow.parquet as pq

from workbench.errors import DataError, WorkbenchError
from workbench.lake import schema as s
from workbench.lake.clean import MalformedTally, TypedParseFailed, clean, csv_ranges, iter_landing, read_landing
from workbench.lake.delta import (
    ROW_GROUP_ROWS,
    PartitionFileWriter,
    add_actions,
    commit,
    ingested_fingerprints,
    partitions_of,
    write_data_file,
)
from workbench.lake.hooks import after_ingest
from workbench.lake.quality import QualityReport
from workbench.lake.storage import Lake, filesystem_for

log = logging.getLogger(__name__)

#: ids per dedupe bucket (a bucket's ids are held in memory by one task). Small enough that a
#: 1M-row ingest already has several buckets: peak memory is then the same at 1M and 10M rows
BUCKET_ROWS = 500_000
#: rows a write task buffers over all regions of its month before writing a row group
WRITE_BUFFER_ROWS = ROW_GROUP_ROWS
CSV_BYTES_PER_ROW = 110
PARQUET_BYTES_PER_ROW = 30
#: concurrent partition-file uploads per bucket on object storage
WRITE_THREADS = 8
LANDING_SUFFIXES = (".csv", ".parquet", ".pq")


def list_landing(landing: str) -> list[dict[str, Any]]:
    """Landing files (sorted by name) with their fingerprint ``name|size|mtime``."""
    fs = filesystem_for(landing)
    base = landing[len("s3://") :] if landing.startswith("s3://") else landing
    try:
        if fs.isfile(base):
            infos = [fs.info(base)]
        elif fs.isdir(base):
            infos = [i for i in fs.ls(base, detail=True) if i.get("type") == "file"]
        else:
            raise DataError(f"landing location {landing} does not exist", "run `workbench generate` or check the path")
    except WorkbenchError:
        raise
    except Exception as e:
        raise DataError(f"cannot list landing location {landing}: {e}", "check the path and S3 settings") from e
    files = []
    for info in sorted(infos, key=lambda i: i["name"]):
        name = info["name"]
        if not name.lower().endswith(LANDING_SUFFIXES) or name.rsplit("/", 1)[-1].startswith((".", "_")):
            continue
        uri = f"s3://{name}" if landing.startswith("s3://") else name
        mtime = info.get("mtime") or info.get("LastModified") or info.get("ETag") or ""
        if isinstance(mtime, dt.datetime):
            mtime = mtime.timestamp()
        # name (not full path) + size + mtime: a landing folder copied or moved elsewhere is still recognised
        base = name.rsplit("/", 1)[-1]
        files.append(
            {"uri": uri, "size": int(info.get("size", 0)), "fingerprint": f"{base}|{info.get('size')}|{mtime}"}
        )
    return files


def _bucket_of(ids: pa.ChunkedArray | pa.Array, n_buckets: int) -> np.ndarray:
    """Bucket per id: a 64-bit mix of the id's first and last 8 bytes and its length.

    Vectorised over the Arrow buffers (~10x faster than hashing Python strings). Only the
    bucket depends on it: equal ids always share a bucket, and dedupe compares the strings.
    """
    n = len(ids)
    if n_buckets == 1 or n == 0:
        return np.zeros(n, dtype=np.int64)
    arr = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
    raw = pc.cast(pc.fill_null(pc.cast(arr, pa.string()), ""), pa.binary())
    pad = b"\x00" * 8
    words = []
    for padded, lo, hi in (
        (pc.binary_join_element_wise(raw, pad, b""), 0, 8),
        (pc.binary_join_element_wise(pad, raw, b""), -8, None),
    ):
        sliced = pc.binary_slice(padded, lo, hi)
        first = int(np.frombuffer(sliced.buffers()[1], np.int32, count=1, offset=4 * sliced.offset)[0])
        words.append(np.frombuffer(sliced.buffers()[2], np.uint64, count=n, offset=first))
    lengths = np.asarray(pc.binary_length(raw).to_numpy(zero_copy_only=False), dtype=np.uint64)
    with np.errstate(over="ignore"):
        h = (words[0] * np.uint64(0x9E3779B97F4A7C15)) ^ (words[1] * np.uint64(0xC2B2AE3D27D4EB4F))
        h ^= lengths * np.uint64(0x165667B19E3779F9)
        h ^= h >> np.uint64(31)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(29)
    return (h % np.uint64(n_buckets)).astype(np.int64)


def _spill_by(
    table: pa.Table, keys: np.ndarray, folder: Path, label: str, name: str, within: np.ndarray | None = None
) -> list[int]:
    """Write ``table``'s rows grouped by ``keys`` to ``folder/<label>=<key>/<name>``.

    Row order is kept, or inside a group sorted by ``within`` (small non-negative ints) then kept.
    """
    if table.num_rows == 0:
        return []
    sort_keys = keys if within is None else keys.astype(np.int64) * (int(within.max()) + 1) + within
    order = np.argsort(sort_keys, kind="stable")
    keys = keys[order]
    table = table.take(pa.array(order))
    bounds = [0, *(np.flatnonzero(keys[1:] != keys[:-1]) + 1).tolist(), len(keys)]
    written = []
    for lo, hi in itertools.pairwise(bounds):
        key = int(keys[lo])
        d = folder / f"{label}={key}"
        d.mkdir(parents=True, exist_ok=True)
        # uncompressed Arrow IPC: staging is written and read once, locally; lz4 cost 5x the CPU
        # (0.33 vs 0.07 CPU-s per 1M sales rows) to save ~40% of a temporary file's bytes
        feather.write_feather(table.slice(lo, hi - lo), str(d / name), compression="uncompressed")
        written.append(key)
    return written


def _month_keys(table: pa.Table) -> np.ndarray:
    year = np.asarray(table["year"].to_numpy(), dtype=np.int32)
    return year * 100 + np.asarray(table["month"].to_numpy(), dtype=np.int32)


#: bytes of CSV per stage task (a file larger than 1.5x this is split at newlines)
RANGE_BYTES = 64 << 20


#: what one stage task reports: (uri, rows read, drops, months, tally, (lowest id, highest id) or None)
StageResult = tuple[str, int, dict[str, int], set[int], MalformedTally, tuple[str, str] | None]


def _stage_sales_range(
    uri: str, file_no: int, part: int, byte_range: tuple[int, int], n_buckets: int, staging: Path, key: bytes
) -> StageResult:
    """Stage one landing file (or byte range of one): cleaned rows by month, (id, order, month) by bucket."""
    prefix = f"{file_no:06d}-{part:04d}"
    try:
        return _stage_blocks(uri, file_no, part, byte_range, n_buckets, staging, key, typed_floats=True)
    except TypedParseFailed:  # a dirty float somewhere: forget this range's pieces, re-read as text
        for piece in [*staging.glob(f"rows/*/{prefix}-*.arrow"), *staging.glob(f"ids/*/{prefix}-*.arrow")]:
            piece.unlink()
        return _stage_blocks(uri, file_no, part, byte_range, n_buckets, staging, key, typed_floats=False)


def _stage_blocks(
    uri: str,
    file_no: int,
    part: int,
    byte_range: tuple[int, int],
    n_buckets: int,
    staging: Path,
    key: bytes,
    typed_floats: bool,
) -> StageResult:
    fs = filesystem_for(uri)
    tally = MalformedTally()
    rows, offset = 0, 0
    drops: Counter[str] = Counter()
    months: set[int] = set()
    id_range: tuple[str, str] | None = None
    # row order = (file, part, row): input order, so "first occurrence" is well defined
    base = (file_no << 40) + (part << 28)
    blocks = iter_landing(uri, fs, "sales", typed_floats=typed_floats, byte_range=byte_range)
    for block_no, raw in enumerate(blocks):
        rows += raw.num_rows
        table, dropped = clean(uri, raw, "sales", key, tally=tally, keep_dictionary=True)
        del raw
        drops.update(dropped)
        order = np.arange(offset, offset + table.num_rows, dtype=np.int64) + base
        offset += table.num_rows
        month = _month_keys(table)
        name = f"{file_no:06d}-{part:04d}-{block_no:05d}.arrow"
        table = table.append_column("_order", pa.array(order))
        # rows of a month are staged grouped by region: the write step then only slices them
        region = table["region"].combine_chunks()
        region_codes = np.asarray(pc.fill_null(region.indices, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
        months.update(_spill_by(table, month, staging / "rows", "month", name, within=region_codes))
        ids = pa.table({"transaction_id": table["transaction_id"], "_order": order, "_month": month})
        _spill_by(ids, _bucket_of(ids["transaction_id"], n_buckets), staging / "ids", "bucket", name)
        id_range = _widen(id_range, ids["transaction_id"])
    return uri, rows, dict(drops), months, tally, id_range


def _widen(bounds: tuple[str, str] | None, ids: pa.ChunkedArray) -> tuple[str, str] | None:
    """The smallest range holding ``bounds`` and every id in ``ids`` (None: no id seen yet)."""
    if pa.types.is_dictionary(ids.type):
        ids = ids.cast(ids.type.value_type)
    low_high = pc.min_max(ids).as_py()
    if low_high["min"] is None:
        return bounds
    return _union(bounds, (str(low_high["min"]), str(low_high["max"])))


def _union(a: tuple[str, str] | None, b: tuple[str, str] | None) -> tuple[str, str] | None:
    """The smallest id range holding both (None: no range)."""
    if a is None or b is None:
        return a or b
    return min(a[0], b[0]), max(a[1], b[1])


def _overlapping_files(lake: Lake, id_range: tuple[str, str] | None) -> list[str]:
    """The sales files that may hold an id of the batch: their id min/max overlaps the batch's range.

    Why: ids arrive in increasing order batch after batch, so a batch of new ids overlaps no earlier
    file and the dedupe reads none of them (it used to read every id in the lake every batch, which
    made the n-th batch cost O(lake)). A file whose statistics lack the bounds is always read:
    a missing statistic can only cost time, never a duplicate.
    """
    if id_range is None or not lake.exists("sales"):
        return []
    table = lake.table("sales")  # opened once: its statistics and its file list from one log replay
    actions = add_actions(table).to_pydict()
    lows = actions.get("min.transaction_id") or [None] * len(actions["path"])
    highs = actions.get("max.transaction_id") or [None] * len(actions["path"])
    disjoint = {
        path.rsplit("/", 1)[-1]
        for path, low, high in zip(actions["path"], lows, highs, strict=True)
        if low is not None and high is not None and (str(high) < id_range[0] or str(low) > id_range[1])
    }
    return [uri for uri in lake.uris(table) if uri.rsplit("/", 1)[-1] not in disjoint]


def _spill_existing(lake: Lake, files: list[str], n_buckets: int, staging: Path, part: int) -> None:
    """Bucket the ids already in the lake's sales table (one column, a few files at a time)."""
    fs = lake.fs if lake.is_s3 else None
    pieces: list[pa.Table] = []
    size = 0
    for i, uri in enumerate(files):
        pieces.append(pq.read_table(lake.fs_path(uri), columns=["transaction_id"], filesystem=fs))
        size += pieces[-1].num_rows
        if size >= BUCKET_ROWS or i == len(files) - 1:
            t = pa.concat_tables(pieces)
            _spill_by(
                t,
                _bucket_of(t["transaction_id"], n_buckets),
                staging / "existing",
                "bucket",
                f"{part:04d}-{i:06d}.arrow",
            )
            pieces, size = [], 0


def _read_staged(folder: Path) -> pa.Table | None:
    pieces = sorted(folder.glob("*.arrow")) if folder.exists() else []
    if not pieces:
        return None
    return pa.concat_tables([feather.read_table(str(p), memory_map=False) for p in pieces])


def _dedupe_bucket(bucket: int, staging: Path) -> dict[str, int]:
    """Find the losing rows of one bucket: repeats of an id (first wins) and ids already in the lake.

    Writes their orders per month (``losers/month=M``) for the write step; returns drop counts.
    """
    ids = _read_staged(staging / "ids" / f"bucket={bucket}")
    if ids is None:
        return {}
    tid = ids["transaction_id"].combine_chunks()
    n = len(tid)
    # pieces are read in (file, block) order, rows in file order: position order is input order
    codes = np.asarray(pc.dictionary_encode(tid).indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    repeated = np.bincount(codes)[codes] > 1
    loser = np.zeros(n, dtype=bool)
    if repeated.any():
        pos = np.flatnonzero(repeated)
        _, first = np.unique(codes[pos], return_index=True)
        loser[pos] = True
        loser[pos[first]] = False
    drops = {"duplicate": int(loser.sum())}
    folder = staging / "existing" / f"bucket={bucket}"
    if folder.exists():  # piece by piece: memory is this bucket's new ids plus one piece
        in_lake = np.zeros(n, dtype=bool)
        for piece in sorted(folder.glob("*.arrow")):
            existing = feather.read_table(str(piece), columns=["transaction_id"], memory_map=False)
            in_lake |= _mask(pc.is_in(tid, value_set=existing["transaction_id"].combine_chunks()))
        in_lake &= ~loser
        drops["already_in_lake"] = int(in_lake.sum())
        loser |= in_lake
    if loser.any():
        orders = np.asarray(ids["_order"].to_numpy())[loser]
        months = np.asarray(ids["_month"].to_numpy())[loser]
        for month in np.unique(months):
            d = staging / "losers" / f"month={int(month)}"
            d.mkdir(parents=True, exist_ok=True)
            np.save(d / f"bucket-{bucket:05d}.npy", orders[months == month])
    return drops


def _mask(arr: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def _write_month(lake: Lake, month: int, staging: Path, batch_id: str) -> list[Any]:
    """Write one month's surviving rows: one Parquet file per region, streamed row group by row group."""
    loser_dir = staging / "losers" / f"month={month}"
    losers = (
        np.sort(np.concatenate([np.load(p) for p in sorted(loser_dir.glob("*.npy"))])) if loser_dir.exists() else None
    )
    year, mon = divmod(month, 100)
    writers: dict[str, PartitionFileWriter] = {}
    buffers: dict[str, list[pa.Table]] = {}
    buffered: dict[str, int] = {}

    def flush(region: str) -> None:
        if region not in writers:
            partition = {"year": str(year), "month": str(mon), "region": region}
            writers[region] = PartitionFileWriter(lake, "sales", partition, batch_id, month)
        writers[region].write(pa.concat_tables(buffers.pop(region)))
        buffered[region] = 0

    for piece in sorted((staging / "rows" / f"month={month}").glob("*.arrow")):
        t = feather.read_table(str(piece), memory_map=False)
        if losers is not None:
            order = np.asarray(t["_order"].to_numpy())
            pos = np.minimum(np.searchsorted(losers, order), len(losers) - 1)
            t = t.filter(pa.array(losers[pos] != order))
        t = t.drop_columns(["_order"])
        if t.num_rows == 0:
            continue
        region = t["region"].combine_chunks()
        codes = np.asarray(region.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
        names = region.dictionary.to_pylist()
        if np.any(codes[1:] < codes[:-1]):  # staged grouped by region; sort if a piece was not
            by_region = np.argsort(codes, kind="stable")
            codes = codes[by_region]
            t = t.take(pa.array(by_region))
        bounds = [0, *(np.flatnonzero(codes[1:] != codes[:-1]) + 1).tolist(), len(codes)]
        for lo, hi in itertools.pairwise(bounds):
            name = str(names[codes[lo]])
            buffers.setdefault(name, []).append(t.slice(lo, hi - lo))
            buffered[name] = buffered.get(name, 0) + hi - lo
        # bounded memory whatever the month's size: write the fullest region's buffer as a row group
        while sum(buffered.get(r, 0) for r in buffers) >= WRITE_BUFFER_ROWS:
            flush(max(buffers, key=lambda r: buffered.get(r, 0)))
    for name in list(buffers):
        flush(name)
    return [writers[r].close() for r in sorted(writers)]


def _drop_repeats(table: pa.Table, key: str, order: str) -> pa.Table:
    """Keep the row with the smallest ``order`` per ``key``.

    Duplicates are rare (~0.5%), so only the repeated keys go through the (small) membership
    tests; row order of the survivors is unchanged.
    """
    counts = table.group_by(key, use_threads=False).aggregate([(order, "min"), (order, "count")])
    repeated = counts.filter(pc.greater(counts[f"{order}_count"], 1))
    if repeated.num_rows == 0:
        return table
    in_repeated = pc.is_in(table[key], value_set=repeated[key])
    is_first = pc.is_in(table[order], value_set=repeated[f"{order}_min"])
    return table.filter(pc.invert(pc.and_(in_repeated, pc.invert(is_first))))


def _write_partitions(lake: Lake, name: str, table: pa.Table, batch_id: str, part: int) -> list[Any]:
    """Write an unpartitioned (dimension) table's rows as one file."""
    if s.PARTITIONS[name]:  # pragma: no cover - sales goes through _write_month
        raise ValueError(f"{name} is partitioned")
    if table.num_rows == 0:
        return []
    return [write_data_file(lake, name, table, {}, batch_id, part)]


def _ingest_dimension(
    lake: Lake, name: str, files: list[dict[str, Any]], key: bytes, report: QualityReport, batch_id: str
) -> tuple[list[Any], pa.Table | None]:
    tq = report.table(name)
    parts = []
    for f in files:
        raw = read_landing(f["uri"], filesystem_for(f["uri"]), name)
        tq.rows_read += raw.num_rows
        cleaned, drops = clean(f["uri"], raw, name, key)
        tq.drop(drops)
        parts.append(cleaned)
    if not parts:
        return [], None
    table = pa.concat_tables(parts).combine_chunks()
    k = s.KEYS[name]
    table = table.append_column("_i", pa.array(np.arange(table.num_rows)))
    n = table.num_rows
    table = _drop_repeats(table, k, "_i").drop_columns(["_i"])
    drops = {"duplicate": n - table.num_rows}
    if lake.exists(name):
        existing = lake.table(name).to_pyarrow_table(columns=[k])[k]
        before = table.num_rows
        table = table.filter(pc.invert(pc.is_in(table[k], value_set=existing)))
        drops["already_in_lake"] = before - table.num_rows
    tq.drop(drops)
    return _write_partitions(lake, name, table, batch_id, 0), table


@dataclass
class _Batch:
    """What the passes of one ingest share (lake, report, key, where tasks run, staging)."""

    lake: Lake
    landing: str
    report: QualityReport
    key: bytes
    workers: int
    progress: bool
    staging: Path = Path()
    client: Any = None

    def run(self, tasks: list[Any], desc: str) -> list[Any]:
        return _run(tasks, self.workers, desc, self.progress, self.client)


def ingest(
    landing: str | Path,
    lake: Lake | str | None = None,
    *,
    workers: int | None = None,
    progress: bool = False,
    save_report: bool = True,
    before_commit: Callable[[str], None] | None = None,
) -> QualityReport:
    """Ingest new landing files from ``landing`` (folder or s3:// prefix) into ``lake``.

    A pipeline of passes (plan, dimensions, sales stage/dedupe/write, commit) around one
    staging folder that never outlives the call, whether it succeeds or fails.
    ``before_commit(table)`` is called just before each table's commit (tests use it to kill
    an ingest at its most fragile point; integrations can use it to observe progress).
    """
    lake = lake if isinstance(lake, Lake) else Lake(lake)
    landing = str(landing).rstrip("/")
    t0 = time.perf_counter()
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    report = QualityReport(batch_id=uuid.uuid4().hex, lake=lake.url, landing=landing, started_at=started)
    settings = lake.settings
    batch = _Batch(lake, landing, report, settings.pii_key_bytes(), workers or max(1, settings.n_workers), progress)
    by_table = _plan(batch)
    with staging_folder(settings.home_path, lake, report.batch_id) as batch.staging, _returning_memory_pool():
        batch.client = _client_for(batch)
        pending = _ingest_dimensions(batch, by_table)
        pending["sales"] = (_ingest_sales(batch, by_table["sales"]), by_table["sales"])
        _commit_all(batch, pending, before_commit)
    report.seconds = round(time.perf_counter() - t0, 3)
    report.finished_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    if save_report:
        report.save(lake)
    with report.phase("after_ingest"):
        after_ingest(lake, report, settings)  # catalog sync, rollup refresh, cache invalidation
    return report


def _plan(batch: _Batch) -> dict[str, list[dict[str, Any]]]:
    """Landing files per table, minus the ones an earlier ingest recorded (idempotent re-runs).

    A landing location where no file belongs to a table is an error, not an empty success:
    the user most likely pointed at the wrong folder or named the files differently.
    """
    by_table: dict[str, list[dict[str, Any]]] = {t: [] for t in s.TABLES}
    for f in list_landing(batch.landing):
        table = s.table_for_file(f["uri"])
        if table is None:
            batch.report.unknown_files.append(f["uri"])
        else:
            by_table[table].append(f)
    if not any(by_table.values()):
        raise nothing_to_ingest(batch.landing, batch.report.unknown_files)
    for name, files in by_table.items():
        done = ingested_fingerprints(batch.lake, name)
        tq = batch.report.table(name)
        tq.skipped_files = [f["uri"] for f in files if f["fingerprint"] in done]
        by_table[name] = [f for f in files if f["fingerprint"] not in done]
        tq.files = [f["uri"] for f in by_table[name]]
    return by_table


def nothing_to_ingest(landing: str, unknown: list[str]) -> DataError:
    """The error for a landing location with no file of any table: what was found, what is expected."""
    patterns = "; ".join(f"{t}: {t}*.csv or {t}*.parquet" for t in s.TABLES)
    if unknown:
        names = ", ".join(u.rsplit("/", 1)[-1] for u in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        found = f"{len(unknown)} file(s) that match no table ({names})"
    else:
        found = "no .csv or .parquet file"
    return DataError(
        f"nothing to ingest in {landing}: it holds {found}",
        f"landing files are named after their table ({patterns}); "
        f"`workbench generate --out {landing}` writes a complete set",
        landing=landing,
        expected={t: [f"{t}*.csv", f"{t}*.parquet"] for t in s.TABLES},
    )


def _client_for(batch: _Batch) -> Any:
    """A configured cluster whose workers see the staging folder and the lake, else None (threads)."""
    from workbench.cluster import client_for_paths

    client = client_for_paths(batch.lake.settings, [str(batch.staging), *batch.lake.local_paths()], "ingest")
    if client is not None:
        batch.report.ran_on = str(client.scheduler_info().get("address") or client.scheduler)
    return client


def _ingest_dimensions(
    batch: _Batch, by_table: dict[str, list[dict[str, Any]]]
) -> dict[str, tuple[list[Any], list[dict[str, Any]]]]:
    """Products, stores, customers: small, cleaned in process, written as one file each."""
    pending: dict[str, tuple[list[Any], list[dict[str, Any]]]] = {}
    with batch.report.phase("dimensions"):
        for name in ("products", "stores", "customers"):
            files = by_table[name]
            actions, _ = _ingest_dimension(batch.lake, name, files, batch.key, batch.report, batch.report.batch_id)
            pending[name] = (actions, files)
    return pending


def _ingest_sales(batch: _Batch, files: list[dict[str, Any]]) -> list[Any]:
    """Sales: stage per file (range), dedupe per id bucket, write per month; returns the Delta actions."""
    import dask

    if not files:
        return []
    tq = batch.report.table("sales")
    n_buckets = _bucket_count(files)
    with batch.report.phase("stage"):
        months, id_range = _stage_sales(batch, files, n_buckets)
        existing = _overlapping_files(batch.lake, id_range)
        groups = [existing[i :: batch.workers] for i in range(batch.workers)]
        spills = [
            dask.delayed(_spill_existing)(batch.lake, g, n_buckets, batch.staging, i) for i, g in enumerate(groups) if g
        ]
        batch.run(spills, "ingest: ids already in the lake")
    with batch.report.phase("dedupe"):
        btasks = [dask.delayed(_dedupe_bucket)(b, batch.staging) for b in range(n_buckets)]
        for drops in batch.run(btasks, "ingest: dedupe"):
            tq.drop(drops)
    with batch.report.phase("write"):
        args = (batch.lake, batch.staging, batch.report.batch_id)
        wtasks = [dask.delayed(_write_month)(args[0], m, *args[1:]) for m in sorted(months)]
        return [action for actions in batch.run(wtasks, "ingest: write") for action in actions]


def _bucket_count(files: list[dict[str, Any]]) -> int:
    """Dedupe buckets: proportional to the new rows (estimated from bytes).

    The lake's own ids do not count: only the files overlapping the batch's id range are read,
    and a bucket streams them piece by piece (memory = its new ids plus one piece).
    """
    est_rows = sum(
        f["size"] / (PARQUET_BYTES_PER_ROW if f["uri"].lower().endswith((".parquet", ".pq")) else CSV_BYTES_PER_ROW)
        for f in files
    )
    return max(1, math.ceil(est_rows / BUCKET_ROWS))


def _stage_sales(batch: _Batch, files: list[dict[str, Any]], n_buckets: int) -> tuple[set[int], tuple[str, str] | None]:
    """Run the stage tasks; count rows and drops; apply the per-file 5% rule.

    Returns the months seen and the batch's id range (None when no row survived cleaning).
    """
    tq = batch.report.table("sales")
    months: set[int] = set()
    id_range: tuple[str, str] | None = None
    tallies: dict[str, MalformedTally] = {}
    for result in batch.run(_stage_tasks(batch, files, n_buckets), "ingest: clean"):
        if result is not None:
            uri, rows, drops, file_months, tally, ids = result
            tq.rows_read += rows
            tq.drop(drops)
            months |= file_months
            id_range = _union(id_range, ids)
            tallies.setdefault(uri, MalformedTally()).merge(tally)
    for uri, tally in tallies.items():  # the 5% rule is per file, over all its ranges
        tally.check(uri)
    return months, id_range


def _stage_tasks(batch: _Batch, files: list[dict[str, Any]], n_buckets: int) -> list[Any]:
    """One task per landing file byte range."""
    import dask

    staging = batch.staging
    tasks = []
    for i, f in enumerate(files):
        ranges = csv_ranges(f["uri"], filesystem_for(f["uri"]), f["size"], RANGE_BYTES)
        stage = dask.delayed(_stage_sales_range)
        tasks += [stage(f["uri"], i, part, r, n_buckets, staging, batch.key) for part, r in enumerate(ranges)]
    return tasks


def _commit_all(
    batch: _Batch,
    pending: dict[str, tuple[list[Any], list[dict[str, Any]]]],
    before_commit: Callable[[str], None] | None,
) -> None:
    """One Delta commit per table, recording its landing files in the same commit (atomic, idempotent)."""
    with batch.report.phase("commit"):
        for name in ("products", "stores", "customers", "sales"):
            actions, files = pending[name]
            if not files:
                continue
            tq = batch.report.table(name)
            tq.rows_written = sum(_num_records(a) for a in actions)
            tq.data_files_written = len(actions)
            tq.touched_partitions = partitions_of(actions)
            if before_commit is not None:
                before_commit(name)
            record = {
                "batch_id": batch.report.batch_id,
                "landing": batch.landing,
                "files": [f["fingerprint"] for f in files],
                "rows": tq.rows_written,
            }
            tq.version = commit(batch.lake, name, s.TABLES[name], s.PARTITIONS[name], actions, record)


#: staging folders live in the workbench home as ``ingest-*``; ``.owner`` says which process owns one
STAGING_PREFIX = "ingest-"
_OWNER = ".owner"
#: which lake and batch a staging folder's ingest writes (JSON), for the sweep of a killed one
_BATCH = ".batch"
#: an owner-less staging folder older than this is a leftover (its owner writes ``.owner`` at once)
_ORPHAN_AGE_S = 60.0


@contextmanager
def staging_folder(home: Path, lake: Lake | None = None, batch_id: str | None = None) -> Iterator[Path]:
    """A private staging folder under ``home``, removed however the ingest ends.

    A killed ingest (SIGKILL, power loss) runs no ``finally``: its folder is swept by the
    next ingest, which recognises it by an owner process that no longer exists. The folder
    also names the lake and batch it was writing (``.batch``), so the sweep removes that batch's
    Parquet files no Delta version references (written, never committed: invisible to readers,
    but up to a whole batch of disk).
    """
    home.mkdir(parents=True, exist_ok=True)
    sweep_staging(home)
    folder = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=home))
    try:
        (folder / _OWNER).write_text(f"{socket.gethostname()} {os.getpid()}\n")
        if lake is not None and batch_id:
            (folder / _BATCH).write_text(json.dumps({"lake": lake.url, "batch_id": batch_id}))
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def sweep_staging(home: Path) -> list[Path]:
    """Remove staging folders whose ingest is gone (dead owner, or no owner and old); return them.

    Before a folder goes, the uncommitted data files of the batch it names are removed from its lake.
    """
    removed = []
    for folder in home.glob(f"{STAGING_PREFIX}*"):
        if folder.is_dir() and not _owner_alive(folder):
            _remove_uncommitted(folder)
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    if removed:
        log.info("removed %d staging folder(s) left by interrupted ingests", len(removed))
    return removed


def _remove_uncommitted(folder: Path) -> list[str]:
    """Delete the data files a dead ingest wrote into its lake that no table version references."""
    try:
        marker = json.loads((folder / _BATCH).read_text())
        lake, prefix = Lake(str(marker["lake"])), f"part-{str(marker['batch_id'])[:12]}-"
    except (OSError, ValueError, KeyError, WorkbenchError):
        return []
    removed: list[str] = []
    for name in s.TABLES:
        if not lake.exists(name):
            continue
        live = {uri.rsplit("/", 1)[-1] for uri in lake.files(name)}
        try:
            found = lake.fs.find(lake.fs_path(lake.table_uri(name)))
        except OSError:
            continue
        stray = [p for p in found if p.rsplit("/", 1)[-1].startswith(prefix) and p.rsplit("/", 1)[-1] not in live]
        for path in stray:
            lake.fs.rm_file(path)
        removed += stray
    if removed:
        log.info("removed %d uncommitted data file(s) of interrupted ingest %s", len(removed), marker["batch_id"])
    return removed


def _owner_alive(folder: Path) -> bool:
    try:
        host, pid = (folder / _OWNER).read_text().split()
    except (OSError, ValueError):
        try:
            return time.time() - folder.stat().st_mtime < _ORPHAN_AGE_S
        except OSError:
            return True
    if host != socket.gethostname():
        return True  # another machine's ingest on a shared home: not ours to judge
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


@contextmanager
def _returning_memory_pool() -> Iterator[None]:
    """Use jemalloc for Arrow buffers while ingesting (unless ``ARROW_DEFAULT_MEMORY_POOL`` is set).

    Why: measured at 10M rows, Arrow's peak allocation was ~0.38 GB with either allocator, but
    with mimalloc (pyarrow's default) the process kept 1.2 GB resident and with jemalloc 0.78 GB:
    freed staging blocks go back to the system instead of growing the heap as tasks rotate.
    """
    if "ARROW_DEFAULT_MEMORY_POOL" in os.environ:
        yield
        return
    try:
        pool = pa.jemalloc_memory_pool()
    except NotImplementedError:  # a pyarrow built without jemalloc
        yield
        return
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pool)
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


def _run(tasks: list[Any], workers: int, desc: str, progress: bool, client: Any = None) -> list[Any]:
    """Compute Dask delayed tasks, in submission order; none is still running when this returns.

    On ``client`` (a configured scheduler or dask-gateway cluster) the scheduler places them;
    otherwise ``workers`` threads of this process run them (at most ``workers`` in memory at
    once). When one fails, the others are cancelled or awaited before the error propagates:
    a sibling still writing after the staging folder was removed would recreate it.
    """
    from tqdm import tqdm

    if not tasks:
        return []
    with tqdm(total=len(tasks), desc=desc, unit="task", disable=not progress) as bar:
        if client is not None:
            return _run_on_cluster(tasks, client, bar)
        return _run_on_threads(tasks, workers, bar)


def _run_on_threads(tasks: list[Any], workers: int, bar: Any) -> list[Any]:
    from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="ingest")
    try:
        futures = [pool.submit(task.compute, scheduler="sync") for task in tasks]
        for future in futures:
            future.add_done_callback(lambda _: bar.update(1))
        wait(futures, return_when=FIRST_EXCEPTION)
        failed = [f for f in futures if f.done() and not f.cancelled() and f.exception() is not None]
        if failed:
            for future in futures:
                future.cancel()  # not started: never starts
            pool.shutdown(wait=True)  # started: finishes before the caller removes the staging folder
            raise failed[0].exception()  # type: ignore[misc]
        return [future.result() for future in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # queued tasks dropped, running ones awaited


def _run_on_cluster(tasks: list[Any], client: Any, bar: Any) -> list[Any]:
    from distributed import as_completed

    futures = client.compute(tasks)
    try:
        for _ in as_completed(futures):
            bar.update(1)
        return list(client.gather(futures))
    except BaseException:
        client.cancel(futures)  # tasks not started never start; the next ingest sweeps any leftovers
        raise


def _num_records(action: Any) -> int:
    return int(json.loads(action.stats)["numRecords"])
