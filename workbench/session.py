"""``workbench.connect()``: one session over a lake, reused across queries.

A :class:`Workbench` keeps one DuckDB connection, one Dask client (created on first use),
and the Delta metadata of the lake tables (refreshed when a table's version changes), so a
notebook asking many questions pays the setup once. Every query takes the same path, the
router (``workbench.sql.router``): guard -> cache -> rollup rewrite -> access policy ->
pruning -> engine choice -> engine support check -> run -> query log and audit.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from workbench.config import Settings, get_settings
from workbench.errors import ConfigError
from workbench.lake.storage import Lake
from workbench.sql.engines.base import Engine
from workbench.sql.guard import LAKE_TABLES
from workbench.sql.result import QueryResult
from workbench.sql.scan import Snapshot

if TYPE_CHECKING:
    from workbench.sql.router import Router

ENGINES = ("duckdb", "dask")


class Workbench:
    """A session: SQL over the lake on DuckDB in process or on the Dask cluster."""

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
        """Tables SQL may read: the reference tables and the registered ones (workbench.lake.register)."""
        from workbench.lake.register import registered_names

        return set(LAKE_TABLES) | registered_names(self.lake)

    # --- queries -------------------------------------------------------------------------------
    @cached_property
    def router(self) -> Router:
        from workbench.sql.router import Router

        return Router(self)

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
        """Run one read-only SELECT through the router (cache -> rollup -> DuckDB -> Dask cluster).

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

        The router applies them on every query (to the rollup it picked, too); this is the same
        rewrite for callers that build trees themselves. The result is guarded again, so a policy
        can never widen what SQL may do.
        """
        return self.router.apply_policy(tree, self.router.policy(user))

    def close(self) -> None:
        if "router" in self.__dict__:
            self.router.close()
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
