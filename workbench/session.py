"""``workbench.connect()``: one session over a lake, reused across queries.

A :class:`Workbench` keeps one DuckDB connection, one Dask client (created on first use),
and the Delta metadata of the lake tables (refreshed when a table's version changes), so a
notebook asking many questions pays the setup once. Every query takes the same path:
guard -> access policy -> pruning -> engine choice -> engine support check -> run.
"""

from __future__ import annotations

import time
from typing import Any

from sqlglot import exp

from workbench.config import Settings, get_settings
from workbench.errors import ConfigError, UnsupportedQuery
from workbench.lake.storage import Lake
from workbench.sql.engines.base import Engine, Limits
from workbench.sql.guard import LAKE_TABLES, check_expression, check_sql
from workbench.sql.policy import choose_engine
from workbench.sql.result import QueryResult
from workbench.sql.scan import Snapshot

ENGINES = ("duckdb", "dask")


class Workbench:
    """A session: SQL over the lake on DuckDB or dask-sql."""

    def __init__(self, lake: Lake, settings: Settings, dask_client: Any = None) -> None:
        self.lake = lake
        self.settings = settings
        self.snapshot = Snapshot(lake)
        self._engines: dict[str, Engine] = {}
        self._dask_client = dask_client

    @classmethod
    def open(cls, lake: str | None = None, dask_client: Any = None, **overrides: Any) -> Workbench:
        settings = get_settings(lake=lake, **overrides) if (lake or overrides) else get_settings()
        return cls(Lake(lake, settings), settings, dask_client=dask_client)

    def __repr__(self) -> str:
        return f"Workbench({self.lake.url!r})"

    # --- engines -----------------------------------------------------------------------------
    def engine(self, name: str) -> Engine:
        """The engine called ``name``, created on first use and kept for the session."""
        if name not in self._engines:
            if name == "duckdb":
                from workbench.sql.engines.duckdb import DuckDBEngine

                self._engines[name] = DuckDBEngine(self.lake, self.settings)
            elif name == "dask":
                from workbench.sql.engines.dask import DaskEngine

                self._engines[name] = DaskEngine(self.lake, self.settings, client=self._dask_client)
            else:
                raise ConfigError(f"unknown engine {name!r}", f"use one of: auto, {', '.join(ENGINES)}")
        return self._engines[name]

    def tables(self) -> set[str]:
        return set(LAKE_TABLES)

    # --- queries -------------------------------------------------------------------------------
    def sql(self, sql: str, engine: str = "auto", explain: bool = False, user: str | None = None) -> QueryResult:
        """Run one read-only SELECT; refuse (never answer wrongly) what the engine cannot do."""
        if engine not in ("auto", *ENGINES):
            raise ConfigError(f"unknown engine {engine!r}", f"use one of: auto, {', '.join(ENGINES)}")
        start = time.perf_counter()
        guarded = check_sql(sql, self.tables())
        tree = self.apply_policies(guarded.expression, user or self.settings.user)
        scans = self.snapshot.plan(tree, guarded.tables)
        choice = choose_engine(tree, scans, engine, self.engine, self.settings)
        chosen = self.engine(choice.engine)
        why_not = chosen.supports(tree)
        if why_not is not None:
            raise UnsupportedQuery(
                f"the {chosen.name} engine cannot run this query correctly: {why_not}",
                "run it with --engine duckdb, or rewrite the construct named above",
            )
        prepared = chosen.prepare(tree)
        limits = Limits(self.settings.row_limit, self.settings.timeout_s)
        result = QueryResult(
            df=chosen.execute(prepared, scans, limits) if not explain else _empty(),
            engine=chosen.name,
            sql=sql,
            route=choice.route,
            reason=choice.reason,
            files_scanned=sum(len(s.files) for s in scans.values()),
            bytes_scanned=sum(s.bytes for s in scans.values()),
            executed_sql=prepared.sql(dialect="duckdb"),
        )
        if explain:
            result.explain = chosen.explain(prepared, scans)
        if len(result.df) > limits.row_limit:
            result.df = result.df.iloc[: limits.row_limit]
            result.truncated = True
        result.elapsed_ms = (time.perf_counter() - start) * 1000
        return result

    def apply_policies(self, tree: exp.Expression, user: str) -> exp.Expression:
        """The single call site of access policies (row filters, column masks) for ``user``.

        ``workbench.security.policies`` (another module) rewrites the tree; the result goes
        through the guard again so a policy can never widen what SQL may do.
        """
        try:
            from workbench.security import policies  # type: ignore[attr-defined]
        except ImportError:
            return tree
        rewrite = getattr(policies, "apply_policies", None) or getattr(policies, "rewrite_for_user", None)
        if rewrite is None:
            return tree
        rewritten = rewrite(tree, user)
        return check_expression(rewritten, "", self.tables()).expression

    def close(self) -> None:
        for eng in self._engines.values():
            eng.close()
        self._engines.clear()

    def __enter__(self) -> Workbench:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _empty() -> Any:
    import pandas as pd

    return pd.DataFrame()
