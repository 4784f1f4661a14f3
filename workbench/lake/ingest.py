"""Ingest landing files into the lake's Delta tables: clean, dedupe, derive, tokenise, commit.

How (DESIGN.md "Ingest measured here"): Dask orchestrates, Arrow does the work.

1. *Parse and clean* every new landing file with pyarrow (``workbench.lake.clean``), one Dask
   task per file. Sales rows are hash-partitioned on ``transaction_id`` into ``B`` buckets
   and spilled to a local staging folder, so memory is one file plus one bucket, flat in
   the input size. A malformed file raises :class:`DataError` here, before anything is
   committed (see ``clean`` for what counts as dirt versus malformed).
2. *Dedupe* per bucket (one task each): keep the first occurrence of a transaction id
   (files in name order, rows in file order), and drop ids already in the lake (their
   ids are bucketed the same way from the current Delta version).
3. *Write* each bucket's rows as one Parquet file per lake partition (year/month/region):
   ``B`` files per partition, and ``B`` is 1 up to ~4M input rows.
4. *Commit* once per table through the Delta log, recording the landing files (path, size,
   mtime) in the same commit. Re-running skips recorded files (idempotent); a kill before a
   commit leaves only invisible files, and the re-run redoes that table (atomic).

Dirt versus malformed (details in ``workbench.lake.clean``): dirt is cleaned and counted per
reason (duplicates, revenue <= 0, empty/unparseable/out-of-vocabulary values, padded or
mixed-case strings); a malformed *file* (empty, unreadable, ragged, duplicated header,
missing column, wrong column type, > 5% unparseable values in a column) raises DataError
naming the file and column, and nothing of the batch is committed.

The returned :class:`QualityReport` lists, per table, the partitions that got rows: the hook
for catalog statistics and rollup refresh.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather

from workbench.errors import DataError, WorkbenchError
from workbench.lake import schema as s
from workbench.lake.clean import clean, read_landing
from workbench.lake.delta import commit, ingested_fingerprints, partitions_of, write_data_file
from workbench.lake.hooks import after_ingest
from workbench.lake.quality import QualityReport
from workbench.lake.storage import Lake, filesystem_for

#: input rows per dedupe bucket (one bucket is held in memory at a time per worker)
BUCKET_ROWS = 4_000_000
#: lake ids per bucket when scanning the existing table
BUCKET_EXISTING_IDS = 20_000_000
CSV_BYTES_PER_ROW = 110
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
    if n_buckets == 1:
        return np.zeros(len(ids), dtype=np.int64)
    import pandas as pd

    values = np.asarray(ids.to_numpy(zero_copy_only=False), dtype=object)
    return (pd.util.hash_array(values) % np.uint64(n_buckets)).astype(np.int64)


def _spill(table: pa.Table, buckets: np.ndarray, n_buckets: int, folder: Path, name: str) -> None:
    for b in range(n_buckets):
        part = table.filter(pa.array(buckets == b)) if n_buckets > 1 else table
        if part.num_rows:
            d = folder / f"bucket={b:05d}"
            d.mkdir(parents=True, exist_ok=True)
            # Arrow IPC (lz4): staging is written and read once, Parquet encoding would be wasted work
            feather.write_feather(part, str(d / f"{name}.arrow"), compression="lz4")


def _clean_sales_file(uri: str, order: int, n_buckets: int, staging: Path, key: bytes) -> tuple[int, dict[str, int]]:
    fs = filesystem_for(uri)
    raw = read_landing(uri, fs, "sales")
    rows = raw.num_rows
    table, drops = clean(uri, raw, "sales", key)
    del raw
    table = table.append_column("_order", pa.array(np.arange(table.num_rows, dtype=np.int64) + (order << 32)))
    _spill(table, _bucket_of(table["transaction_id"], n_buckets), n_buckets, staging / "new", f"{order:06d}")
    return rows, drops


def _spill_existing(lake: Lake, n_buckets: int, staging: Path) -> None:
    """Bucket the ids already in the lake's sales table (one column, streamed in batches)."""
    if not lake.exists("sales"):
        return
    dataset = lake.table("sales").to_pyarrow_dataset()
    for i, batch in enumerate(dataset.to_batches(columns=["transaction_id"], batch_size=1 << 20)):
        t = pa.Table.from_batches([batch])
        _spill(t, _bucket_of(t["transaction_id"], n_buckets), n_buckets, staging / "existing", f"{i:06d}")


def _dedupe_and_write(lake: Lake, bucket: int, staging: Path, batch_id: str) -> tuple[list[Any], dict[str, int], int]:
    """Dedupe one bucket (first occurrence wins, lake ids excluded) and write its partition files."""
    folder = staging / "new" / f"bucket={bucket:05d}"
    if not folder.exists():
        return [], {}, 0
    pieces = sorted(folder.glob("*.arrow"))
    table = pa.concat_tables([feather.read_table(str(p)) for p in pieces]).combine_chunks()
    n = table.num_rows
    table = _drop_repeats(table, "transaction_id", "_order")
    drops = {"duplicate": n - table.num_rows}
    existing_dir = staging / "existing" / f"bucket={bucket:05d}"
    if existing_dir.exists():
        existing = pa.concat_tables([feather.read_table(str(p)) for p in sorted(existing_dir.glob("*.arrow"))])
        before = table.num_rows
        table = table.filter(pc.invert(pc.is_in(table["transaction_id"], value_set=existing["transaction_id"])))
        drops["already_in_lake"] = before - table.num_rows
    table = table.drop_columns(["_order"])
    return _write_partitions(lake, "sales", table, batch_id, bucket), drops, table.num_rows


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


def _partition_codes(table: pa.Table, cols: list[str]) -> tuple[np.ndarray, list[pa.Array]]:
    """One int64 code per row identifying its partition (combined dictionary indices)."""
    codes = np.zeros(table.num_rows, dtype=np.int64)
    dictionaries = []
    for c in cols:
        enc = pc.dictionary_encode(table[c].combine_chunks())
        dictionaries.append(enc.dictionary)
        codes = codes * (len(enc.dictionary) + 1) + np.asarray(enc.indices.to_numpy(zero_copy_only=False), np.int64)
    return codes, dictionaries


def _write_partitions(lake: Lake, name: str, table: pa.Table, batch_id: str, part: int) -> list[Any]:
    """Write one file per partition of ``table``; rows keep their order inside a partition."""
    cols = s.PARTITIONS[name]
    if table.num_rows == 0:
        return []
    if not cols:
        return [write_data_file(lake, name, table, {}, batch_id, part)]
    codes, _ = _partition_codes(table, cols)
    order = np.argsort(codes, kind="stable")
    table = table.take(pa.array(order))
    codes = codes[order]
    change = np.flatnonzero(codes[1:] != codes[:-1]) + 1
    bounds = [0, *change.tolist(), table.num_rows]
    firsts = table.take(pa.array(bounds[:-1])).select(cols).to_pylist()
    jobs = [
        ({c: str(first[c]) for c in cols}, table.slice(lo, hi - lo))
        for first, (lo, hi) in zip(firsts, itertools.pairwise(bounds), strict=True)
    ]
    # object stores answer each PUT in tens of milliseconds: overlap the uploads
    with ThreadPoolExecutor(max_workers=WRITE_THREADS if lake.is_s3 else 2) as pool:
        return list(pool.map(lambda job: write_data_file(lake, name, job[1], job[0], batch_id, part), jobs))


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

    ``before_commit(table)`` is called just before each table's commit (tests use it to kill
    an ingest at its most fragile point; integrations can use it to observe progress).
    """
    import dask
    from tqdm import tqdm

    from workbench.daskenv import prepare_dask

    prepare_dask()
    lake = lake if isinstance(lake, Lake) else Lake(lake)
    settings = lake.settings
    workers = workers or max(1, settings.n_workers)
    key = settings.pii_key_bytes()
    landing = str(landing).rstrip("/")
    t0 = time.perf_counter()
    batch_id = uuid.uuid4().hex
    report = QualityReport(
        batch_id=batch_id,
        lake=lake.url,
        landing=landing,
        started_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )

    by_table: dict[str, list[dict[str, Any]]] = {t: [] for t in s.TABLES}
    for f in list_landing(landing):
        table = s.table_for_file(f["uri"])
        if table is None:
            report.unknown_files.append(f["uri"])
        else:
            by_table[table].append(f)
    for name, files in by_table.items():
        done = ingested_fingerprints(lake, name)
        tq = report.table(name)
        tq.skipped_files = [f["uri"] for f in files if f["fingerprint"] in done]
        by_table[name] = [f for f in files if f["fingerprint"] not in done]
        tq.files = [f["uri"] for f in by_table[name]]

    staging = Path(tempfile.mkdtemp(prefix="ingest-", dir=settings.home_path))
    try:
        # --- dimensions (small: in process) ----------------------------------------------
        pending: dict[str, tuple[list[Any], list[dict[str, Any]]]] = {}
        for name in ("products", "stores", "customers"):
            actions, _ = _ingest_dimension(lake, name, by_table[name], key, report, batch_id)
            pending[name] = (actions, by_table[name])

        # --- sales: parse+clean+bucket per file, then dedupe+write per bucket -----------
        sales_files = by_table["sales"]
        sales_actions: list[Any] = []
        if sales_files:
            tq = report.table("sales")
            est_rows = sum(f["size"] for f in sales_files) / CSV_BYTES_PER_ROW
            existing_rows = _lake_rows(lake, "sales")
            n_buckets = max(1, math.ceil(est_rows / BUCKET_ROWS), math.ceil(existing_rows / BUCKET_EXISTING_IDS))
            tasks = [
                dask.delayed(_clean_sales_file)(f["uri"], i, n_buckets, staging, key) for i, f in enumerate(sales_files)
            ]
            with tqdm(total=len(tasks), desc="ingest: clean", unit="file", disable=not progress) as bar:
                for i in range(0, len(tasks), workers):
                    for rows, drops in dask.compute(*tasks[i : i + workers], scheduler="threads", num_workers=workers):
                        tq.rows_read += rows
                        tq.drop(drops)
                    bar.update(len(tasks[i : i + workers]))
            _spill_existing(lake, n_buckets, staging)
            btasks = [dask.delayed(_dedupe_and_write)(lake, b, staging, batch_id) for b in range(n_buckets)]
            with tqdm(total=n_buckets, desc="ingest: dedupe+write", unit="bucket", disable=not progress) as bar:
                for i in range(0, n_buckets, workers):
                    for actions, drops, _ in dask.compute(
                        *btasks[i : i + workers], scheduler="threads", num_workers=workers
                    ):
                        sales_actions.extend(actions)
                        tq.drop(drops)
                    bar.update(len(btasks[i : i + workers]))
        pending["sales"] = (sales_actions, sales_files)

        # --- commit: one Delta commit per table, recording its landing files -------------
        for name in ("products", "stores", "customers", "sales"):
            actions, files = pending[name]
            if not files:
                continue
            tq = report.table(name)
            tq.rows_written = sum(_num_records(a) for a in actions)
            tq.data_files_written = len(actions)
            tq.touched_partitions = partitions_of(actions)
            if before_commit is not None:
                before_commit(name)
            record = {
                "batch_id": batch_id,
                "landing": landing,
                "files": [f["fingerprint"] for f in files],
                "rows": tq.rows_written,
            }
            tq.version = commit(lake, name, s.TABLES[name], s.PARTITIONS[name], actions, record)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    report.seconds = round(time.perf_counter() - t0, 3)
    report.finished_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    if save_report:
        report.save(lake)
    after_ingest(lake, report, settings)  # catalog sync, rollup refresh, cache invalidation
    return report


def _num_records(action: Any) -> int:
    import json

    return int(json.loads(action.stats)["numRecords"])


def _lake_rows(lake: Lake, name: str) -> int:
    if not lake.exists(name):
        return 0
    actions = lake.table(name).get_add_actions(flatten=True)
    return int(pc.sum(actions["num_records"]).as_py() or 0)
