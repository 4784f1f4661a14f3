"""The query path as a declared pipeline: every SQL statement takes the steps in :data:`STEPS`.

Like sqlglot's optimizer ``RULES`` and :data:`workbench.sql.rewrites.PASSES`, each step is a
small function over one :class:`QueryContext`, listed once, in order::

    guard -> access_policy -> table_versions -> cache_lookup -> recall_plan -> rollup_rewrite
    -> police_tree -> prune -> estimate -> choose_engine -> remember_plan -> execute
    -> restore_names -> cache_store -> record

A step reads what earlier steps left on the context and adds its own part. Once a step has
the answer (a cache hit) or a step fails, the remaining steps are skipped except ``record``,
so every query, answered, refused or failed, is recorded exactly once. The access policy is
not optional: ``access_policy`` always resolves one (admins get an all-access policy) and
``police_tree`` rewrites whichever tree runs; a step that cannot apply it raises.

The steps use the :class:`~workbench.sql.router.Router`'s services (catalog, caches,
snapshot, engines); nothing here knows the session.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd
from sqlglot import exp

from workbench.errors import AccessDenied, UnsupportedQuery, WorkbenchError
from workbench.observability.recording import QueryOutcome
from workbench.security.policies import Policy, policy_fingerprint
from workbench.sql.engine_choice import choose_engine as pick_engine
from workbench.sql.engines.base import PURE_PREPARE, Limits
from workbench.sql.guard import GuardedQuery, check_sql
from workbench.sql.result import QueryResult
from workbench.sql.rollups import BASE_TABLE
from workbench.sql.route_plan import RoutePlan
from workbench.sql.versions import delta_version

if TYPE_CHECKING:
    from workbench.sql.router import Router


@dataclass
class QueryContext:
    """One statement on its way through :data:`STEPS` (what was asked, then what was found)."""

    sql: str
    user: str
    engine: str = "auto"
    explain: bool = False
    use_cache: bool = True
    use_rollups: bool = True
    question: str | None = None
    start: float = field(default_factory=time.perf_counter)
    guarded: GuardedQuery | None = None
    policy: Policy | None = None
    policy_fp: str = ""
    versions: dict[str, int] = field(default_factory=dict)
    cache_key: str | None = None
    plan: RoutePlan | None = None
    #: why no rollup answers (shown in the reason), or "" while one may
    no_rollup: str = ""
    tree: exp.Expression | None = None
    result: QueryResult | None = None
    error: WorkbenchError | None = None
    #: the plan came from the memo or the rollup step: the other planning steps have nothing to do
    planned: bool = False
    #: the plan came from the memo (a rollup plan made by this query is remembered like any other)
    recalled: bool = False
    #: answered from a cache: only the steps in :data:`ALWAYS` still run
    answered: bool = False

    def require_guarded(self) -> GuardedQuery:
        assert self.guarded is not None, "the guard step runs first"
        return self.guarded

    def require_policy(self) -> Policy:
        """The resolved policy; without one nothing may be looked up, planned or run (fail closed)."""
        if self.policy is None:
            raise AccessDenied("no access policy was resolved for this query", "name the user (--user)")
        return self.policy

    def require_plan(self) -> RoutePlan:
        assert self.plan is not None, "the planning steps run before execute"
        return self.plan


Step = Callable[["Router", QueryContext], None]


# --- guard and identity --------------------------------------------------------------------------
def guard(r: Router, ctx: QueryContext) -> None:
    """The sqlglot allowlist on the SQL as written (read-only, known tables, safe functions)."""
    ctx.guarded = r.memo.get_or(("guard", ctx.sql), lambda: check_sql(ctx.sql, r.tables()))


def access_policy(r: Router, ctx: QueryContext) -> None:
    """The caller's policy, always: a missing or broken policies file is an error, never "no policy"."""
    ctx.policy = r.policy(ctx.user)
    ctx.policy_fp = policy_fingerprint(ctx.policy)


def table_versions(r: Router, ctx: QueryContext) -> None:
    """The Delta version of every table read: part of the cache key and of the plan memo."""
    ctx.versions = {t: delta_version(r.lake, t) for t in sorted(ctx.require_guarded().tables)}


# --- cache ---------------------------------------------------------------------------------------
def cache_lookup(r: Router, ctx: QueryContext) -> None:
    """``--engine auto`` only: session memory, then the shared cache (a miss on any outage)."""
    if ctx.engine != "auto" or not ctx.use_cache or ctx.explain:
        return
    ctx.require_policy()  # a key without the policy fingerprint would share results across users
    key_memo = ("key", ctx.sql, tuple(ctx.versions.items()), ctx.policy_fp)
    ctx.cache_key = r.memo.get_or(key_memo, lambda: r.cache_key(ctx.require_guarded().expression, ctx))
    if ctx.cache_key is not None:
        ctx.result = r.cached(ctx.cache_key, ctx.sql, ctx.versions, ctx.start)
        ctx.answered = ctx.result is not None


def cache_store(r: Router, ctx: QueryContext) -> None:
    """Keep a complete answer (not a truncated one) in session memory and the shared cache."""
    result = ctx.result
    if ctx.cache_key is None or result is None or result.truncated or ctx.answered:
        return
    meta = {"engine": result.engine, "route": result.route, "reason": result.reason}
    r.local.put(ctx.cache_key, result.df, meta)
    r.cache.set(ctx.cache_key, result.df, meta, tables=sorted(ctx.versions))


# --- planning (memoised per statement, table versions, engine and policy) ------------------------
def _plan_memo_key(r: Router, ctx: QueryContext) -> tuple[object, ...]:
    ctx.require_policy()  # plans are per policy: one made under another user's rules is never reused
    tables = ctx.require_guarded().tables
    return (
        "plan",
        ctx.sql,
        tuple(ctx.versions.items()),
        r.rollup_versions(tables),
        ctx.engine,
        ctx.use_rollups,
        ctx.policy_fp,
    )


def recall_plan(r: Router, ctx: QueryContext) -> None:
    """A plan made for the same statement over the same versions is reused as it is."""
    found = r.memo.peek(_plan_memo_key(r, ctx))
    if found is not None:
        ctx.plan, ctx.planned, ctx.recalled = found, True, True
    ctx.tree = ctx.require_guarded().expression


def rollup_rewrite(r: Router, ctx: QueryContext) -> None:
    """Answer from a fresh rollup when one covers the query (policy applied to the rollup)."""
    if ctx.planned:
        return
    tables = ctx.require_guarded().tables
    if ctx.engine != "auto":
        ctx.no_rollup = f"engine {ctx.engine} requested"
    elif not ctx.use_rollups:
        ctx.no_rollup = "rollups disabled for this query"
    elif BASE_TABLE not in tables:
        ctx.no_rollup = "the query does not read sales"
    else:
        found = r.rollup_plan(ctx.require_guarded().expression, ctx.versions, ctx.require_policy())
        if isinstance(found, str):
            ctx.no_rollup = found
        else:
            ctx.plan, ctx.planned = found, True


def police_tree(r: Router, ctx: QueryContext) -> None:
    """The access policy rewrites the tree that will run, which is then guarded again."""
    if ctx.planned:
        return
    assert ctx.tree is not None
    ctx.tree = r.apply_policy(ctx.tree, ctx.require_policy())


def prune(r: Router, ctx: QueryContext) -> None:
    """Files each table contributes after partition pruning (from the Delta log)."""
    if ctx.planned:
        return
    assert ctx.tree is not None
    scans = r.snapshot.plan(ctx.tree, ctx.require_guarded().tables)
    ctx.plan = RoutePlan(ctx.tree, scans, engine="", route="", reason="")


def estimate(r: Router, ctx: QueryContext) -> None:
    """Bytes and rows to read, from catalog statistics (the Delta log when the catalog is down)."""
    if ctx.planned:
        return
    plan = ctx.require_plan()
    plan.estimate = r.estimate(plan.tree, plan.scans)


def choose_engine(r: Router, ctx: QueryContext) -> None:
    """Where the query runs, by capability and estimated cost (``workbench.sql.engine_choice``)."""
    if ctx.planned:
        return
    plan = ctx.require_plan()
    choice = pick_engine(plan.tree, ctx.engine, r.engine, r.engine_names, r.settings, plan.estimate.bytes, plan.scans)
    plan.engine, plan.route = choice.engine, choice.route
    plan.reason = f"{choice.reason}; {plan.estimate.text()}"
    if ctx.no_rollup and ctx.engine == "auto":
        plan.reason = f"no rollup: {ctx.no_rollup}; {plan.reason}"


def remember_plan(r: Router, ctx: QueryContext) -> None:
    """Keep the plan for the same statement over the same versions, a rollup's plan included.

    A rollup plan was not kept at first: each rollup-routed query matched the rollups again and
    opened every rollup's Delta table (~7 ms of a 9 ms answer at 10M rows, measured).
    """
    if not ctx.recalled:
        r.memo.put(_plan_memo_key(r, ctx), ctx.require_plan())


# --- running -------------------------------------------------------------------------------------
def execute(r: Router, ctx: QueryContext) -> None:
    """Run the plan on its engine, which first says whether it can run the tree correctly."""
    plan = ctx.require_plan()
    chosen = r.engine(plan.engine)
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
        if PURE_PREPARE in chosen.capabilities:
            plan.prepared[chosen.name] = (prepared, executed_sql)
    limits = Limits(r.settings.row_limit, r.settings.timeout_s)
    df = chosen.execute(prepared, plan.scans, limits) if not ctx.explain else pd.DataFrame()
    result = plan.result(df, chosen.name, ctx.sql, executed_sql)
    if ctx.explain:
        result.explain = plan.explain_header(chosen.name, result) + chosen.explain(prepared, plan.scans)
    if len(result.df) > limits.row_limit:
        result.df = result.df.iloc[: limits.row_limit]
        result.truncated = True
    result.elapsed_ms = (time.perf_counter() - ctx.start) * 1000
    ctx.result = result


def restore_names(r: Router, ctx: QueryContext) -> None:
    """A rollup's answer gets the column names the query has on the base tables."""
    plan, result = ctx.require_plan(), ctx.result
    if result is None or not plan.route.startswith("rollup:") or ctx.explain:
        return
    names = r.output_names(ctx.sql, ctx.require_guarded().expression)
    if names is not None and len(names) == len(result.df.columns):
        result.df.columns = names  # same names whichever route answered


def record(r: Router, ctx: QueryContext) -> None:
    """Metrics, query log and audit: once per statement, whatever the outcome."""
    plan = ctx.plan
    r.recorder.record(
        QueryOutcome(
            user=ctx.user,
            sql=ctx.sql,
            question=ctx.question,
            policy_fp=ctx.policy_fp,
            result=ctx.result,
            error=ctx.error,
            route=plan.route if plan is not None else None,
            engine=plan.engine if plan is not None else None,
            seconds=time.perf_counter() - ctx.start,
        )
    )


#: the query path, in order (see the module docstring); ``record`` always runs
STEPS: tuple[Step, ...] = (
    guard,
    access_policy,
    table_versions,
    cache_lookup,
    recall_plan,
    rollup_rewrite,
    police_tree,
    prune,
    estimate,
    choose_engine,
    remember_plan,
    execute,
    restore_names,
    cache_store,
    record,
)

#: steps that still run once the context has its answer or its error
ALWAYS = frozenset({cache_store, record})


def run(r: Router, ctx: QueryContext, steps: tuple[Step, ...] = STEPS) -> QueryResult:
    """Take ``ctx`` through ``steps``; returns the result or raises the step's error."""
    for step in steps:
        if ctx.error is not None and step is not record:
            continue  # a failed statement is only recorded
        if ctx.answered and step not in ALWAYS:
            continue
        try:
            step(r, ctx)
        except WorkbenchError as e:
            ctx.error = e
    if ctx.error is not None:
        raise ctx.error
    assert ctx.result is not None, "execute or cache_lookup answers every statement"
    return ctx.result
