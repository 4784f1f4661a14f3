"""What runs inside a Dask task on a worker: DuckDB over one group of Delta files.

Each task opens its own in-memory DuckDB connection, binds the lake tables it reads exactly as
the DuckDB engine does (``read_parquet`` of the pruned file list with typed hive partition
columns; on S3 an Arrow dataset over pyarrow's C++ S3 client, so workers read object
storage directly), registers the small tables it was given as Arrow tables, and runs one
SQL statement. The same reader and the same SQL engine on both paths is what makes the
cluster's answers identical to DuckDB's, types included.

File access is locked down as in the DuckDB engine: only the folders of the task's own files
are readable (``allowed_directories`` + ``enable_external_access=false`` + a locked
configuration), and the SQL comes from the planner over a guarded query.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from workbench.sql.scan import TableScan


@dataclass(frozen=True)
class FileGroup:
    """Some files of one lake table, as a task reads them (``fs``: pyarrow S3 filesystem or None)."""

    table: str
    version: int
    files: tuple[str, ...]
    partition_types: dict[str, str] = field(default_factory=dict)
    schema_files: tuple[str, ...] = ()
    fs: Any = None
    #: Parquet bytes of the files (from the Delta log), for sizing the work
    nbytes: int = 0

    def scan(self) -> TableScan:
        return TableScan(
            self.table, self.version, list(self.files), 0, dict(self.partition_types), list(self.schema_files)
        )

    @cached_property
    def view(self) -> str:
        """The DuckDB view over the local files (sqlglot, ~0.3 ms): made on the client with the
        remembered plan, it travels with the group instead of being made again in every task."""
        from workbench.sql.engines.duckdb import view_sql

        return view_sql(self.table, self.scan())


def run_sql(
    sql: str,
    groups: list[FileGroup],
    tables: dict[str, Any] | None = None,
    allowed: tuple[str, ...] = (),
    buckets: int = 0,
    bucket_key: str = "_d",
) -> Any:
    """``sql`` over the file groups (one view each) and Arrow ``tables``; an Arrow table.

    ``allowed``: the only folders DuckDB may read (the lake and in-place registrations).
    A table given as a list of Arrow tables is their concatenation (the partials of many tasks).
    ``buckets`` > 0: the result split by ``hash(bucket_key) % buckets`` into that many tables,
    so that one task per bucket sees every row of its key values (a hash shuffle): the distinct
    values of an exact COUNT(DISTINCT), or the join key of two large tables.
    """
    con = _database(allowed).cursor()
    try:
        for name, table in (tables or {}).items():
            con.register(name, concat(table) if isinstance(table, list) else table)
        for group in groups:
            _bind(con, group)
        if not buckets:
            return fetch_arrow(con.sql(sql))
        con.execute(f"CREATE TEMP TABLE _result AS {sql}")
        bucket = f'SELECT * FROM _result WHERE hash("{bucket_key}") % {buckets} = '
        return [fetch_arrow(con.sql(f"{bucket}{i}")) for i in range(buckets)]
    finally:
        con.close()


_databases: dict[tuple[str, ...], Any] = {}
_databases_lock = threading.Lock()


def _database(allowed: tuple[str, ...]) -> Any:
    """This worker process's DuckDB for tasks that may read ``allowed``; each task takes a cursor.

    A new database per task cost ~10 ms (measured); its cursors keep their views and temp tables
    private. One thread per cursor: the cluster's parallelism is its tasks.
    """
    with _databases_lock:
        if allowed not in _databases:
            import duckdb

            from workbench.sql.engines.duckdb import CONNECTION_CONFIG

            con = duckdb.connect(config={**CONNECTION_CONFIG, "threads": 1})
            con.execute("SET allowed_directories = ?", [list(allowed)])
            con.execute("SET enable_external_access = false")
            con.execute("SET lock_configuration = true")
            _databases[allowed] = con
        return _databases[allowed]


def concat(tables: list[Any]) -> Any:
    """One Arrow table from several results of the same query (types unified)."""
    import pyarrow as pa

    return tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="default")


def _bind(con: Any, group: FileGroup) -> None:
    from workbench.sql.engines.duckdb import _create_view, arrow_dataset

    if group.fs is None:
        con.execute(group.view)
        return
    from sqlglot import exp

    con.register(f"_arrow_{group.table}", arrow_dataset(group.scan(), group.fs))
    select = exp.select("*").from_(f"_arrow_{group.table}")
    if not group.files:
        select = select.where(exp.false())
    con.execute(_create_view(group.table, select))


def fetch_arrow(relation: Any) -> Any:
    """A relation's rows as one Arrow table (``to_arrow_table`` since DuckDB 1.4)."""
    return relation.to_arrow_table()


def nbytes(table: Any) -> int:
    """Size of a task's Arrow result (checked on the worker before anything is gathered)."""
    return int(table.nbytes)


def num_rows(table: Any) -> int:
    return int(table.num_rows)


class RunnerError(Exception):
    """A runner's query failed (DuckDB, file access): the query's own error, not the call's."""


class Runner:
    """A DuckDB runner kept on one worker (a Dask actor): a one-round query reaches it directly.

    Why: a task goes client -> scheduler -> worker -> scheduler -> client and is then gathered:
    6.3-7.3 ms p50 for one no-op task per worker on a 2-worker LocalCluster here, against
    1.8-1.9 ms for one call per worker to actors, which go straight to their worker and back
    (``benchmarks/bench_dask.py``, three runs, benchmarks/results/dask-100000000.md). On a 25 ms
    pruned aggregation at 100M rows that was most of the difference to plain DuckDB. The
    scheduler places the runners; it does not see their calls (no task stream, no stealing), so
    only work that is one round with a file group per worker is sent this way
    (``DaskEngine._direct``); everything else stays a task.
    """

    def ping(self) -> bool:
        """Answers: the client can reach this worker directly (``DaskEngine._runners``)."""
        return True

    def run(self, sql: str, groups: list[FileGroup], broadcasts: dict[str, str], allowed: tuple[str, ...]) -> Any:
        """``run_sql`` with the broadcast tables taken from this worker's memory by key.

        A broadcast is replicated to every worker (``DaskEngine._broadcast``); one missing here
        (a worker that joined since) raises KeyError and the client runs the query as tasks.
        """
        tables: dict[str, Any] = {}
        if broadcasts:
            from distributed import get_worker

            data = get_worker().data
            tables = {name: data[key] for name, key in broadcasts.items()}
        try:
            return run_sql(sql, groups, tables, allowed)
        except Exception as e:  # the query's own error travels back as one; a failed call is anything else
            raise RunnerError(str(e)) from None
