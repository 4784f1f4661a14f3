"""The shared result cache on Redis: entries with a TTL plus one key set per lake table.

Redis is optional infrastructure: when it is unreachable every call degrades to "no cache"
(``get`` -> None, ``set`` -> no-op) with a single warning, and the next call after
``retry_interval_s`` tries again, so the cache comes back by itself when Redis does.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import pandas as pd
import redis

from workbench.cache.base import CachedResult, CacheStats, ResultCache

log = logging.getLogger(__name__)
T = TypeVar("T")


class RedisCache(ResultCache):
    """Result cache in Redis (``wbc:e:<key>`` values, ``wbc:t:<table>`` sets of keys)."""

    backend = "redis"

    def __init__(
        self,
        url: str,
        ttl_s: int,
        prefix: str = "wbc:",
        retry_interval_s: float = 2.0,
        max_entry_bytes: int = 64 * 2**20,
    ) -> None:
        super().__init__(ttl_s, max_entry_bytes)
        self.url = url
        self.prefix = prefix
        self.retry_interval_s = retry_interval_s
        self.client = redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=2.0)
        self._down = False
        self._retry_at = 0.0

    def __repr__(self) -> str:
        return f"RedisCache({self.client.connection_pool.connection_kwargs.get('host')!r})"

    def _entry(self, key: str) -> str:
        return f"{self.prefix}e:{key}"

    def _table(self, name: str) -> str:
        return f"{self.prefix}t:{name.lower()}"

    def _guard(self, op: Callable[[], T], default: T) -> T:
        """Run one Redis operation; any Redis failure becomes ``default`` and one warning."""
        if self._down and time.monotonic() < self._retry_at:
            return default
        for attempt in (1, 2):  # a restarted server leaves one dead pooled connection
            try:
                result = op()
            except redis.ConnectionError as e:
                if attempt == 1:
                    continue
                return self._failed(e, default)
            except redis.RedisError as e:
                return self._failed(e, default)
            if self._down:
                log.warning("redis result cache at %s is back", self._where())
                self._down = False
            return result
        return default  # pragma: no cover

    def _failed(self, e: Exception, default: T) -> T:
        if not self._down:
            log.warning("redis result cache at %s unavailable, continuing uncached: %s", self._where(), e)
        self._down = True
        self._retry_at = time.monotonic() + self.retry_interval_s
        return default

    def _where(self) -> str:
        kw = self.client.connection_pool.connection_kwargs
        return f"{kw.get('host')}:{kw.get('port')}"

    @property
    def available(self) -> bool:
        return self._guard(lambda: bool(self.client.ping()), False)

    def get(self, key: str) -> CachedResult | None:
        blob = self._guard(lambda: self.client.get(self._entry(key)), None)
        if blob is None:
            return self._count(None)
        data = bytes(blob)  # type: ignore[arg-type]
        return self._decode(key, data, len(data))

    def set(
        self,
        key: str,
        df: pd.DataFrame,
        meta: Mapping[str, Any] | None = None,
        tables: Iterable[str] = (),
        ttl_s: int | None = None,
    ) -> bool:
        encoded = self._encode(df, meta, tables, dt.datetime.now(dt.UTC))
        if encoded is None:
            return False
        blob, names = encoded
        ttl = max(1, int(self.ttl_s if ttl_s is None else ttl_s))

        def op() -> bool:
            pipe = self.client.pipeline(transaction=True)
            pipe.set(self._entry(key), blob, ex=ttl)
            for name in names:
                pipe.sadd(self._table(name), key)
                pipe.expire(self._table(name), max(ttl, self.ttl_s))
            pipe.execute()
            return True

        ok = self._guard(op, False)
        if ok:
            self.sets += 1
        return ok

    def invalidate(self, key: str) -> None:
        if self._guard(lambda: int(self.client.delete(self._entry(key))), 0):  # type: ignore[arg-type]
            self.invalidations += 1

    def invalidate_tables(self, names: Iterable[str]) -> int:
        table_keys = [self._table(n) for n in {n.lower() for n in names}]
        if not table_keys:
            return 0

        def op() -> int:
            keys: set[bytes] = set()
            for tk in table_keys:
                keys |= self.client.smembers(tk)  # type: ignore[arg-type]
            entry_keys = [self._entry(k.decode()) for k in keys]
            removed = int(self.client.delete(*entry_keys)) if entry_keys else 0  # type: ignore[arg-type]
            self.client.delete(*table_keys)
            return removed

        removed = self._guard(op, 0)
        self.invalidations += removed
        return removed

    def clear(self) -> None:
        def op() -> None:
            batch = list(self.client.scan_iter(match=f"{self.prefix}*", count=1000))
            if batch:
                self.client.delete(*batch)

        self._guard(op, None)

    def stats(self) -> CacheStats:
        def op() -> tuple[int, int]:
            keys = list(self.client.scan_iter(match=f"{self.prefix}e:*", count=1000))
            pipe = self.client.pipeline(transaction=False)
            for k in keys[:10_000]:
                pipe.strlen(k)
            return len(keys), int(sum(pipe.execute())) if keys else 0

        entries, size = self._guard(op, (0, 0))
        return CacheStats(
            self.backend,
            not self._down,
            entries,
            size,
            self.hits,
            self.misses,
            self.sets,
            self.invalidations,
            {"url": self._where()},
        )

    def close(self) -> None:
        self.client.close()
