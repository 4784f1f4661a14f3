"""dask-sql on a Dask cluster: the scale-out engine, guarded against its wrong answers.

Frames are built with ``dd.from_map`` over the pruned Delta file list (a file list passed
to ``read_parquet`` breaks dask-sql), hive partition values are parsed from the paths and
cast to plain types (dask reads them as ``category``, which dask-sql cannot query). Files
are grouped into bounded partitions, only the named columns are read, dimension tables are
persisted once per Delta version, and one dask-sql ``Context`` is kept with its tables
re-registered only when their files or columns change (``dask_frames``).

What dask-sql cannot run or gets wrong is rewritten (``workbench.sql.rewrites``), split
(the grouped stage on the cluster, windows/ranking/ratios over its result in DuckDB,
``split``), or refused by name.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections import OrderedDict
from typing import Any, ClassVar

import pandas as pd
from sqlglot import exp

from workbench.config import Settings
from workbench.errors import QueryFailed, QueryTimeout
from workbench.lake.storage import Lake
from workbench.sql.engines.base import Engine, Limits, with_row_limit
from workbench.sql.engines.dask_frames import FrameCache, needed_columns, read_file
from workbench.sql.engines.split import STAGE, SplitPlan, plan_split
from workbench.sql.scan import TableScan
from workbench.sql.suggest import column_hint

__all__ = ["DaskEngine", "read_file"]

#: dask-sql options per query: its dynamic partition pruning reads data while planning
_SQL_OPTIONS = {"sql.dynamic_partition_pruning": False}


class DaskEngine(Engine):
    name = "dask"
    capabilities: ClassVar[frozenset[str]] = frozenset({"scale_out", "aggregate_windows", "split_windows"})

    def __init__(self, lake: Lake, settings: Settings, client: Any = None) -> None:
        from workbench.daskenv import prepare_dask

        prepare_dask(with_sql=True)
        self.lake = lake
        self.settings = settings
        self._client = client
        self._ctx: Any = None
        self._frames: FrameCache | None = None
        self._lock = threading.RLock()
        self._plans: OrderedDict[str, SplitPlan] = OrderedDict()

    @property
    def client(self) -> Any:
        if self._client is None:
            from workbench.cluster import get_client

            self._client = get_client(self.settings)
        return self._client

    # --- what runs where ----------------------------------------------------------------------
    def plan(self, tree: exp.Expression) -> SplitPlan | str:
        return plan_split(tree)

    def supports(self, tree: exp.Expression) -> str | None:
        plan = self.plan(tree)
        return plan if isinstance(plan, str) else None

    def prepare(self, tree: exp.Expression) -> exp.Expression:
        """The tree as it will run (stage and remainder shown as ``WITH _stage AS (..)``)."""
        plan = self.plan(tree)
        if isinstance(plan, str):
            return tree
        shown = plan.display()
        with self._lock:
            self._plans[shown.sql()] = plan
            while len(self._plans) > 256:
                self._plans.popitem(last=False)
        return shown

    def _plan_of(self, tree: exp.Expression) -> SplitPlan:
        with self._lock:
            plan = self._plans.get(tree.sql())
        if plan is not None:
            return plan
        found = self.plan(tree)
        if isinstance(found, str):
            from workbench.errors import UnsupportedQuery

            raise UnsupportedQuery(
                f"the dask engine cannot run this query correctly: {found}", "run it with --engine duckdb"
            )
        return found

    # --- frames and context --------------------------------------------------------------------
    def _context(self, tree: exp.Expression, scans: dict[str, TableScan]) -> Any:
        """The engine's dask-sql Context with ``scans`` registered (only changed tables again)."""
        from dask_sql import Context

        if self._ctx is None:
            self._ctx = Context()
            fs = self.lake.fs
            if self.lake.is_s3:  # pyarrow's C++ S3 client: s3fs range reads are slow (see engines.duckdb)
                from workbench.sql.engines.duckdb import arrow_s3_filesystem

                fs = arrow_s3_filesystem(self.settings)
            self._frames = FrameCache(fs, sum(self.client.nthreads().values()))
        assert self._frames is not None
        for name, scan in scans.items():
            columns = needed_columns(tree, self._frames.columns(scan))
            sizes = [scan.bytes // max(1, len(scan.files))] * len(scan.files)
            ddf, changed = self._frames.frame(scan, sizes, columns, self.client)
            if changed:
                self._ctx.create_table(name, ddf)
        return self._ctx

    def _plan_context(self, tree: exp.Expression, scans: dict[str, TableScan]) -> Any:
        """A throw-away Context whose tables are empty frames with the right schema.

        ``--explain`` runs nothing: planning needs column names and types only, which come from
        one Parquet footer per table; no dimension table is loaded or persisted on the cluster.
        """
        import dask.dataframe as dd
        from dask_sql import Context

        self._context(exp.select("1"), {})  # the FrameCache (filesystem, footers cache)
        assert self._frames is not None
        ctx = Context()
        for name, scan in scans.items():
            columns = needed_columns(tree, self._frames.columns(scan))
            ctx.create_table(name, dd.from_pandas(self._frames.empty(scan, columns), npartitions=1))
        return ctx

    # --- running ----------------------------------------------------------------------------
    def execute(self, tree: exp.Expression, scans: dict[str, TableScan], limits: Limits) -> pd.DataFrame:
        start = time.monotonic()
        plan = self._plan_of(tree)
        stage = plan.stage if plan.remainder is not None else with_row_limit(plan.stage, limits.row_limit)
        try:
            frame = self._frame(stage, scans)
        except QueryFailed:
            inlined = self._inline_scalar_subqueries(stage, scans, limits.timeout_s)
            if inlined is None:
                raise
            frame = self._frame(inlined, scans)
        out = self._compute(frame, limits.timeout_s)
        if plan.remainder is None:
            if out.empty and _global_aggregate(plan.stage):
                return self._empty_input_answer(plan.stage, scans)
            return out
        left = max(1.0, limits.timeout_s - (time.monotonic() - start))
        return run_remainder(plan.remainder, out, Limits(limits.row_limit, left))

    def _frame(self, tree: exp.Expression, scans: dict[str, TableScan]) -> Any:
        with self._lock:
            try:
                return self._context(tree, scans).sql(tree.sql(dialect="postgres"), config_options=_SQL_OPTIONS)
            except Exception as e:  # dask-sql raises plain exceptions from its planner
                raise QueryFailed(
                    f"dask-sql could not plan the query: {_first_line(e)}",
                    self._columns_hint(e, scans) or "run it with --engine duckdb; dask-sql supports a subset of SQL",
                ) from e

    def _columns_hint(self, e: Exception, scans: dict[str, TableScan]) -> str | None:
        """ "did you mean 'region'?" when the planner could not find a column (from the files' footers)."""
        if self._frames is None:
            return None
        try:
            columns = {name: self._frames.columns(scan) for name, scan in scans.items()}
        except Exception:  # no footer to read: the generic hint stays
            return None
        return column_hint(str(e), columns)

    def _inline_scalar_subqueries(
        self, tree: exp.Expression, scans: dict[str, TableScan], timeout_s: float
    ) -> exp.Expression | None:
        """Uncorrelated scalar subqueries computed first and replaced by their value.

        dask-sql fails to plan some of them (measured: ``SELECT region, SUM(revenue), (SELECT
        SUM(revenue) FROM sales ..) AS total .. GROUP BY region``). Used only after planning
        failed; a subquery is inlined only when each of its columns belongs to a table it
        reads itself (so it cannot refer to the outer query) and its value is a number,
        string or NULL. None when nothing could be inlined.
        """
        out = tree.copy()
        done = 0
        for sub in list(out.find_all(exp.Subquery)):
            if isinstance(sub.parent, (exp.From, exp.Join)) or not isinstance(sub.this, exp.Select):
                continue
            if not self._uncorrelated(sub.this, scans):
                continue
            df = self._compute(self._frame(sub.this, scans), timeout_s)
            if df.shape != (1, 1):
                continue
            literal = _literal(df.iat[0, 0])
            if literal is None:
                continue
            sub.replace(literal)
            done += 1
        return out if done else None

    def _uncorrelated(self, select: exp.Select, scans: dict[str, TableScan]) -> bool:
        tables = list(select.find_all(exp.Table))
        if not tables or any(t.name.lower() not in scans for t in tables) or select.find(exp.Subquery):
            return False
        aliases = {t.alias_or_name.lower() for t in tables}
        assert self._frames is not None
        columns = {c.lower() for t in tables for c in self._frames.columns(scans[t.name.lower()])}
        for col in select.find_all(exp.Column):
            if (col.table and col.table.lower() not in aliases) or col.name.lower() not in columns:
                return False
        return True

    def _empty_input_answer(self, tree: exp.Expression, scans: dict[str, TableScan]) -> pd.DataFrame:
        """The one row an aggregate without GROUP BY returns over no rows (COUNT 0, others NULL).

        dask-sql returns no row at all there (measured, tests/test_tpch.py). When its answer
        is empty, the same query runs in DuckDB over empty tables of the same schema: an
        aggregate whose input is empty gives the same row whatever emptied it.
        """
        import duckdb

        assert self._frames is not None
        con = duckdb.connect(config={"threads": 1})
        try:
            for name, scan in scans.items():
                con.register(name, self._frames._meta(scan, None))
            con.execute("SET enable_external_access = false")
            return con.execute(tree.sql(dialect="duckdb")).df()
        except duckdb.Error as e:
            raise QueryFailed(
                f"dask-sql returned no row for an aggregate and DuckDB could not supply it: {_first_line(e)}",
                "run it with --engine duckdb",
            ) from e
        finally:
            con.close()

    def _compute(self, frame: Any, timeout_s: float) -> pd.DataFrame:
        future = self.client.compute(frame)
        try:
            out = future.result(timeout=timeout_s)
        except (TimeoutError, concurrent.futures.TimeoutError) as e:
            future.cancel()
            raise QueryTimeout(
                f"query ran longer than {timeout_s:g} s and was cancelled",
                "filter on year/month/region, or raise WORKBENCH_TIMEOUT_S",
            ) from e
        except Exception as e:
            raise QueryFailed(
                f"dask-sql failed while running the query: {_first_line(e)}", "run it with --engine duckdb"
            ) from e
        return out.reset_index(drop=True) if isinstance(out, pd.DataFrame) else pd.DataFrame(out)

    def explain(self, tree: exp.Expression, scans: dict[str, TableScan]) -> str:
        plan = self._plan_of(tree)
        try:
            with self._lock:
                text = str(self._plan_context(plan.stage, scans).explain(plan.stage.sql(dialect="postgres")))
        except Exception as e:
            raise QueryFailed(
                f"dask-sql could not plan the query: {_first_line(e)}", "run it with --engine duckdb"
            ) from e
        if plan.remainder is not None:
            text += f"\n-- then in DuckDB over the stage result ({STAGE}):\n{plan.remainder.sql(dialect='duckdb')}"
        return text

    def close(self) -> None:
        self._ctx = None
        self._frames = None


def run_remainder(remainder: exp.Expression, stage: pd.DataFrame, limits: Limits) -> pd.DataFrame:
    """The post-aggregation part in DuckDB over the stage's (small) result; no file access."""
    import duckdb

    con = duckdb.connect(config={"threads": 1})
    try:
        con.register(STAGE, stage)
        con.execute("SET enable_external_access = false")
        timer = threading.Timer(limits.timeout_s, con.interrupt)
        timer.start()
        try:
            return con.execute(with_row_limit(remainder, limits.row_limit).sql(dialect="duckdb")).df()
        except duckdb.InterruptException as e:
            raise QueryTimeout(
                f"query ran longer than {limits.timeout_s:g} s and was cancelled", "raise WORKBENCH_TIMEOUT_S"
            ) from e
        except duckdb.Error as e:
            raise QueryFailed(
                f"DuckDB could not finish the split query: {_first_line(e)}", "run it with --engine duckdb"
            ) from e
        finally:
            timer.cancel()
    finally:
        con.close()


def _global_aggregate(tree: exp.Expression) -> bool:
    """A SELECT with aggregates and no GROUP BY (exactly one row on any input, empty included)."""
    if not isinstance(tree, exp.Select) or tree.args.get("group") is not None:
        return False
    if tree.find(exp.Subquery) is not None and any(p.find(exp.Subquery) for p in tree.expressions):
        return False
    return any(
        isinstance(n, exp.AggFunc) and n.find_ancestor(exp.Window, exp.Subquery) is None
        for p in tree.expressions
        for n in p.walk()
    )


def _literal(value: Any) -> exp.Expression | None:
    """A SQL literal for one computed value (None when it has no exact literal here)."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if value is None or (isinstance(value, float) and value != value):
        return exp.null()
    if isinstance(value, bool):
        return exp.true() if value else exp.false()
    if isinstance(value, int):
        return exp.Literal.number(value)
    if isinstance(value, float):
        return exp.cast(exp.Literal.number(repr(value)), "DOUBLE")
    if isinstance(value, str):
        return exp.Literal.string(value)
    return None


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
