"""The cluster engine: Dask schedules, DuckDB executes every step.

A guarded, pruned query runs one of two ways (``ClusterPlan``), both built from sqlglot:

* **split** (``split.py``): a grouped or global aggregate over one large fact table and small
  tables. One task per group of the fact table's pruned Delta files runs the partial
  aggregate in DuckDB on a worker, with the small tables read once per Delta version on the
  cluster and shipped to every task (a broadcast join); partials are merged on the workers
  in a tree, combined, and the rest of the query (HAVING, windows, ORDER BY, LIMIT) runs in
  DuckDB on the client. Exact COUNT(DISTINCT x) hash-partitions the partial rows on x; a
  second large table joined on an equality is hash-partitioned with the fact on the key.
  A split that is one round with at most one file group per worker (no shuffle, no buckets)
  skips the scheduler: each group goes straight to a DuckDB runner kept on its worker (a Dask
  actor, ``dask_tasks.Runner``), since for a small query the scheduler's round trips cost
  more than the scan (docs/decisions/0002-one-round-cluster-queries-call-worker-runners.md).
* WITH queries that split on their own run that way first and are materialised (a WITH
  query is evaluated once however often it is read); the rest of the query is gathered.
* **gather**: anything else. Tasks read each table's files on the workers, keep only the
  columns and rows the query can need (``scan_needs.py``), and the whole query then runs in
  DuckDB on the client over those rows. Global operations (DISTINCT, set operations, windows,
  correlated subqueries, ORDER BY with LIMIT) therefore always see all their rows. The rows
  gathered are bounded: before any is moved, their size on the workers is summed, and above
  :data:`GATHER_MAX_BYTES` the query is refused by name.

Either way the lake is read by the same reader as the DuckDB engine and every operator is
DuckDB's, which is why the answers are the same, types included (tests/test_differential.py).
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
import operator
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pandas as pd
from sqlglot import exp

from workbench.config import Settings
from workbench.errors import QueryFailed, QueryTimeout, UnsupportedQuery
from workbench.lake.storage import Lake
from workbench.sql.engines.base import PURE_PREPARE, Engine, Limits, with_row_limit
from workbench.sql.engines.dask_frames import group_files
from workbench.sql.engines.dask_tasks import FileGroup, Runner, RunnerError, concat, fetch_arrow, nbytes, run_sql
from workbench.sql.engines.scan_needs import TableNeed, table_needs
from workbench.sql.engines.split import PARTIALS, AggregateSplit, shuffle_keys, split_aggregate
from workbench.sql.scan import TableScan
from workbench.sql.suggest import column_hint

log = logging.getLogger(__name__)

#: filtered, projected bytes the gather route may bring to the client (Arrow, in memory)
GATHER_MAX_BYTES = 2 * 2**30
#: partial results merged per task of the reduction tree (the client combines at most this many)
MERGE_FAN_IN = 16
#: a table up to this size is read whole and shipped to every task that joins it
BROADCAST_MAX_BYTES = 64 * 2**20
#: seconds the cluster's thread count is trusted before the scheduler is asked again
THREADS_TTL_S = 2.0
#: query plans remembered (``DaskEngine._planned``)
PLAN_MEMO_SIZE = 128
#: seconds to wait for the workers' DuckDB runners to start and answer (else the query runs as tasks)
RUNNER_START_S = 5.0
#: seconds the engine runs everything as tasks after the runners could not be started or reached
RUNNERS_PAUSE_S = 300.0


@dataclass
class ClusterPlan:
    """How one query runs on the cluster (see the module docstring)."""

    route: str  # "split" | "gather"
    tree: exp.Expression
    needs: dict[str, TableNeed]
    split: AggregateSplit | None = None
    why_gather: str = ""
    groups: dict[str, list[FileGroup]] = field(default_factory=dict)
    #: two large tables of a split: each hash-partitioned on its join key column
    shuffle: dict[str, str] = field(default_factory=dict)


class DaskEngine(Engine):
    name = "dask"
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"scale_out", "window_functions", "ranking", "date_trunc", "correlated_subqueries", PURE_PREPARE}
    )

    def __init__(self, lake: Lake, settings: Settings, client: Any = None) -> None:
        self.lake = lake
        self.settings = settings
        self._client = client
        self._lock = threading.RLock()
        self._schemas: dict[tuple[str, int], Any] = {}
        self._broadcasts: dict[str, tuple[tuple[Any, ...], Any]] = {}
        self._fs: Any = None
        self._db: Any = None
        #: (monotonic time, one worker address per thread): asked of the scheduler at most every THREADS_TTL_S
        self._slots_asked: tuple[float, list[str]] = (-math.inf, [])
        #: plans and output names of recent queries, by (SQL, table versions and files, threads)
        self._memo: OrderedDict[tuple[Any, ...], tuple[ClusterPlan, list[str] | None]] = OrderedDict()
        #: (worker addresses, actor futures, runners): one DuckDB runner per worker (``_direct``)
        self._runner_set: tuple[list[str], list[Any], list[Any]] = ([], [], [])
        #: which runner a single-group query goes to next (round robin)
        self._turn = 0
        #: monotonic time until which no runner is tried (they could not be started or reached)
        self._runners_paused_until = -math.inf

    @property
    def client(self) -> Any:
        if self._client is None:
            from workbench.cluster import get_client

            self._client = get_client(self.settings)
        return self._client

    # --- planning -------------------------------------------------------------------------------
    def _threads(self) -> int:
        """Worker threads of the cluster (re-asked after THREADS_TTL_S, so a scaled cluster is seen)."""
        return max(1, len(self._slots()))

    def _slots(self) -> list[str]:
        """One worker address per thread of the cluster, interleaved (a, b, a, b for 2 x 2)."""
        asked, slots = self._slots_asked
        if time.monotonic() - asked > THREADS_TTL_S:
            threads = self.client.nthreads()
            slots = [w for i in range(max(threads.values(), default=0)) for w, n in sorted(threads.items()) if n > i]
            self._slots_asked = (time.monotonic(), slots)
        return slots

    def _workers(self) -> list[str]:
        """The cluster's worker addresses, each once (``_slots`` lists one per thread)."""
        return sorted(set(self._slots()))

    def _spread(self, groups: list[FileGroup]) -> list[list[str] | None]:
        """A preferred worker per task, round robin over the threads.

        Why: left to itself the scheduler put 4 of 5 equal tasks on one of two workers about every
        other run (a 3-table join at 100M rows took 0.95 s instead of 0.55 s). A preference, not a
        pin: ``allow_other_workers`` lets a busy worker's task be stolen.
        """
        slots = self._slots()
        return [[slots[i % len(slots)]] if slots else None for i in range(len(groups))]

    def _task_bytes(self) -> int:
        return int(self.settings.dask_task_mb) * 2**20

    def _planned(self, tree: exp.Expression, scans: dict[str, TableScan]) -> tuple[ClusterPlan, list[str] | None]:
        """``plan`` and ``_output_names`` of a query, remembered for the same SQL over the same files.

        Why: planning (qualify, split, needs) and naming cost ~10 ms of client time per query,
        a third of a pruned aggregate's whole answer at 100M rows; a dashboard asks the same
        queries again and again. The key holds every table's version and pruned files and the
        cluster's thread count, so a new commit, other filters or a rescaled cluster plan anew.
        """
        files = tuple(sorted((n, s.version, tuple(s.files)) for n, s in scans.items()))
        key = (tree.sql(dialect="duckdb"), files, self._threads())
        with self._lock:
            hit = self._memo.get(key)
            if hit is not None:
                self._memo.move_to_end(key)
                return hit
        planned = (self.plan(tree, scans), self._output_names(tree, scans))
        with self._lock:
            self._memo[key] = planned
            while len(self._memo) > PLAN_MEMO_SIZE:
                self._memo.popitem(last=False)
        return planned

    def plan(
        self,
        tree: exp.Expression,
        scans: dict[str, TableScan],
        split: bool = True,
        extra: dict[str, list[str]] | None = None,
    ) -> ClusterPlan:
        """Split when the query is an aggregate over one large table and small ones, else gather.

        ``extra``: columns of in-memory tables the query also reads (materialised WITH queries).
        """
        schema = {name: self.columns(scan) for name, scan in scans.items()}
        needs = {n: need for n, need in table_needs(tree, {**(extra or {}), **schema}).items() if n in schema}
        if not scans:
            return ClusterPlan("gather", tree, needs, why_gather="no lake table")
        cut, shuffle = (
            self._cut(tree, scans, schema) if split else ("its WITH queries ran split on the cluster first", {})
        )
        if isinstance(cut, str):
            groups = {n: self._groups(s) for n, s in scans.items()}
            return ClusterPlan("gather", tree, needs, why_gather=cut, groups=groups)
        groups = {n: self._groups(scans[n]) for n in (shuffle or [cut.fact])}
        return ClusterPlan("split", tree, needs, split=cut, groups=groups, shuffle=shuffle)

    def _cut(
        self, tree: exp.Expression, scans: dict[str, TableScan], schema: dict[str, list[str]]
    ) -> tuple[AggregateSplit | str, dict[str, str]]:
        """The split of ``tree`` over its largest table and the tables to hash-partition, or why not.

        Needs no cluster (footers and the Delta log only), so the automatic engine choice can ask.
        """
        fact = max(sorted(scans), key=lambda n: scans[n].bytes)
        cut = split_aggregate(tree, fact, schema)
        big = [n for n in scans if n != fact and scans[n].bytes > BROADCAST_MAX_BYTES]
        if isinstance(cut, str) or not big:
            return cut, {}
        if len(big) > 1:
            return f"{', '.join(big)} too large to broadcast", {}
        keys = self._shuffle_keys(tree, fact, big[0], scans, schema, cut)
        return (keys, {}) if isinstance(keys, str) else (cut, {fact: keys[0], big[0]: keys[1]})

    def suits(self, tree: exp.Expression, scans: dict[str, TableScan]) -> str | None:
        """A query that cannot split would bring its rows to one process: DuckDB in-process does that better."""
        if not scans:
            return "it reads no lake table"
        try:
            if self._splittable_ctes(tree, scans):
                return None
            cut, _ = self._cut(tree, scans, {name: self.columns(scan) for name, scan in scans.items()})
        except (OSError, ValueError) as e:  # no footer to read: let the in-process engine answer
            return f"its tables' schemas could not be read ({e})"
        if isinstance(cut, str):
            return f"it cannot be split across tasks ({cut}); its rows would be gathered to one process"
        return None

    def _shuffle_keys(
        self,
        tree: exp.Expression,
        fact: str,
        other: str,
        scans: dict[str, TableScan],
        schema: dict[str, list[str]],
        cut: AggregateSplit,
    ) -> tuple[str, str] | str:
        """Join keys to hash both large tables on, or why they cannot be (then the query is gathered).

        The keys must have the same type in both tables: DuckDB's hash of 5 as INTEGER and as
        BIGINT differ, and rows that join must land in the same bucket.
        """
        if cut.bucketed:
            return "COUNT(DISTINCT) with two tables too large to broadcast"
        keys = shuffle_keys(tree, fact, other, schema)
        if isinstance(keys, str):
            return keys
        types = [_field_type(self._empty(scans[t]), k) for t, k in ((fact, keys[0]), (other, keys[1]))]
        if types[0] is None or types[0] != types[1]:
            return f"the join keys {keys[0]} and {keys[1]} have different types"
        return keys

    def columns(self, scan: TableScan) -> list[str]:
        """All columns of a table version (file schema + hive partition columns), from one footer."""
        return list(self._empty(scan).column_names)

    def _arrow_fs(self) -> Any:
        if self._fs is None and self.lake.is_s3:
            from workbench.sql.engines.duckdb import arrow_s3_filesystem

            self._fs = arrow_s3_filesystem(self.settings)
        return self._fs

    def _groups(self, scan: TableScan) -> list[FileGroup]:
        """The table's pruned files in task-sized groups (one empty group keeps the schema)."""
        common = {"partition_types": dict(scan.partition_types), "fs": self._arrow_fs()}
        if not scan.files:
            return [FileGroup(scan.name, scan.version, (), schema_files=tuple(scan.schema_files), **common)]
        threads = self._threads()
        sizes = [scan.bytes // len(scan.files)] * len(scan.files)
        groups = [
            FileGroup(scan.name, scan.version, tuple(g), nbytes=len(g) * sizes[0], **common)
            for g in group_files(scan.files, sizes, threads, self._task_bytes())
        ]
        for group in groups:
            if group.fs is None:
                _ = group.view  # made once here, with the plan, not in every task
        return groups

    # --- running --------------------------------------------------------------------------------
    def execute(self, tree: exp.Expression, scans: dict[str, TableScan], limits: Limits) -> pd.DataFrame:
        try:
            return self._execute(tree, scans, limits)
        except QueryFailed as e:
            if isinstance(e, QueryTimeout):
                raise
            hint = self._column_hint(e, scans)
            if hint is None:
                raise
            raise QueryFailed(e.message, hint) from e

    def _column_hint(self, e: QueryFailed, scans: dict[str, TableScan]) -> str | None:
        """ "did you mean 'region'?" when a task could not find a column (names from the files' footers)."""
        try:
            columns = {name: self.columns(scan) for name, scan in scans.items()}
        except (OSError, ValueError) as footer_error:  # no footer to read: the engine's own hint stays
            log.debug("no columns for a hint: %s", footer_error)
            return None
        return column_hint(str(e), columns)

    def _execute(self, tree: exp.Expression, scans: dict[str, TableScan], limits: Limits) -> pd.DataFrame:
        deadline = time.monotonic() + limits.timeout_s
        ctes = self.cte_plans(tree, scans)
        if not ctes:
            plan, names = self._planned(tree, scans)
            if plan.split is not None:
                return self._run_split(plan, plan.split, scans, limits, deadline, names=names)
            return self._run_gather(tree, plan, limits, deadline)
        done = {}
        for name, (plan, sub) in ctes.items():
            assert plan.split is not None
            done[name] = self._run_split(plan, plan.split, sub, Limits(2**62, limits.timeout_s), deadline, arrow=True)
        rest = _without_ctes(tree, set(ctes))
        remaining = {n: s for n, s in scans.items() if any(t.name.lower() == n for t in rest.find_all(exp.Table))}
        plan = self.plan(rest, remaining, split=False, extra={n: t.column_names for n, t in done.items()})
        return self._run_gather(rest, plan, limits, deadline, done)

    def cte_plans(self, tree: exp.Expression, scans: dict[str, TableScan]) -> dict[str, tuple[ClusterPlan, Any]]:
        """WITH queries that split on their own (aggregates over lake tables only), by name.

        Each runs split on the cluster and is materialised; the rest of the query then runs over
        the materialised results and the gathered lake rows. A WITH query is evaluated once
        however often it is read, so materialising it changes nothing. Recursive WITH, column
        lists and names that shadow a lake table are left in place.
        """
        out: dict[str, tuple[ClusterPlan, Any]] = {}
        for name, cte, sub in _lake_ctes(tree, scans):
            plan = self.plan(cte.this, sub)
            if plan.split is not None:
                out[name] = (plan, sub)
        return out

    def _splittable_ctes(self, tree: exp.Expression, scans: dict[str, TableScan]) -> bool:
        """Whether some WITH query of ``tree`` splits on its own (``cte_plans`` without a cluster)."""
        for _, cte, sub in _lake_ctes(tree, scans):
            cut, _ = self._cut(cte.this, sub, {n: self.columns(s) for n, s in sub.items()})
            if not isinstance(cut, str):
                return True
        return False

    def _run_split(
        self,
        plan: ClusterPlan,
        split: AggregateSplit,
        scans: dict[str, TableScan],
        limits: Limits,
        deadline: float,
        arrow: bool = False,
        names: list[str] | None = None,
    ) -> Any:
        """The split's answer: pandas, or Arrow (``arrow``) to be read by a later step without conversion.

        ``names``: the output column names when already known (``_planned``).
        """
        dims = {n: self._broadcast(s) for n, s in scans.items() if n != split.fact and n not in plan.shuffle}
        sql = split.partial_sql
        allowed = self._allowed()
        groups = plan.groups[split.fact]
        partials = self._direct(sql, groups, dims, allowed, deadline) if self._goes_direct(plan) else None
        if partials is None:
            if plan.shuffle:
                futures = self._tree(self._shuffled(plan, sql, dims, allowed), split.merge_sql)
            elif split.bucketed:
                futures = self._buckets(split, sql, groups, dims, allowed)
            else:
                futures = [
                    self.client.submit(
                        run_sql, sql, [g], dims, allowed, pure=False, workers=w, allow_other_workers=True
                    )
                    for g, w in zip(groups, self._spread(groups), strict=True)
                ]
                futures = self._tree(futures, split.merge_sql)
            partials = concat(self._gather(futures, deadline))
        out = self._on_client({PARTIALS: partials}, split.final_statements(limits.row_limit), deadline, arrow)
        names = names if names is not None else self._output_names(plan.tree, scans)
        if names is not None and len(names) == len(out.columns):
            if arrow:
                return out.rename_columns(names)
            out.columns = names
        return out

    def _direct(
        self, sql: str, groups: list[FileGroup], dims: dict[str, Any], allowed: tuple[str, ...], deadline: float
    ) -> Any:
        """The partial query's results from the workers' runners in one round trip, or None: run tasks.

        Taken for ``_goes_direct`` plans: then the scheduler has nothing to balance and its round
        trips are the largest part of a small query's time (``Runner``). A runner that cannot be reached, is
        gone with its worker, or lacks a broadcast is dropped and the query runs as tasks (the
        log says why); the query's own error (a DuckDB error, a file that cannot be read) is
        raised as the task path raises it.
        """
        try:
            runners = self._runners()
        except Exception as e:  # none could be started or answered: tasks, and no runners for a while
            log.warning(
                "the workers' DuckDB runners are not reachable from here (%s); cluster queries run as tasks "
                "for the next %.0f s (set WORKBENCH_DASK_DIRECT=false to stop trying)",
                _first_line(e),
                RUNNERS_PAUSE_S,
            )
            with self._lock:
                self._runner_set = ([], [], [])
                self._runners_paused_until = time.monotonic() + RUNNERS_PAUSE_S
            return None
        start, self._turn = self._turn, self._turn + 1
        keys = {name: future.key for name, future in dims.items()}
        try:
            calls = [runners[(start + i) % len(runners)].run(sql, [g], keys, allowed) for i, g in enumerate(groups)]
            return concat([call.result(timeout=max(0.0, deadline - time.monotonic())) for call in calls])
        except RunnerError as e:
            raise _task_failed(e) from e
        except (TimeoutError, concurrent.futures.TimeoutError) as e:
            raise _timed_out() from e
        except Exception as e:  # the call, not the query, failed (its worker left): new runners next time
            log.warning("a worker's DuckDB runner could not be called (%s); running the query as tasks", e)
            with self._lock:
                self._runner_set = ([], [], [])
            return None

    def _goes_direct(self, plan: ClusterPlan) -> bool:
        """A split with no shuffle or buckets, one round with at most one file group per worker."""
        split = plan.split
        if not self.settings.dask_direct or split is None or plan.shuffle or split.bucketed:
            return False
        if time.monotonic() < self._runners_paused_until:
            return False
        return len(plan.groups[split.fact]) <= len(self._workers())

    def _runners(self) -> list[Any]:
        """One ``Runner`` actor per worker, placed by the scheduler, started again when one is lost.

        Preferred, not pinned, to its worker: a runner lost with its worker is started again by
        the scheduler elsewhere (a pinned one would wait for a worker that is gone, and so would
        every call to it). A changed set of workers, or a runner whose future is no longer
        finished (its worker died or the cluster restarted), starts a new set.

        A new set is called once before use: actor calls go from this process straight to the
        workers, which a gateway's workers (behind its proxy, on a cluster network) may not
        accept; then this raises within ``RUNNER_START_S`` and the engine stays with tasks.
        """
        workers = self._workers()
        with self._lock:
            current, futures, runners = self._runner_set
            if current != workers or any(f.status != "finished" for f in futures):
                futures = [
                    self.client.submit(Runner, workers=[w], allow_other_workers=True, actor=True, pure=False)
                    for w in workers
                ]
                runners = [f.result(timeout=RUNNER_START_S) for f in futures]
                for call in [r.ping() for r in runners]:
                    call.result(timeout=RUNNER_START_S)
                self._runner_set = (workers, futures, runners)
            return runners

    def _buckets(self, split: AggregateSplit, sql: str, groups: list[FileGroup], dims: Any, allowed: Any) -> list[Any]:
        """Partial tasks split their rows by hash of the distinct value; one task per bucket merges them."""
        n = self._threads()
        parts = [self.client.submit(run_sql, sql, [g], dims, allowed, n, pure=False) for g in groups]
        merge = split.merge_sql
        out = []
        for i in range(n):
            pieces = [self.client.submit(operator.getitem, p, i, pure=False) for p in parts]
            out.append(self.client.submit(run_sql, merge, [], {PARTIALS: pieces}, (), pure=False))
        return out

    def _shuffled(self, plan: ClusterPlan, sql: str, dims: dict[str, Any], allowed: tuple[str, ...]) -> list[Any]:
        """The partial query per hash bucket of the two large tables' join key (a shuffle through tasks).

        Each read task keeps the rows and columns the query needs and splits them into buckets
        by the hash of its table's key; one task per bucket runs the partial query over its
        bucket of both tables and the broadcast small tables.
        """
        size = sum(g.nbytes for name in plan.shuffle for g in plan.groups[name])
        n = max(self._threads(), math.ceil(size / self._task_bytes()), 1)
        parts: dict[str, list[Any]] = {}
        for name, key in plan.shuffle.items():
            read = _read_sql(
                name, plan.needs[name], list(self._schemas[(name, plan.groups[name][0].version)].column_names)
            )
            parts[name] = [
                self.client.submit(run_sql, read, [g], None, allowed, n, key, pure=False) for g in plan.groups[name]
            ]
        out = []
        for i in range(n):
            tables = {
                name: [self.client.submit(operator.getitem, p, i, pure=False) for p in ps] for name, ps in parts.items()
            }
            out.append(self.client.submit(run_sql, sql, [], {**dims, **tables}, (), pure=False))
        return out

    def _tree(self, futures: list[Any], merge: str) -> list[Any]:
        """Partials merged on the workers, :data:`MERGE_FAN_IN` at a time, until few are left for the client."""
        while len(futures) > MERGE_FAN_IN:
            batches = [futures[i : i + MERGE_FAN_IN] for i in range(0, len(futures), MERGE_FAN_IN)]
            futures = [self.client.submit(run_sql, merge, [], {PARTIALS: b}, (), pure=False) for b in batches]
        return futures

    def _output_names(self, tree: exp.Expression, scans: dict[str, TableScan]) -> list[str] | None:
        """The column names DuckDB gives ``tree`` (unaliased expressions: ``sum(revenue)``, ``count_star()``).

        The split's final query computes the same columns under other expressions, so their
        names come from DuckDB describing the original query over empty tables of each schema.
        """
        import duckdb

        con = self._database().cursor()
        try:
            for name, scan in scans.items():
                con.register(name, self._empty(scan))
            return [str(r[0]) for r in con.execute("DESCRIBE " + tree.sql(dialect="duckdb")).fetchall()]
        except duckdb.Error:
            return None
        finally:
            con.close()

    def _empty(self, scan: TableScan) -> Any:
        """A zero-row Arrow table with the table's schema (hive partition columns typed)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from workbench.sql.engines.duckdb import _ARROW_TYPES

        key = (scan.name, scan.version)
        if key not in self._schemas:
            first = (scan.files or scan.schema_files)[0]
            path = first.removeprefix("s3://") if self.lake.is_s3 else first.removeprefix("file://")
            schema = pq.read_schema(path, filesystem=self._arrow_fs())
            for col, duck in scan.partition_types.items():
                if col not in schema.names:
                    schema = schema.append(pa.field(col, getattr(pa, _ARROW_TYPES.get(duck, "string"))()))
            self._schemas[key] = schema.empty_table()
        return self._schemas[key]

    def _run_gather(
        self,
        tree: exp.Expression,
        plan: ClusterPlan,
        limits: Limits,
        deadline: float,
        extra: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        futures: dict[str, list[Any]] = {}
        allowed = self._allowed()
        for name, groups in plan.groups.items():
            sql = _read_sql(name, plan.needs[name], list(self._schemas[(name, groups[0].version)].column_names))
            futures[name] = [self.client.submit(run_sql, sql, [g], None, allowed, pure=False) for g in groups]
        flat = [f for fs in futures.values() for f in fs]
        sizes = self._gather([self.client.submit(nbytes, f, pure=False) for f in flat], deadline)
        if sum(sizes) > GATHER_MAX_BYTES:
            self.client.cancel(flat)
            raise UnsupportedQuery(
                f"the dask engine would bring {sum(sizes) / 2**30:.1f} GiB of rows to the client "
                f"(limit {GATHER_MAX_BYTES / 2**30:.0f} GiB): it gathers rows when it cannot split the query "
                f"across tasks ({plan.why_gather})",
                "add filters on the partition columns (year, month, region), aggregate, or use --engine duckdb",
            )
        tables = {name: concat(self._gather(fs, deadline)) for name, fs in futures.items()}
        tables.update(extra or {})
        return self._on_client(tables, [with_row_limit(tree, limits.row_limit).sql(dialect="duckdb")], deadline)

    def _allowed(self) -> tuple[str, ...]:
        """Folders a task's DuckDB may read: the lake and in-place registrations (none on S3)."""
        if self.lake.is_s3:
            return ()
        from workbench.lake.register import allowed_directories

        return tuple(allowed_directories(self.lake))

    def _broadcast(self, scan: TableScan) -> Any:
        """The whole small table as an Arrow table kept on every worker, read once per version.

        Replicated, not just computed: a task goes where its inputs are, so with the table on one
        worker the scheduler put every task that joins it there too. Measured at 100M rows, a
        three-table join on 2 workers then ran at the speed of one about every other time
        (p50 1.03 s, fastest 0.62 s).
        """
        from distributed import wait

        key = (scan.version, tuple(scan.files))
        with self._lock:
            cached = self._broadcasts.get(scan.name)
            if cached is not None and cached[0] == key:
                return cached[1]
            groups = self._groups(scan)
            future = self.client.submit(
                run_sql, f'SELECT * FROM "{scan.name}"', groups, None, self._allowed(), pure=False
            )
            wait([future])
            if future.status == "finished":  # a failed read surfaces where the tasks gather
                self.client.replicate([future])
            self._broadcasts[scan.name] = (key, future)
            return future

    def _gather(self, futures: list[Any], deadline: float) -> list[Any]:
        from distributed import wait

        try:
            left = deadline - time.monotonic()
            if left <= 0:  # past the limit already (planning, earlier steps): nothing more is waited for
                raise TimeoutError
            wait(futures, timeout=left)
            return list(self.client.gather(futures))
        except (TimeoutError, concurrent.futures.TimeoutError) as e:
            self.client.cancel(futures)
            raise _timed_out() from e
        except Exception as e:  # a task's own error (DuckDB, file access) travels back as is
            raise _task_failed(e) from e

    def _database(self) -> Any:
        """The engine's in-memory DuckDB on the client, without file access; one cursor per query.

        A new database per query cost 10-25 ms (measured); cursors share it, while registered
        tables and temp tables stay private to each cursor.
        """
        with self._lock:
            if self._db is None:
                import duckdb

                from workbench.sql.engines.duckdb import CONNECTION_CONFIG

                config: dict[str, Any] = {**CONNECTION_CONFIG, "memory_limit": self.settings.duckdb_memory_limit}
                if self.settings.duckdb_threads:
                    config["threads"] = self.settings.duckdb_threads
                self._db = duckdb.connect(config=config)
                self._db.execute("SET enable_external_access = false")
                self._db.execute("SET lock_configuration = true")
            return self._db

    def _on_client(self, tables: dict[str, Any], statements: list[str], deadline: float, arrow: bool = False) -> Any:
        """The last of ``statements`` in DuckDB over in-memory ``tables``; no file access at all."""
        import duckdb

        con = self._database().cursor()
        timer = threading.Timer(max(0.1, deadline - time.monotonic()), con.interrupt)
        try:
            for name, table in tables.items():
                con.register(name, table)
            timer.start()
            for sql in statements[:-1]:
                con.execute(sql)
            if arrow:
                return fetch_arrow(con.sql(statements[-1]))
            return con.execute(statements[-1]).df()
        except duckdb.InterruptException as e:
            raise QueryTimeout(
                "query ran longer than its time limit and was cancelled", "raise WORKBENCH_TIMEOUT_S"
            ) from e
        except duckdb.Error as e:
            raise QueryFailed(
                f"DuckDB could not finish the query: {_first_line(e)}", "run it with --engine duckdb"
            ) from e
        finally:
            timer.cancel()
            con.close()

    def explain(self, tree: exp.Expression, scans: dict[str, TableScan]) -> str:
        ctes = self.cte_plans(tree, scans)
        lines = [f"WITH {name}: {self._describe(plan, sub)}" for name, (plan, sub) in ctes.items()]
        if ctes:
            rest = _without_ctes(tree, set(ctes))
            remaining = {n: s for n, s in scans.items() if any(t.name.lower() == n for t in rest.find_all(exp.Table))}
            tree, scans = rest, remaining
            plan = self.plan(rest, remaining, split=False)
        else:
            plan = self.plan(tree, scans)
        lines.append(self._describe(plan, scans))
        return "\n".join(lines)

    def _describe(self, plan: ClusterPlan, scans: dict[str, TableScan]) -> str:
        tasks = {n: len(g) for n, g in plan.groups.items()}
        if plan.split is not None:
            dims = sorted(n for n in scans if n != plan.split.fact and n not in plan.shuffle)
            head = f"route: split aggregate; tasks: {tasks}; broadcast: {dims or 'none'}"
            if plan.shuffle:
                head += f"; hash-partitioned on {plan.shuffle}, then the partial query per bucket"
            if self._goes_direct(plan):
                head += "; one round: partials by direct calls to the workers' DuckDB runners, not scheduled tasks"
            return f"{head}\n{plan.split.describe()}"
        lines = [f"route: gather (not split: {plan.why_gather}); tasks: {tasks}"]
        for name in plan.groups:
            lines.append(f"  per task of {name}: {_read_sql(name, plan.needs[name], self.columns(scans[name]))}")
        lines.append(f"then on the client (DuckDB): {plan.tree.sql(dialect='duckdb')}")
        return "\n".join(lines)

    def close(self) -> None:
        with self._lock:
            self._broadcasts.clear()
            self._runner_set = ([], [], [])
            self._memo.clear()
            if self._db is not None:
                self._db.close()
                self._db = None


def _read_sql(name: str, need: TableNeed, available: list[str]) -> str:
    """The per-task read of one table: its needed columns, its rows no reference can need dropped."""
    cols = [c for c in available if c.lower() in need.columns] or available[:1]
    table = exp.Table(this=exp.to_identifier(name, quoted=True))
    select = exp.select(*(exp.column(c, quoted=True) for c in cols)).from_(table)
    row_filter = need.row_filter()
    if row_filter is not None:
        select = select.where(row_filter)
    return select.sql(dialect="duckdb")


def _lake_ctes(
    tree: exp.Expression, scans: dict[str, TableScan]
) -> Iterator[tuple[str, exp.CTE, dict[str, TableScan]]]:
    """The WITH queries of ``tree`` that read only lake tables: (name, query, their scans).

    Recursive WITH, column lists and names that shadow a lake table are left out.
    """
    with_ = tree.args.get("with_")
    if with_ is None or with_.args.get("recursive"):
        return
    for cte in with_.expressions:
        name = cte.alias_or_name.lower()
        refs = {t.name.lower() for t in cte.this.find_all(exp.Table)}
        alias = cte.args.get("alias")
        if name in scans or (alias is not None and alias.columns) or not refs or not refs <= set(scans):
            continue
        yield name, cte, {t: scans[t] for t in refs}


def _without_ctes(tree: exp.Expression, names: set[str]) -> exp.Expression:
    """``tree`` without the WITH queries ``names`` (their results are registered under those names)."""
    out = tree.copy()
    with_ = out.args["with_"]
    for cte in list(with_.expressions):
        if cte.alias_or_name.lower() in names:
            cte.pop()
    if not with_.expressions:
        out.set("with_", None)
    return out


def _field_type(table: Any, column: str) -> str | None:
    """The Arrow type of ``column`` (case-insensitive, as DuckDB resolves it)."""
    for f in table.schema:
        if f.name.lower() == column.lower():
            return str(f.type)
    return None


def _task_failed(e: Exception) -> QueryFailed:
    return QueryFailed(
        f"a cluster task failed: {_first_line(e)}", "run it with --engine duckdb to check the SQL itself"
    )


def _timed_out() -> QueryTimeout:
    """The time limit passed while the cluster worked (a running DuckDB step finishes; its result is dropped)."""
    return QueryTimeout(
        "query ran longer than its time limit on the cluster and was cancelled",
        "filter on year/month/region, or raise WORKBENCH_TIMEOUT_S",
    )


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
