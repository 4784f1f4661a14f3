"""Write Parquet data files and make them visible with one Delta commit.

Why not ``write_deltalake``: workers must write their own files (flat memory, a few files
per partition) and the driver must commit a whole batch at once. Files written before the
commit are invisible to every reader (readers go through the Delta log), so a killed
ingest exposes nothing; ``vacuum`` later removes such orphans.

The commit also records which landing files it consumed (commit metadata key
``workbench.ingest``: file name, size, mtime, plus the batch's landing location), so
"already ingested" is decided from the same atomic log entry that made the data visible:
there is no side file that could disagree with the data.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from workbench.errors import ServiceUnavailable
from workbench.lake.storage import Lake

INGEST_METADATA_KEY = "workbench.ingest"
APP_ID = "workbench-ingest"


def write_data_file(lake: Lake, table: str, data: pa.Table, partition: dict[str, str], batch_id: str, part: int) -> Any:
    """Write one Parquet file under the table (hive-style partition folders) and return its AddAction.

    Partition columns are not stored in the file (Delta and hive readers take them from the path).
    """
    from deltalake.writer import AddAction, DeltaJSONEncoder, get_file_stats_from_metadata

    folder = "/".join(f"{k}={v}" for k, v in partition.items())
    rel = f"{folder}/" if folder else ""
    rel += f"part-{batch_id[:12]}-{part:05d}-{uuid.uuid4().hex[:8]}.parquet"
    body = data.drop_columns([c for c in partition if c in data.column_names])
    buf = io.BytesIO()
    pq.write_table(body, buf, compression="zstd", row_group_size=256 * 1024)
    raw = buf.getvalue()
    path = lake.fs_path(lake.uri(table, rel))
    try:
        if not lake.is_s3:
            lake.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        lake.fs.pipe(path, raw)
    except Exception as e:
        raise ServiceUnavailable(f"cannot write {path}: {e}", "check the lake location and credentials") from e
    stats = get_file_stats_from_metadata(pq.read_metadata(io.BytesIO(raw)), -1, None)
    return AddAction(
        rel,
        len(raw),
        dict(partition),
        int(time.time() * 1000),
        True,
        json.dumps(stats, cls=DeltaJSONEncoder),
    )


def ensure_table(lake: Lake, table: str, schema: pa.Schema, partition_by: list[str]) -> Any:
    """Open a Delta table, creating it empty (version 0) when it does not exist yet."""
    from deltalake import DeltaTable

    uri = lake.table_uri(table)
    if not lake.exists(table):
        DeltaTable.create(
            uri, schema=schema, mode="ignore", partition_by=partition_by or None, storage_options=lake.storage_options
        )
    return DeltaTable(uri, storage_options=lake.storage_options)


def commit(
    lake: Lake,
    table: str,
    schema: pa.Schema,
    partition_by: list[str],
    add_actions: list[Any],
    ingest_record: dict[str, Any],
) -> int:
    """Append ``add_actions`` to ``table`` in one commit that also records the ingest; returns the version."""
    from deltalake import CommitProperties, Transaction

    dt = ensure_table(lake, table, schema, partition_by)
    batch_no = len(ingested_records(dt)) + 1
    props = CommitProperties(
        custom_metadata={INGEST_METADATA_KEY: json.dumps(ingest_record)},
        app_transactions=[Transaction(APP_ID, batch_no, int(time.time() * 1000))],
    )
    try:
        dt._table.create_write_transaction(add_actions, "append", partition_by, schema, None, props, None)
    except Exception as e:
        raise ServiceUnavailable(
            f"Delta commit to {table!r} failed: {e}", "nothing was committed; re-run the ingest"
        ) from e
    dt.update_incremental()
    return int(dt.version())


def ingested_records(dt: Any) -> list[dict[str, Any]]:
    """The ingest records of every commit of a table, oldest first."""
    records = []
    for commit_info in reversed(dt.history()):
        raw = commit_info.get(INGEST_METADATA_KEY)
        if raw:
            records.append(json.loads(raw))
    return records


def ingested_fingerprints(lake: Lake, table: str) -> set[str]:
    """Fingerprints (name|size|mtime) of the landing files already committed to ``table``."""
    if not lake.exists(table):
        return set()
    dt = lake.table(table)
    return {fp for record in ingested_records(dt) for fp in record.get("files", [])}


def partitions_of(actions: Iterable[Any]) -> list[dict[str, str]]:
    """Distinct partition values of a set of AddActions, sorted."""
    seen = {tuple((k, str(v)) for k, v in a.partition_values.items()) for a in actions}
    return [dict(p) for p in sorted(seen)]
