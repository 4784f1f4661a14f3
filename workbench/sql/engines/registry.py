"""The engines of one session, by name, created on first use (ibis-style: one interface, many engines).

The session owns one registry; the query pipeline gets it (not the session) and asks it for an
engine by the name a plan chose. Which engine a plan chooses is decided by capability
(``workbench.sql.engine_choice``); the names here are only the registry's keys and
``--engine``'s choices.
"""

from __future__ import annotations

from typing import Any

from workbench.config import Settings
from workbench.errors import ConfigError
from workbench.lake.storage import Lake
from workbench.sql.engines.base import Engine

#: engines in order of preference: the in-process default first
ENGINES = ("duckdb", "dask")


class Engines:
    """Engine instances of one session, kept for its lifetime (connections and clients are reused)."""

    names = ENGINES

    def __init__(self, lake: Lake, settings: Settings, dask_client: Any = None) -> None:
        self.lake = lake
        self.settings = settings
        self.dask_client = dask_client
        self._engines: dict[str, Engine] = {}

    def get(self, name: str) -> Engine:
        """The engine called ``name``, created on first use."""
        if name not in self._engines:
            self._engines[name] = self._create(name)
        return self._engines[name]

    def _create(self, name: str) -> Engine:
        if name == "duckdb":
            from workbench.sql.engines.duckdb import DuckDBEngine

            return DuckDBEngine(self.lake, self.settings)
        if name == "dask":
            from workbench.sql.engines.dask import DaskEngine

            return DaskEngine(self.lake, self.settings, client=self.dask_client)
        raise ConfigError(f"unknown engine {name!r}", f"use one of: auto, {', '.join(ENGINES)}")

    def close(self) -> None:
        for engine in self._engines.values():
            engine.close()
        self._engines.clear()
