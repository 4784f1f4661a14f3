"""``workbench.connect()``: one session over a lake, reused across queries.

A :class:`Workbench` keeps one DuckDB connection, one Dask client (created on first use),
and the Delta metadata of the lake tables (refreshed when a table's version changes), so a
notebook asking many questions pays the setup once. Every query takes the same path, the
declared pipeline ``workbench.sql.pipeline.STEPS`` (guard -> access policy -> cache -> rollup
rewrite -> prune -> estimate -> choose engine -> execute -> cache store -> record), over the
services of a :class:`~workbench.sql.router.Router` this session builds. Nothing below the
session calls back into it: the router gets the settings, the lake, the snapshot, the table
list and the engine registry as plain values and callables.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from workbench.config import Settings, get_settings
from workbench.errors import ConfigError
from workbench.lake.storage import Lake
from workbench.sql.engines.base import Engine
from workbench.sql.engines.registry import ENGINES, Engines
from workbench.sql.guard import LAKE_TABLES
from workbench.sql.result import QueryResult
from workbench.sql.scan import Snapshot

if TYPE_CHECKING:
    from workbench.sql.router import Router


class Workbench:
    """A session: SQL over the lake on DuckDB or dask-sql."""

    def __init__(self, lake: Lake, settings: Settings, dask_client: Any = None) -> None:
        self.lake = lake
        self.settings = settings
        self.snapshot = Snapshot(lake)
        self.engines = Engines(lake, settings, dask_client)

    @classmethod
    def open(cls, lake: str | None = None, dask_client: Any = None, **overrides: Any) -> Workbench:
        settings = get_settings(lake=lake, **overrides) if (lake or overrides) else get_settings()
        return cls(Lake(lake, settings), settings, dask_client=dask_client)

    def __repr__(self) -> str:
        return f"Workbench({self.lake.url!r})"

    # --- engines -----------------------------------------------------------------------------
    def engine(self, name: str) -> Engine:
        """The engine called ``name``, created on first use and kept for the session."""
        return self.engines.get(name)

    def tables(self) -> set[str]:
        """Tables SQL may read: the reference tables and the registered ones (workbench.lake.register)."""
        return queryable_tables(self.lake)

    # --- queries -------------------------------------------------------------------------------
    @cached_property
    def router(self) -> Router:
        from workbench.sql.router import Router

        lake = self.lake
        return Router(
            self.settings, self.lake, self.snapshot, lambda: queryable_tables(lake), self.engines.get, ENGINES
        )

    def sql(
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
        """Run one read-only SELECT through the query pipeline (cache -> rollup -> DuckDB -> cluster).

        Refuses (never answers wrongly) what the engine cannot do; ``route``/``reason`` on the
        result say which path answered and why. ``use_cache``/``use_rollups`` switch those
        steps off for one query (benchmarks, tests); an explicit ``engine`` skips both.
        """
        if engine not in ("auto", *ENGINES):
            raise ConfigError(f"unknown engine {engine!r}", f"use one of: auto, {', '.join(ENGINES)}")
        return self.router.run(
            sql, engine, explain, user, use_cache=use_cache, use_rollups=use_rollups, question=question
        )

    def ask(self, question: str, session: str | None = None, user: str | None = None) -> Any:
        """Ask the assistant a question in plain language; returns an ``Answer``.

        ``session`` keeps conversation memory, so follow-ups ("and in 2023?") refine the
        previous query. The answer's SQL runs through :meth:`sql`, so guard, policies, cache
        and rollups apply exactly as for hand-written SQL.
        """
        from workbench.assistant import ask

        return ask(self, question, session=session, user=user)

    def apply_policies(self, tree: exp.Expression, user: str) -> exp.Expression:
        """Access policies (row filters, column masks) of ``user`` applied to ``tree``.

        The pipeline applies them on every query (to the rollup it picked, too); this is the same
        rewrite for callers that build trees themselves. The result is guarded again, so a policy
        can never widen what SQL may do.
        """
        return self.router.apply_policy(tree, self.router.policy(user))

    def flush(self) -> None:
        """Wait until this session's query-log and audit rows are written (tests, shutdown)."""
        if "router" in self.__dict__:
            self.router.flush()

    def close(self) -> None:
        if "router" in self.__dict__:
            self.router.close()
        self.engines.close()

    def __enter__(self) -> Workbench:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def queryable_tables(lake: Lake) -> set[str]:
    """Tables SQL over ``lake`` may read: the reference tables and the registered ones."""
    from workbench.lake.register import registered_names

    return set(LAKE_TABLES) | registered_names(lake)
