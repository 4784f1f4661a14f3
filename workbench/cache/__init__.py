"""Result cache: one interface (:class:`ResultCache`), Redis or an embedded on-disk cache.

Typical wiring in the router::

    cache = open_cache(settings)
    key = cache_key(sql, catalog.table_versions(referenced_tables(sql)), policy_fp)
    hit = cache.get(key)                      # CachedResult | None, never raises
    ...
    cache.set(key, df, {"engine": "duckdb", "route": "duckdb", "elapsed_ms": 12.3}, tables=[...])
    cache.invalidate_tables(["sales"])        # after an ingest commits
"""

from __future__ import annotations

from workbench.cache.base import CachedResult, CacheStats, ResultCache
from workbench.cache.key import cache_key
from workbench.cache.normalise import normalise_sql, referenced_tables
from workbench.config import Settings, get_settings


def open_cache(settings: Settings | None = None) -> ResultCache:
    """Redis when ``redis_url`` is set, else a SQLite file ``cache.db`` in the workbench home."""
    settings = settings or get_settings()
    if settings.redis_url:
        from workbench.cache.redis_cache import RedisCache

        return RedisCache(settings.redis_url, ttl_s=settings.cache_ttl_s)
    from workbench.cache.disk import DiskCache

    return DiskCache(settings.home_path / "cache.db", ttl_s=settings.cache_ttl_s)


__all__ = [
    "CacheStats",
    "CachedResult",
    "ResultCache",
    "cache_key",
    "normalise_sql",
    "open_cache",
    "referenced_tables",
]
