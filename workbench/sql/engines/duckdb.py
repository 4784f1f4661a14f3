"""DuckDB in process: the default engine and the reference for correctness.

Each lake table becomes a temporary view over ``read_parquet([files], hive_partitioning)``
of the pruned Delta file list (6x faster than through pyarrow datasets, DESIGN.md), with
hive partition columns typed from the Delta schema (the values live only in the paths).

Defence in depth, measured on DuckDB 1.2.2: ``enable_external_access=false`` also blocks
the views' own reads, so views cannot be created first and access switched off after.
What works is ``allowed_directories=[<lake root>/]`` + ``enable_external_access=false`` +
``lock_configuration=true`` on a local lake: the views read lake files, while any other
path (``/etc/passwd``, COPY elsewhere, ATTACH, INSTALL) fails with a permission error even
if the guard were bypassed; writes inside the lake folder stay possible, so the guard
remains the layer that refuses COPY. On an ``s3://`` lake the fsspec filesystem is
registered (httpfs cannot be downloaded offline) and ``allowed_directories`` is the
``s3://bucket/prefix/`` of the lake, locked the same way.

Reading an ``s3://`` lake through that fsspec filesystem made ``tests/test_sql_s3.py`` look
hung: a faulthandler dump showed DuckDB's scan threads waiting in s3fs ``_fetch_range`` (one
Python/event-loop round trip per small range read); ``COUNT(*)`` over the one-file
``stores`` took 19 s and a 60-file group-by over 90 s against moto on loopback. So on S3
each view reads an Arrow dataset over pyarrow's native ``S3FileSystem`` (C++ client, same
endpoint and keys) registered with the connection: the file list still comes from the Delta
log, hive partition columns are typed the same way, and the connection keeps no file access
of its own.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

import pandas as pd
from sqlglot import exp

from workbench.config import Settings
from workbench.errors import QueryFailed, QueryTimeout
from workbench.lake.registry import allowed_directories
from workbench.lake.storage import Lake
from workbench.sql.engines.base import PURE_PREPARE, Engine, Limits, with_row_limit
from workbench.sql.scan import TableScan
from workbench.sql.suggest import column_hint


class DuckDBEngine(Engine):
    name = "duckdb"
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {
            "window_functions",
            "ranking",
            "date_trunc",
            "group_by_expression",
            "correlated_subqueries",
            "in_process",
            PURE_PREPARE,
        }
    )

    def __init__(self, lake: Lake, settings: Settings) -> None:
        import duckdb

        self.lake = lake
        self.settings = settings
        config: dict[str, Any] = {"memory_limit": settings.duckdb_memory_limit}
        if settings.duckdb_threads:
            config["threads"] = settings.duckdb_threads
        self.con = duckdb.connect(config=config)
        if lake.is_s3:
            self.con.register_filesystem(lake.fs)
        # the lake + folders registered in place
        self.con.execute("SET allowed_directories = ?", [allowed_directories(lake)])
        self.con.execute("SET enable_external_access = false")
        self.con.execute("SET lock_configuration = true")
        self._views: dict[str, tuple[str, ...]] = {}
        self._lock = threading.Lock()
        self._pafs: Any = None
        self._rendered: dict[int, tuple[exp.Expression, int, str]] = {}

    # --- views -----------------------------------------------------------------------------
    def _bind(self, scans: dict[str, TableScan]) -> None:
        for name, scan in scans.items():
            key = tuple(scan.files) or ("<empty>", *scan.schema_files)
            if self._views.get(name) == key:
                continue
            if self.lake.is_s3:
                self.con.register(f"_arrow_{name}", arrow_dataset(scan, self._arrow_fs()))
                select = exp.select("*").from_(f"_arrow_{name}")
                if not scan.files:
                    select = select.where(exp.false())
                self.con.execute(_create_view(name, select))
            else:
                self.con.execute(view_sql(name, scan))
            self._views[name] = key

    def _arrow_fs(self) -> Any:
        if self._pafs is None:
            self._pafs = arrow_s3_filesystem(self.settings)
        return self._pafs

    # --- running ---------------------------------------------------------------------------
    def execute(self, tree: exp.Expression, scans: dict[str, TableScan], limits: Limits) -> pd.DataFrame:
        import duckdb

        with self._lock:
            sql = self._render(tree, limits.row_limit)
            timer = threading.Timer(limits.timeout_s, self.con.interrupt)
            try:
                self._bind(scans)
                timer.start()
                return self.con.execute(sql).df()
            except duckdb.InterruptException as e:
                raise QueryTimeout(
                    f"query ran longer than {limits.timeout_s:g} s and was cancelled",
                    "filter on year/month/region to scan fewer partitions, or raise WORKBENCH_TIMEOUT_S",
                ) from e
            except duckdb.Error as e:
                raise QueryFailed(f"DuckDB could not run the query: {_first_line(e)}", self._hint(e, scans)) from e
            finally:
                timer.cancel()

    def _render(self, tree: exp.Expression, row_limit: int) -> str:
        """DuckDB SQL for ``tree`` capped at ``row_limit``, remembered for the router's memoised trees.

        Keyed by identity (the entry holds the tree, so the id cannot be reused while cached);
        the router never mutates a tree after planning it.
        """
        hit = self._rendered.get(id(tree))
        if hit is not None and hit[0] is tree and hit[1] == row_limit:
            return hit[2]
        sql = with_row_limit(tree, row_limit).sql(dialect="duckdb")
        if len(self._rendered) >= 256:
            self._rendered.pop(next(iter(self._rendered)))
        self._rendered[id(tree)] = (tree, row_limit, sql)
        return sql

    def explain(self, tree: exp.Expression, scans: dict[str, TableScan]) -> str:
        import duckdb

        with self._lock:
            try:
                self._bind(scans)
                rows = self.con.execute("EXPLAIN " + tree.sql(dialect="duckdb")).fetchall()
            except duckdb.Error as e:
                raise QueryFailed(f"DuckDB could not plan the query: {_first_line(e)}", self._hint(e, scans)) from e
        return "\n".join(str(r[-1]) for r in rows)

    def _hint(self, e: Exception, scans: dict[str, TableScan]) -> str:
        """What to do about a failed query: the nearest real column when one was unknown."""
        columns: dict[str, list[str]] = {}
        for name in scans:
            try:
                columns[name] = [r[0] for r in self.con.execute(f'DESCRIBE "{name}"').fetchall()]
            except Exception:  # the view itself is what failed: no columns to offer
                continue
        return column_hint(str(e), columns) or _hint(e)

    def close(self) -> None:
        self.con.close()


def view_sql(name: str, scan: TableScan) -> str:
    """``CREATE OR REPLACE TEMP VIEW name AS SELECT * FROM read_parquet([...])`` (built by sqlglot)."""
    files = scan.files or scan.schema_files
    args: list[exp.Expression] = [exp.Array(expressions=[exp.Literal.string(f) for f in files])]
    if scan.partition_types:
        args.append(exp.PropertyEQ(this=exp.to_identifier("hive_partitioning"), expression=exp.true()))
        types = [
            exp.PropertyEQ(this=exp.Literal.string(c), expression=exp.Literal.string(t))
            for c, t in scan.partition_types.items()
        ]
        args.append(exp.PropertyEQ(this=exp.to_identifier("hive_types"), expression=exp.Struct(expressions=types)))
    select = exp.select("*").from_(exp.func("read_parquet", *args))
    if not scan.files:
        select = select.where(exp.false())
    return _create_view(name, select)


def _create_view(name: str, select: exp.Select) -> str:
    create = exp.Create(
        this=exp.to_table(name),
        kind="VIEW",
        replace=True,
        expression=select,
        properties=exp.Properties(expressions=[exp.TemporaryProperty()]),
    )
    return create.sql(dialect="duckdb")


_ARROW_TYPES = {
    "INTEGER": "int32",
    "BIGINT": "int64",
    "SMALLINT": "int16",
    "TINYINT": "int8",
    "DOUBLE": "float64",
    "FLOAT": "float32",
    "VARCHAR": "string",
    "BOOLEAN": "bool",
    "DATE": "date32",
}


def arrow_s3_filesystem(settings: Settings) -> Any:
    """pyarrow's native S3 filesystem for the configured endpoint and keys."""
    from pyarrow import fs as pafs

    s3 = settings.s3
    kwargs: dict[str, Any] = {"region": s3.region}
    if s3.endpoint_url:
        scheme, _, host = s3.endpoint_url.partition("://")
        kwargs.update(endpoint_override=host or scheme, scheme=scheme if host else "https")
    if s3.access_key_id is not None:
        kwargs["access_key"] = s3.access_key_id.get_secret_value()
    if s3.secret_access_key is not None:
        kwargs["secret_key"] = s3.secret_access_key.get_secret_value()
    return pafs.S3FileSystem(**kwargs)


def arrow_dataset(scan: TableScan, filesystem: Any) -> Any:
    """An Arrow dataset over the scan's files with typed hive partition columns."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    files = [f.removeprefix("s3://") for f in (scan.files or scan.schema_files)]
    partitioning = None
    if scan.partition_types:
        fields = [pa.field(c, getattr(pa, _ARROW_TYPES.get(t, "string"))()) for c, t in scan.partition_types.items()]
        partitioning = ds.partitioning(pa.schema(fields), flavor="hive")
    root = files[0].split("/")[0] if files else None
    return ds.dataset(
        files, filesystem=filesystem, format="parquet", partitioning=partitioning, partition_base_dir=root
    )


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _hint(e: Exception) -> str:
    text = str(e)
    if "not found" in text.lower() or "does not have a column" in text.lower():
        return "check the names: `workbench tables` lists the tables, `workbench columns TABLE` their columns"
    return "check the SQL against the lake schema; the guard accepted it but DuckDB did not"
