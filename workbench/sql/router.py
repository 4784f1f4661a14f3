"""The router: the single execution path of ``Workbench.sql``, with a reason for every decision.

Order (DESIGN.md): result cache -> rollup rewrite -> DuckDB in process -> DuckDB tasks on the
Dask cluster. Each step says why it did or did not answer:

1. *guard* (sqlglot allowlist) on the SQL as written;
2. *cache* (``--engine auto`` only): key = normalised SQL + the Delta version of every table
   read + the caller's policy fingerprint, so an ingest changes the key before any
   invalidation runs; a cache outage (Redis down) is a miss, never an error;
3. *rollup*: when a fresh rollup (built from the current ``sales`` version) covers the query,
   the rewritten SQL runs on DuckDB over the rollup's few files;
4. *access policy* on whichever tree runs (rollup views included, row filters need the
   filtered column as a rollup dimension), then the guard again;
5. *engine*: DuckDB unless the estimated bytes after pruning (catalog statistics,
   ``Catalog.estimate_scan``) exceed ``settings.duckdb_max_bytes`` and the cluster engine
   supports the query (``Engine.supports``), via ``workbench.sql.policy.choose_engine``.

Every query, answered or refused, is written to the catalog query log and the audit log
(both never raise: rows are spooled while the catalog is down).
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from workbench.errors import AccessDenied, QueryRefused, UnsupportedQuery, WorkbenchError
from workbench.sql import pruning
from workbench.sql.engines.base import Limits
from workbench.sql.guard import LAKE_TABLES, check_expression, check_sql
from workbench.sql.policy import choose_engine
from workbench.sql.result import QueryResult
from workbench.sql.rollup_rewrite import RollupMatch, rewrite
from workbench.sql.rollups import BASE_TABLE, Rollup, configured, rollup_state
from workbench.sql.scan import Snapshot, TableScan
from workbench.sql.versions import delta_version

if TYPE_CHECKING:
    from workbench.cache import ResultCache
    from workbench.catalog.store import Catalog
    from workbench.security.policies import Policy
    from workbench.session import Workbench

log = logging.getLogger(__name__)

ROUTES = ("cache", "rollup", "duckdb", "dask")


@dataclass
class Estimate:
    """What a plan is expected to read, and where the numbers came from."""

    files: int = 0
    bytes: int = 0
    rows: int | None = None
    source: str = "delta log"

    def text(self) -> str:
        rows = f", ~{self.rows:,} rows" if self.rows is not None else ""
        return f"estimated {self.files} files, {_size(self.bytes)}{rows} after pruning ({self.source})"


@dataclass
class Plan:
    """One routing decision: the tree to run, where, over which files, and why."""

    tree: exp.Expression
    scans: dict[str, TableScan]
    engine: str
    route: str
    reason: str
    estimate: Estimate = field(default_factory=Estimate)
    rollup: RollupMatch | None = None
    #: per-engine prepared tree and rendered SQL: plans are memoised, so a repeated query
    #: skips sqlglot's copy-and-render work (milliseconds of the budget against plain DuckDB)
    prepared: dict[str, tuple[exp.Expression, str]] = field(default_factory=dict, repr=False, compare=False)


class Router:
    """Routes the queries of one :class:`~workbench.session.Workbench`."""

    def __init__(self, wb: Workbench) -> None:
        self.wb = wb
        self.settings = wb.settings
        self.lake = wb.lake
        self.snapshot: Snapshot = wb.snapshot
        self._catalog: Catalog | None = None
        self._cache: ResultCache | None = None
        self._rollup_states: dict[str, tuple[int, dict[str, Any] | None]] = {}
        self.rollups: list[Rollup] = configured(self.settings)
        #: guard results, policies and plans of this session, keyed so a new table version misses
        self._memo: _Lru = _Lru(512)
        #: results of this session in front of the shared cache (keys carry table versions)
        self.local = LocalResults(self.settings.cache_ttl_s)
        self.recorder = Recorder(self)

    # --- services (created on first use; failures degrade, never break a query) -------------
    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            from workbench.catalog import open_catalog

            self._catalog = open_catalog(self.settings, connect=False)
        return self._catalog

    @property
    def cache(self) -> ResultCache:
        if self._cache is None:
            from workbench.cache import open_cache

            self._cache = open_cache(self.settings)
        return self._cache

    def flush(self) -> None:
        """Wait until every query-log and audit row of this session is written (or spooled)."""
        self.recorder.flush()

    def close(self) -> None:
        self.recorder.close()
        if self._cache is not None:
            self._cache.close()
        if self._catalog is not None:
            self._catalog.close()

    # --- the path -------------------------------------------------------------------------
    def run(
        self,
        sql: str,
        engine: str = "auto",
        explain: bool = False,
        user: str | None = None,
        *,
        use_cache: bool = True,
        use_rollups: bool = True,
        question: str | None = None,
    ) -> QueryResult:
        """Answer one read-only SELECT; refuse (never answer wrongly) what no route can run."""
        start = time.perf_counter()
        user = user or self.settings.user
        plan: Plan | None = None
        policy_fp = ""
        try:
            guarded = self._memo.get_or(("guard", sql), lambda: check_sql(sql, self.wb.tables()))
            policy = self.policy(user)
            policy_fp = _fingerprint(policy)
            versions = {t: delta_version(self.lake, t) for t in sorted(guarded.tables)}
            auto = engine == "auto"
            key = None
            if auto and use_cache and not explain:
                key = self._memo.get_or(
                    ("key", sql, tuple(versions.items()), policy_fp),
                    lambda: self._key(guarded.expression, versions, policy_fp),
                )
                hit = self._cached(key, sql, versions, start) if key else None
                if hit is not None:
                    self.recorder.ok(user, sql, question, hit, policy_fp)
                    return hit
            memo_key = (
                "plan",
                sql,
                tuple(versions.items()),
                self._rollup_versions(guarded.tables),
                engine,
                use_rollups,
                policy_fp,
            )
            plan = self._memo.get_or(
                memo_key, lambda: self.plan(guarded.expression, guarded.tables, versions, engine, policy, use_rollups)
            )
            result = self._execute(plan, sql, explain, start)
            if plan.route.startswith("rollup:") and not explain:
                names = self._memo.get_or(("names", sql), lambda: base_output_names(guarded.expression))
                if names is not None and len(names) == len(result.df.columns):
                    result.df.columns = names  # same names whichever route answered
            if key is not None and not result.truncated:
                meta = {"engine": result.engine, "route": result.route, "reason": result.reason}
                self.local.put(key, result.df, meta)
                self.cache.set(key, result.df, meta, tables=sorted(versions))
            self.recorder.ok(user, sql, question, result, policy_fp)
            return result
        except WorkbenchError as e:
            self.recorder.error(user, sql, question, plan, e, policy_fp, start)
            raise

    def _rollup_versions(self, tables: set[str]) -> tuple[int, ...]:
        if BASE_TABLE not in tables:
            return ()
        return tuple(delta_version(self.lake, r.table) for r in self.rollups)

    def plan(
        self,
        tree: exp.Expression,
        tables: set[str],
        versions: dict[str, int],
        engine: str = "auto",
        policy: Policy | None = None,
        use_rollups: bool = True,
    ) -> Plan:
        """Choose route and engine for a guarded tree (no data is read)."""
        no_rollup = ""
        if engine != "auto":
            no_rollup = f"engine {engine} requested"
        elif not use_rollups:
            no_rollup = "rollups disabled for this query"
        elif BASE_TABLE not in tables:
            no_rollup = "the query does not read sales"
        else:
            rollup_plan = self._rollup_plan(tree, versions, policy)
            if isinstance(rollup_plan, Plan):
                return rollup_plan
            no_rollup = rollup_plan
        tree = self.apply_policy(tree, policy)
        scans = self.snapshot.plan(tree, tables)
        estimate = self.estimate(tree, scans)
        choice = choose_engine(tree, scans, engine, self.wb.engine, self.settings, estimated=estimate.bytes)
        reason = f"{choice.reason}; {estimate.text()}"
        if no_rollup and engine == "auto":
            reason = f"no rollup: {no_rollup}; {reason}"
        return Plan(tree, scans, choice.engine, choice.route, reason, estimate)

    # --- cache ----------------------------------------------------------------------------
    def _key(self, tree: exp.Expression, versions: dict[str, int], policy_fp: str) -> str | None:
        from workbench.cache import cache_key

        try:
            return cache_key(tree, versions, policy_fp)
        except Exception as e:  # a key we cannot compute is a miss, not an error
            log.warning("no cache key (%s): %s", type(e).__name__, e)
            return None

    def _cached(self, key: str, sql: str, versions: dict[str, int], start: float) -> QueryResult | None:
        local = self.local.get(key)
        if local is not None:
            df, meta, age = local
            where = "session memory"
        else:
            hit = self.cache.get(key)
            if hit is None:
                return None
            df, meta, age = hit.df, hit.meta, hit.age_s
            where = "shared cache"
            self.local.put(key, df, meta)
        shown = ", ".join(f"{t}@v{v}" for t, v in versions.items())
        result = QueryResult(
            df=df.copy(),
            engine=str(meta.get("engine", "")),
            sql=sql,
            route="cache",
            reason=(
                f"cache hit ({where}): same normalised SQL over {shown}, same policy; "
                f"first answered by {meta.get('route')}"
            ),
            cached=True,
        )
        result.details["cache_age_s"] = round(age, 3)
        result.elapsed_ms = (time.perf_counter() - start) * 1000
        return result

    # --- rollups --------------------------------------------------------------------------
    def fresh_rollups(self, sales_version: int) -> list[Rollup]:
        """Configured rollups computed from ``sales`` at ``sales_version`` (same definition)."""
        fresh = []
        for r in self.rollups:
            version = delta_version(self.lake, r.table)
            if version < 0:
                continue
            memo = self._rollup_states.get(r.name)
            if memo is None or memo[0] != version:
                memo = (version, rollup_state(self.lake, r))
                self._rollup_states[r.name] = memo
            state = memo[1]
            if state and state.get("base_version") == sales_version and state.get("definition") == r.definition():
                fresh.append(r)
        return fresh

    def _rollup_plan(self, tree: exp.Expression, versions: dict[str, int], policy: Policy | None) -> Plan | str:
        fresh = self.fresh_rollups(versions.get(BASE_TABLE, -1))
        if not fresh:
            stale = [r.name for r in self.rollups]
            return f"no rollup is fresh for sales@v{versions.get(BASE_TABLE)} ({', '.join(stale) or 'none configured'})"
        require = [c for c, _ in policy.row_filters] if policy is not None and policy.restricted else []
        sizes = {r.name: self.snapshot.meta(r.table).total_bytes for r in fresh}
        match = rewrite(tree, fresh, size=lambda r: sizes[r.name], require=require)
        if isinstance(match, str):
            return match
        try:
            policed = self.apply_policy(match.tree, policy, views=match.views)
        except AccessDenied as e:
            return f"the access policy cannot be applied to the rollup ({e.message})"
        scans = self._rollup_scans(policed, match)
        others = {t.name.lower() for t in policed.find_all(exp.Table)} & set(LAKE_TABLES)
        scans.update(self.snapshot.plan(policed, others))
        estimate = Estimate(
            files=sum(len(s.files) for s in scans.values()),
            bytes=sum(s.bytes for s in scans.values()),
            source="rollup delta log",
        )
        names = "+".join(r.name for r in match.rollups)
        reason = f"rollup {names} is fresh (sales@v{versions[BASE_TABLE]}): {match.reason}; {estimate.text()}"
        return Plan(policed, scans, "duckdb", f"rollup:{names}", reason, estimate, match)

    def _rollup_scans(self, tree: exp.Expression, match: RollupMatch) -> dict[str, TableScan]:
        scans: dict[str, TableScan] = {}
        metas = {view: self.snapshot.meta(r.table) for view, r in match.views.items()}
        conds = pruning.collect(tree, {v: m.partition_columns for v, m in metas.items()})
        for view, meta in metas.items():
            refs = conds[view].references if view in conds else [[]]
            files: set[str] = set()
            for ref in refs:
                filters = pruning.delta_filters(ref, meta.values) if ref else []
                if any(not vals for _, _, vals in filters):
                    continue
                files |= set(self.lake.files(meta.name, filters or None, version=meta.version))
            ordered = sorted(files)
            schema = [] if ordered else self.lake.files(meta.name, version=meta.version)[:1]
            size = sum(Snapshot._size(meta, f) for f in ordered)
            scans[view] = TableScan(view, meta.version, ordered, size, meta.partition_types, schema)
        return scans

    # --- policy ---------------------------------------------------------------------------
    def policy(self, user: str) -> Policy | None:
        """The caller's access policy; None when policies are not enforced.

        Enforcement is switched on by the policies module exposing ``apply_policies`` (the
        session's hook name); then the router applies ``apply_policy`` itself, so a row filter
        also restricts rollups. Memoised per user and policies-file modification time.
        """
        try:
            from workbench.security import policies
        except ImportError:
            return None
        if not hasattr(policies, "apply_policies"):
            return None
        path = self.settings.policies_path()
        stamp = path.stat().st_mtime_ns if path is not None else None
        return self._memo.get_or(
            ("policy", user, str(path), stamp), lambda: policies.policy_for_user(user, self.settings)
        )

    def apply_policy(
        self, tree: exp.Expression, policy: Policy | None, views: dict[str, Rollup] | None = None
    ) -> exp.Expression:
        """Rewrite ``tree`` under ``policy`` and guard the result again (a policy never widens SQL)."""
        if policy is None or policy.all_access:
            return tree
        from workbench.security.policies import RETAIL_SCHEMA, apply_policy

        schema: dict[str, list[str]] = dict(RETAIL_SCHEMA)
        for view, r in (views or {}).items():
            schema[view] = [*r.dimensions, *r.measures, "rollup_rows"]
        rewritten = apply_policy(tree, policy, schema)
        return check_expression(rewritten, "", [*self.wb.tables(), *(views or {})]).expression

    # --- estimates ------------------------------------------------------------------------
    def estimate(self, tree: exp.Expression, scans: dict[str, TableScan]) -> Estimate:
        """Bytes and rows after pruning from catalog statistics (the Delta log when unavailable)."""
        fallback = Estimate(sum(len(s.files) for s in scans.values()), sum(s.bytes for s in scans.values()))
        try:
            catalog = self.catalog
            synced = catalog.table_versions(list(scans))
            total = Estimate(source="catalog statistics", rows=0)
            metas = {t: self.snapshot.meta(t) for t in scans}
            conds = pruning.collect(tree, {t: m.partition_columns for t, m in metas.items() if m.partition_columns})
            for name, scan in scans.items():
                if synced.get(name) != scan.version:
                    catalog.sync_table(self.lake, name)
                refs = conds[name].references if name in conds else [[]]
                for ref in refs:
                    filters = pruning.delta_filters(ref, metas[name].values) if ref else []
                    est = catalog.estimate_scan(name, filters or None)
                    total.files += est.files
                    total.bytes += est.bytes
                    total.rows = (total.rows or 0) + est.rows
            return total
        except WorkbenchError as e:
            log.info("catalog estimate unavailable (%s); using the Delta log", e.message)
            return fallback

    # --- running --------------------------------------------------------------------------
    def _execute(self, plan: Plan, sql: str, explain: bool, start: float) -> QueryResult:
        chosen = self.wb.engine(plan.engine)
        why_not = chosen.supports(plan.tree)
        if why_not is not None:
            raise UnsupportedQuery(
                f"the {chosen.name} engine cannot run this query correctly: {why_not}",
                "run it with --engine duckdb, or rewrite the construct named above",
            )
        if chosen.name in plan.prepared:
            prepared, executed_sql = plan.prepared[chosen.name]
        else:
            prepared = chosen.prepare(plan.tree)
            executed_sql = prepared.sql(dialect="duckdb")
            if chosen.name == "duckdb":  # dask's prepare registers its split plan: always call it
                plan.prepared[chosen.name] = (prepared, executed_sql)
        limits = Limits(self.settings.row_limit, self.settings.timeout_s)
        import pandas as pd

        result = QueryResult(
            df=chosen.execute(prepared, plan.scans, limits) if not explain else pd.DataFrame(),
            engine=chosen.name,
            sql=sql,
            route=plan.route,
            reason=plan.reason,
            files_scanned=sum(len(s.files) for s in plan.scans.values()),
            bytes_scanned=sum(s.bytes for s in plan.scans.values()),
            executed_sql=executed_sql,
        )
        result.details.update(
            {
                "estimated_files": plan.estimate.files,
                "estimated_bytes": plan.estimate.bytes,
                "estimated_rows": plan.estimate.rows,
                "estimate_source": plan.estimate.source,
            }
        )
        if explain:
            header = [
                f"route: {plan.route}",
                f"engine: {chosen.name}",
                f"reason: {plan.reason}",
                f"estimated: {plan.estimate.files} files, {plan.estimate.bytes} bytes ({plan.estimate.source})",
                f"scans: {result.files_scanned} files, {result.bytes_scanned} bytes",
                f"sql: {result.executed_sql}",
                "",
            ]
            result.explain = "\n".join(header) + chosen.explain(prepared, plan.scans)
        if len(result.df) > limits.row_limit:
            result.df = result.df.iloc[: limits.row_limit]
            result.truncated = True
        result.elapsed_ms = (time.perf_counter() - start) * 1000
        return result


def _fingerprint(policy: Policy | None) -> str:
    if policy is None:
        return ""
    from workbench.security.policies import policy_fingerprint

    return policy_fingerprint(policy)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


class _Lru:
    """A small least-recently-used memo (guard results, policies, cache keys, plans)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get_or(self, key: Any, make: Any) -> Any:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        value = make()
        with self._lock:
            self._data[key] = value
            while len(self._data) > self.size:
                self._data.popitem(last=False)
        return value


class LocalResults:
    """Recent results of this session, consulted before the shared cache (Redis or disk).

    Keys embed every table version and the policy fingerprint, so an entry can only be found
    while the data it was computed from is still current; entries also expire with the
    shared cache's TTL. Bounded by entries and bytes.
    """

    def __init__(self, ttl_s: float, max_entries: int = 256, max_bytes: int = 256 * 2**20) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._data: OrderedDict[str, tuple[float, Any, dict[str, Any], int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[Any, dict[str, Any], float] | None:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            age = time.monotonic() - item[0]
            if age > self.ttl_s:
                self._drop(key)
                return None
            self._data.move_to_end(key)
            return item[1], item[2], age

    def put(self, key: str, df: Any, meta: dict[str, Any]) -> None:
        size = int(df.memory_usage(index=True, deep=True).sum())
        if size > self.max_bytes // 4:
            return
        with self._lock:
            if key in self._data:
                self._drop(key)
            self._data[key] = (time.monotonic(), df, dict(meta), size)
            self._bytes += size
            while len(self._data) > self.max_entries or self._bytes > self.max_bytes:
                self._drop(next(iter(self._data)))

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._bytes = 0

    def _drop(self, key: str) -> None:
        item = self._data.pop(key, None)
        if item is not None:
            self._bytes -= item[3]


class Recorder:
    """Writes the query log and audit rows of a session on one background thread.

    A catalog write is a database commit (milliseconds, more on a busy disk); doing it after
    the answer is returned keeps it out of query latency (a cache hit takes ~1 ms). Rows are
    queued in order; :meth:`flush` waits for them, and ``close``/interpreter exit flush too.
    The catalog itself never raises on these writes (it spools while its database is down).
    """

    def __init__(self, router: Router) -> None:
        self.router = router
        self._queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def ok(self, user: str, sql: str, question: str | None, result: QueryResult, policy_fp: str) -> None:
        from workbench.catalog.records import QueryLogEntry
        from workbench.observability.metrics import observe_query

        observe_query(result)  # Prometheus: latency by route, cache hit rate (counted once per result)

        entry = QueryLogEntry(
            user=user,
            sql=sql,
            normalized_sql=self.normalised(sql),
            question=question,
            route=result.route,
            engine=result.engine,
            files_scanned=result.files_scanned,
            bytes_scanned=result.bytes_scanned,
            rows=len(result.df),
            latency_ms=round(result.elapsed_ms, 3),
            cache_hit=result.cached,
        )
        audit = {
            "user": user,
            "outcome": "ok",
            "question": question,
            "sql": sql,
            "route": result.route,
            "rows": len(result.df),
            "policy": policy_fp or None,
            "detail": result.reason[:500],
        }
        self._put(entry, audit)

    def error(
        self, user: str, sql: str, question: str | None, plan: Plan | None, e: WorkbenchError, fp: str, start: float
    ) -> None:
        from workbench.catalog.records import QueryLogEntry
        from workbench.observability.metrics import observe_query

        observe_query(error=e, seconds=time.perf_counter() - start, route=plan.route if plan else None)
        outcome = "denied" if isinstance(e, AccessDenied) else "refused" if isinstance(e, QueryRefused) else "error"
        route = plan.route if plan else None
        entry = QueryLogEntry(
            user=user,
            sql=sql,
            question=question,
            route=route,
            engine=plan.engine if plan else None,
            latency_ms=round((time.perf_counter() - start) * 1000, 3),
            error=f"{type(e).__name__}: {e.message}"[:1000],
        )
        audit = {
            "user": user,
            "outcome": outcome,
            "question": question,
            "sql": sql,
            "route": route,
            "rows": None,
            "policy": fp or None,
            "detail": e.message[:500],
        }
        self._put(entry, audit)

    def normalised(self, sql: str) -> str | None:
        """The log's normalised SQL, memoised per statement so the writer thread does not parse.

        Parsing on the writer thread held the interpreter lock while the next query ran (a
        repeated query, answered from the cache in about a millisecond, paid several).
        """
        from workbench.catalog.store import normalise_or_none

        return self.router._memo.get_or(("normalised", sql), lambda: normalise_or_none(sql))

    def _put(self, entry: Any, audit: dict[str, Any]) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="workbench-query-log", daemon=True)
                self._thread.start()
                atexit.register(self.flush)
        self._queue.put(("row", {"entry": entry, "audit": audit}))

    def _run(self) -> None:
        """Drain the queue in batches: whatever queued up while the last batch was written."""
        while True:
            items = [self._queue.get()]
            while len(items) < 500:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                rows = [item[1] for item in items if item is not None]
                if rows:
                    self._write(rows)
                if None in items:
                    return
            finally:
                for _ in items:
                    self._queue.task_done()

    def _write(self, rows: list[dict[str, Any]]) -> None:
        from workbench.catalog.records import AuditEntry

        try:
            self.router.catalog.record([r["entry"] for r in rows], [AuditEntry(**r["audit"]) for r in rows])
        except Exception as e:  # the log never fails a query (the catalog spools; this is a last resort)
            log.warning("query log write failed: %s", e)

    def flush(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.join()

    def close(self) -> None:
        self.flush()
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=10)
        self._thread = None


_names_lock = threading.Lock()
_names_con: Any = None


def base_output_names(tree: exp.Expression) -> list[str] | None:
    """Column names the query has on the base tables, found by planning it over empty tables.

    A rollup rewrite replaces ``COUNT(*)`` by ``SUM(rollup_rows)`` and so on; unaliased output
    columns would then be named after the rewritten expression. Planning the original over
    empty tables of the reference schema costs a millisecond and gives DuckDB's own names, so
    a result looks the same whichever route answered. None when the query reads other tables.
    """
    global _names_con
    import duckdb

    from workbench.lake import schema as lake_schema

    with _names_lock:
        if _names_con is None:
            con = duckdb.connect()
            for name, sch in {
                "sales": lake_schema.SALES,
                "products": lake_schema.PRODUCTS,
                "stores": lake_schema.STORES,
                "customers": lake_schema.CUSTOMERS,
            }.items():
                con.register(f"{name}_empty", sch.empty_table())
                con.execute(f"CREATE VIEW {name} AS SELECT * FROM {name}_empty")
            _names_con = con
        try:
            cur = _names_con.cursor()
            cur.execute(tree.sql(dialect="duckdb"))  # empty tables: no data is read
            return [d[0] for d in cur.description]
        except duckdb.Error:
            return None
