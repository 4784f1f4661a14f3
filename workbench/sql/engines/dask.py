"""dask-sql on a Dask cluster: the scale-out engine, guarded against its wrong answers.

Frames are built with ``dd.from_map`` over the pruned Delta file list (a file list passed
to ``read_parquet`` breaks dask-sql), hive partition values are parsed from the paths and
cast to plain types (dask reads them as ``category``, which dask-sql cannot query).
``supports`` refuses every construct measured wrong or unsupported here
(``workbench.sql.rewrites.UNSUPPORTED``) after the rewrites that fix some of them.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pandas as pd
from sqlglot import exp

from workbench.config import Settings
from workbench.errors import QueryFailed, QueryTimeout
from workbench.lake.storage import Lake
from workbench.sql import rewrites
from workbench.sql.engines.base import Engine, Limits, with_row_limit
from workbench.sql.scan import TableScan

_PANDAS_TYPES = {
    "INTEGER": "int64",
    "BIGINT": "int64",
    "SMALLINT": "int64",
    "TINYINT": "int64",
    "DOUBLE": "float64",
    "FLOAT": "float64",
    "VARCHAR": "object",
    "BOOLEAN": "bool",
}


def read_file(uri: str, partition_types: dict[str, str], fs: Any) -> pd.DataFrame:
    """One Parquet file as pandas, with its hive partition values as typed columns."""
    import pyarrow.parquet as pq

    path = uri[len("s3://") :] if uri.startswith("s3://") else uri
    table = pq.read_table(path, filesystem=fs)
    df = table.to_pandas(date_as_object=False)
    for col in df.columns:
        if str(df[col].dtype).startswith("datetime64") and str(df[col].dtype) != "datetime64[ns]":
            df[col] = df[col].astype("datetime64[ns]")
    parts = dict(seg.split("=", 1) for seg in path.split("/") if "=" in seg)
    for col, duck_type in partition_types.items():
        from urllib.parse import unquote

        raw = unquote(parts.get(col, ""))
        df[col] = pd.Series([raw] * len(df), index=df.index, dtype=object).astype(
            _PANDAS_TYPES.get(duck_type, "object")
        )
    return df


class DaskEngine(Engine):
    name = "dask"
    capabilities: ClassVar[frozenset[str]] = frozenset({"scale_out", "aggregate_windows"})

    def __init__(self, lake: Lake, settings: Settings, client: Any = None) -> None:
        from workbench.daskenv import prepare_dask

        prepare_dask(with_sql=True)
        self.lake = lake
        self.settings = settings
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            from workbench.cluster import get_client

            self._client = get_client(self.settings)
        return self._client

    def supports(self, tree: exp.Expression) -> str | None:
        return rewrites.unsupported_reason(rewrites.rewrite_for_dask(tree))

    def prepare(self, tree: exp.Expression) -> exp.Expression:
        return rewrites.rewrite_for_dask(tree)

    def _context(self, scans: dict[str, TableScan]) -> Any:
        import dask.dataframe as dd
        from dask_sql import Context

        ctx = Context()
        fs = self.lake.fs
        for name, scan in scans.items():
            files = scan.files or scan.schema_files
            ddf = dd.from_map(read_file, files, partition_types=scan.partition_types, fs=fs)
            if not scan.files:
                ddf = dd.from_pandas(ddf._meta, npartitions=1)
            ctx.create_table(name, ddf)
        return ctx

    def execute(self, tree: exp.Expression, scans: dict[str, TableScan], limits: Limits) -> pd.DataFrame:
        import concurrent.futures

        sql = with_row_limit(tree, limits.row_limit).sql(dialect="postgres")
        try:
            frame = self._context(scans).sql(sql)
        except Exception as e:  # dask-sql raises plain exceptions from its planner
            raise QueryFailed(
                f"dask-sql could not plan the query: {_first_line(e)}",
                "run it with --engine duckdb; dask-sql supports a subset of SQL",
            ) from e
        future = self.client.compute(frame)
        try:
            out = future.result(timeout=limits.timeout_s)
        except (TimeoutError, concurrent.futures.TimeoutError) as e:
            future.cancel()
            raise QueryTimeout(
                f"query ran longer than {limits.timeout_s:g} s and was cancelled",
                "filter on year/month/region, or raise WORKBENCH_TIMEOUT_S",
            ) from e
        except Exception as e:
            raise QueryFailed(
                f"dask-sql failed while running the query: {_first_line(e)}", "run it with --engine duckdb"
            ) from e
        return out.reset_index(drop=True) if isinstance(out, pd.DataFrame) else pd.DataFrame(out)

    def explain(self, tree: exp.Expression, scans: dict[str, TableScan]) -> str:
        try:
            return str(self._context(scans).explain(tree.sql(dialect="postgres")))
        except Exception as e:
            raise QueryFailed(
                f"dask-sql could not plan the query: {_first_line(e)}", "run it with --engine duckdb"
            ) from e


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
