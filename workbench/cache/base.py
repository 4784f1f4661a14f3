"""The one result-cache interface; Redis and the embedded on-disk cache implement it.

A cache is an accelerator and never a source of failure: implementations swallow their own
backend errors (with one warning) and behave as an empty cache.
"""

from __future__ import annotations

import abc
import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

_log = logging.getLogger("workbench.cache")


@dataclass
class CachedResult:
    """A cached query result and what produced it (columns, engine, route, elapsed_ms, ...)."""

    key: str
    df: pd.DataFrame
    meta: dict[str, Any]
    tables: list[str]
    created_at: dt.datetime
    size_bytes: int

    @property
    def age_s(self) -> float:
        return (dt.datetime.now(dt.UTC) - self.created_at).total_seconds()


@dataclass
class CacheStats:
    backend: str
    available: bool
    entries: int
    bytes: int
    hits: int = 0
    misses: int = 0
    sets: int = 0
    invalidations: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "hit_rate": self.hit_rate}


class ResultCache(abc.ABC):
    """get / set / invalidate / invalidate_tables / stats over serialised DataFrames."""

    backend = "abstract"

    def __init__(self, ttl_s: int, max_entry_bytes: int = 64 * 2**20) -> None:
        self.ttl_s = ttl_s
        self.max_entry_bytes = max_entry_bytes
        self.hits = self.misses = self.sets = self.invalidations = 0

    @abc.abstractmethod
    def get(self, key: str) -> CachedResult | None:
        """The cached result, or None (missing, expired, or the backend is unavailable)."""

    @abc.abstractmethod
    def set(
        self,
        key: str,
        df: pd.DataFrame,
        meta: Mapping[str, Any] | None = None,
        tables: Iterable[str] = (),
        ttl_s: int | None = None,
    ) -> bool:
        """Store a result; False when skipped (too large, backend unavailable)."""

    @abc.abstractmethod
    def invalidate(self, key: str) -> None:
        """Drop one entry."""

    @abc.abstractmethod
    def invalidate_tables(self, names: Iterable[str]) -> int:
        """Drop every entry that read any of these tables (called by ingest); returns how many."""

    @abc.abstractmethod
    def clear(self) -> None:
        """Drop everything."""

    @abc.abstractmethod
    def stats(self) -> CacheStats:
        """Counters of this process plus the backend's entry count and size."""

    def close(self) -> None:  # noqa: B027  (optional for implementations)
        """Release connections."""

    def _count(self, result: CachedResult | None) -> CachedResult | None:
        if result is None:
            self.misses += 1
        else:
            self.hits += 1
        return result

    # --- shared by the backends: one entry format, one corrupt-entry policy, one size cap ----------
    def _decode(self, key: str, blob: bytes, size: int) -> CachedResult | None:
        """An entry's result; a corrupt entry is a miss and is dropped (whatever the backend)."""
        from workbench.cache import serial

        try:
            df, meta, tables, created = serial.unpack(blob)
        except Exception as e:
            _log.warning("dropping unreadable cache entry %s: %s", key[:12], e)
            self.invalidate(key)
            return self._count(None)
        return self._count(CachedResult(key, df, meta, tables, created, size))

    def _encode(
        self, df: pd.DataFrame, meta: Mapping[str, Any] | None, tables: Iterable[str], created: dt.datetime
    ) -> tuple[bytes, list[str]] | None:
        """The entry bytes and the lower-cased table names; None when over ``max_entry_bytes``."""
        from workbench.cache import serial

        names = sorted({t.lower() for t in tables})
        blob = serial.pack(df, meta or {}, names, created)
        if len(blob) > self.max_entry_bytes:
            _log.info("result of %d bytes not cached (limit %d)", len(blob), self.max_entry_bytes)
            return None
        return blob, names
