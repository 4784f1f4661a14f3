"""Cache values: a small JSON header (meta, tables, time) followed by an Arrow IPC stream.

Arrow IPC keeps dtypes (via the pandas metadata Arrow stores) and decodes without parsing, which
is what keeps a cache hit well under the 10 ms target for answer-sized results.
"""

from __future__ import annotations

import datetime as dt
import json
import struct
from collections.abc import Mapping
from typing import Any

import pandas as pd
import pyarrow as pa

MAGIC = b"WBC1"
_HEADER = struct.Struct(">I")


def pack(df: pd.DataFrame, meta: Mapping[str, Any], tables: list[str], created_at: dt.datetime) -> bytes:
    table = pa.Table.from_pandas(df, preserve_index=False)
    sink = pa.BufferOutputStream()
    try:
        options = pa.ipc.IpcWriteOptions(compression="lz4")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        options = pa.ipc.IpcWriteOptions()
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    header = json.dumps(
        {
            "meta": {"columns": list(map(str, df.columns)), **dict(meta)},
            "tables": tables,
            "created_at": created_at.isoformat(),
        },
        default=str,
    ).encode()
    return MAGIC + _HEADER.pack(len(header)) + header + sink.getvalue().to_pybytes()


def unpack(blob: bytes) -> tuple[pd.DataFrame, dict[str, Any], list[str], dt.datetime]:
    if blob[:4] != MAGIC:
        raise ValueError("not a workbench cache value")
    (n,) = _HEADER.unpack_from(blob, 4)
    header = json.loads(blob[8 : 8 + n])
    with pa.ipc.open_stream(pa.py_buffer(blob[8 + n :])) as reader:
        df = reader.read_all().to_pandas()
    return df, header["meta"], header["tables"], dt.datetime.fromisoformat(header["created_at"])
