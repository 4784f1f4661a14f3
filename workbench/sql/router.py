"""The router: the services of the query pipeline, and the plans it makes.

The path itself is declared in :mod:`workbench.sql.pipeline` (``STEPS``: guard -> access
policy -> table versions -> cache lookup -> rollup rewrite -> policy on the tree -> prune ->
estimate -> choose engine -> execute -> cache store -> record). The :class:`Router` holds what
those steps share for one session: the snapshot of the Delta log, the engines, the catalog,
the result caches, the rollups, a memo of guard results, policies and plans, and the recorder.
The session builds it with plain values and callables; nothing here calls back into the session.

Decisions, each with a reason the user sees:

1. *cache* (``--engine auto`` only): key = normalised SQL + the Delta version of every table
   read + the caller's policy fingerprint, so an ingest changes the key before any
   invalidation runs; a cache outage (Redis down) is a miss, never an error;
2. *rollup*: when a fresh rollup (built from the current ``sales`` version) covers the query,
   the rewritten SQL runs on DuckDB over the rollup's few files;
3. *access policy* on whichever tree runs (rollup views included, row filters need the
   filtered column as a rollup dimension), then the guard again;
4. *engine*: the in-process engine unless the estimated bytes after pruning (catalog
   statistics, ``Catalog.estimate_scan``) exceed ``settings.duckdb_max_bytes`` and an engine
   that scales out supports the query (``workbench.sql.engine_choice``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from sqlglot import exp
from sqlglot.errors import SqlglotError

from workbench.cache.key import cache_key
from workbench.config import Settings
from workbench.errors import AccessDenied, WorkbenchError
from workbench.lake.storage import Lake
from workbench.observability.recording import QueryRecorder
from workbench.security.policies import RETAIL_SCHEMA, Policy, apply_policy, policy_for_user
from workbench.sql import pipeline, pruning
from workbench.sql.engine_choice import EngineFactory
from workbench.sql.guard import LAKE_TABLES, check_expression
from workbench.sql.result import QueryResult
from workbench.sql.rollup_rewrite import rewrite
from workbench.sql.rollups import BASE_TABLE, Rollup, configured, rollup_state
from workbench.sql.route_plan import Estimate, RoutePlan
from workbench.sql.scan import Snapshot, TableScan
from workbench.sql.versions import delta_version

if TYPE_CHECKING:
    from workbench.cache import ResultCache
    from workbench.catalog.store import Catalog

log = logging.getLogger(__name__)

ROUTES = ("cache", "rollup", "duckdb", "dask")

T = TypeVar("T")


class Router:
    """The services the query pipeline's steps share within one session."""

    def __init__(
        self,
        settings: Settings,
        lake: Lake,
        snapshot: Snapshot,
        tables: Callable[[], set[str]],
        engine: EngineFactory,
        engine_names: Sequence[str],
    ) -> None:
        self.settings = settings
        self.lake = lake
        self.snapshot = snapshot
        #: tables SQL may read (reference tables and registered ones)
        self.tables = tables
        #: the engine called ``name`` (created on first use by the session's registry)
        self.engine = engine
        #: engines in order of preference, the in-process default first
        self.engine_names = tuple(engine_names)
        self._catalog: Catalog | None = None
        self._cache: ResultCache | None = None
        self._rollup_states: dict[str, tuple[int, dict[str, Any] | None]] = {}
        self.rollups: list[Rollup] = configured(self.settings)
        #: guard results, policies and plans of this session, keyed so a new table version misses
        self.memo: Memo = Memo(512)
        #: results of this session in front of the shared cache (keys carry table versions)
        self.local = LocalResults(self.settings.cache_ttl_s)
        self.recorder = QueryRecorder(lambda: self.catalog, self.normalised)

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
        """Answer one read-only SELECT through :data:`workbench.sql.pipeline.STEPS`."""
        ctx = pipeline.QueryContext(
            sql=sql,
            user=user or self.settings.user,
            engine=engine,
            explain=explain,
            use_cache=use_cache,
            use_rollups=use_rollups,
            question=question,
        )
        return pipeline.run(self, ctx)

    def rollup_versions(self, tables: set[str]) -> tuple[int, ...]:
        if BASE_TABLE not in tables:
            return ()
        return tuple(delta_version(self.lake, r.table) for r in self.rollups)

    def output_names(self, sql: str, tree: exp.Expression) -> list[str] | None:
        return self.memo.get_or(("names", sql), lambda: base_output_names(tree))

    def normalised(self, sql: str) -> str | None:
        """The log's normalised SQL, memoised per statement so the writer thread does not parse.

        Parsing on the writer thread held the interpreter lock while the next query ran (a
        repeated query, answered from the cache in about a millisecond, paid several).
        """
        from workbench.catalog.store import normalise_or_none

        return self.memo.get_or(("normalised", sql), lambda: normalise_or_none(sql))

    # --- cache ----------------------------------------------------------------------------
    def cache_key(self, tree: exp.Expression, ctx: pipeline.QueryContext) -> str | None:
        """The result-cache key; None (a miss) for a tree sqlglot cannot render canonically."""
        try:
            return cache_key(tree, ctx.versions, ctx.policy_fp)
        except SqlglotError as e:
            log.warning("no cache key (%s): %s", type(e).__name__, e)
            return None

    def cached(self, key: str, sql: str, versions: dict[str, int], start: float) -> QueryResult | None:
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

    def rollup_plan(self, tree: exp.Expression, versions: dict[str, int], policy: Policy) -> RoutePlan | str:
        """The plan over a fresh rollup covering ``tree``, or why there is none."""
        fresh = self.fresh_rollups(versions.get(BASE_TABLE, -1))
        if not fresh:
            stale = [r.name for r in self.rollups]
            return f"no rollup is fresh for sales@v{versions.get(BASE_TABLE)} ({', '.join(stale) or 'none configured'})"
        require = [c for c, _ in policy.row_filters] if policy.restricted else []
        sizes = {r.name: self.snapshot.meta(r.table).total_bytes for r in fresh}
        match = rewrite(tree, fresh, size=lambda r: sizes[r.name], require=require)
        if isinstance(match, str):
            return match
        try:
            policed = self.apply_policy(match.tree, policy, views=match.views)
        except AccessDenied as e:
            return f"the access policy cannot be applied to the rollup ({e.message})"
        sources = {view: r.table for view, r in match.views.items()}
        sources.update({t: t for t in self._lake_tables(policed)})
        scans = self.snapshot.plan(policed, sources)
        estimate = Estimate(
            files=sum(len(s.files) for s in scans.values()),
            bytes=sum(s.bytes for s in scans.values()),
            source="rollup delta log",
        )
        names = "+".join(r.name for r in match.rollups)
        reason = f"rollup {names} is fresh (sales@v{versions[BASE_TABLE]}): {match.reason}; {estimate.text()}"
        return RoutePlan(policed, scans, "duckdb", f"rollup:{names}", reason, estimate, match)

    @staticmethod
    def _lake_tables(tree: exp.Expression) -> set[str]:
        return {t.name.lower() for t in tree.find_all(exp.Table)} & set(LAKE_TABLES)

    # --- policy ---------------------------------------------------------------------------
    def policy(self, user: str) -> Policy:
        """The caller's access policy, memoised per user and policies-file modification time.

        Always a policy: without a policies file everyone is an administrator (all access);
        with one, an unknown user or an invalid file is an error, never "no policy".
        """
        path = self.settings.policies_path()
        stamp = path.stat().st_mtime_ns if path is not None else None
        return self.memo.get_or(("policy", user, str(path), stamp), lambda: policy_for_user(user, self.settings))

    def apply_policy(
        self, tree: exp.Expression, policy: Policy | None, views: dict[str, Rollup] | None = None
    ) -> exp.Expression:
        """Rewrite ``tree`` under ``policy`` and guard the result again (a policy never widens SQL)."""
        if policy is None:
            raise AccessDenied("no access policy was resolved for this query", "name the user (--user)")
        if policy.all_access:
            return tree
        schema: dict[str, list[str]] = dict(RETAIL_SCHEMA)
        for view, r in (views or {}).items():
            schema[view] = [*r.dimensions, *r.measures, "rollup_rows"]
        rewritten = apply_policy(tree, policy, schema)
        return check_expression(rewritten, "", [*self.tables(), *(views or {})]).expression

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


class Memo:
    """A small least-recently-used memo (guard results, policies, cache keys, plans)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def peek(self, key: Hashable) -> Any:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        return None

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def get_or(self, key: Hashable, make: Callable[[], T]) -> T:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]  # type: ignore[no-any-return]
        value = make()
        self.put(key, value)
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
