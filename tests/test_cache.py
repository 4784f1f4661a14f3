"""Result cache tests, one suite over the embedded disk cache and a real redis-server."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.fixtures.redis import RedisServer
from workbench.cache import CachedResult, ResultCache, cache_key, open_cache
from workbench.cache.disk import DiskCache
from workbench.cache.redis_cache import RedisCache
from workbench.config import get_settings

BACKENDS = ["disk", pytest.param("redis", marks=pytest.mark.redis)]


@pytest.fixture(params=BACKENDS)
def cache(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ResultCache]:
    if request.param == "redis":
        c: ResultCache = RedisCache(request.getfixturevalue("redis_url"), ttl_s=60, max_entry_bytes=200_000)
    else:
        c = DiskCache(tmp_path / "cache.db", ttl_s=60, max_entry_bytes=200_000)
    yield c
    c.close()


def _frame(n: int = 50) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "region": [["North", "South", "East"][i % 3] for i in range(n)],
            "day": pd.date_range("2024-01-01", periods=n, freq="D").date,
            "revenue": [i * 1.5 for i in range(n)],
            "orders": pd.array(range(n), dtype="int64"),
        }
    )


def test_round_trip_keeps_frame_and_meta(cache: ResultCache) -> None:
    df = _frame()
    meta = {"engine": "duckdb", "route": "duckdb", "elapsed_ms": 12.5}
    assert cache.get("k1") is None
    assert cache.set("k1", df, meta, tables=["Sales"]) is True
    hit = cache.get("k1")
    assert isinstance(hit, CachedResult)
    pd.testing.assert_frame_equal(hit.df, df)
    assert hit.meta == {"columns": ["region", "day", "revenue", "orders"], **meta}
    assert hit.tables == ["sales"]
    assert hit.created_at <= dt.datetime.now(dt.UTC) and hit.size_bytes > 0
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.sets, stats.entries) == (1, 1, 1, 1)
    assert stats.available and stats.bytes > 0


def test_invalidate_one_key_and_by_table(cache: ResultCache) -> None:
    cache.set("a", _frame(3), tables=["sales"])
    cache.set("b", _frame(3), tables=["sales", "stores"])
    cache.set("c", _frame(3), tables=["products"])
    cache.invalidate("c")
    assert cache.get("c") is None
    assert cache.invalidate_tables(["SALES"]) == 2
    assert cache.get("a") is None and cache.get("b") is None
    cache.set("d", _frame(3), tables=["stores"])
    assert cache.invalidate_tables([]) == 0
    assert cache.get("d") is not None
    cache.clear()
    assert cache.get("d") is None and cache.stats().entries == 0


def test_entries_expire(cache: ResultCache) -> None:
    cache.set("short", _frame(2), ttl_s=1)
    cache.set("long", _frame(2))
    time.sleep(1.3)
    assert cache.get("short") is None
    assert cache.get("long") is not None


def test_oversized_results_are_not_cached(cache: ResultCache) -> None:
    big = pd.DataFrame({"x": [f"row-{i}-" * 8 for i in range(20_000)]})
    assert cache.set("big", big) is False
    assert cache.get("big") is None


def test_equivalent_sql_shares_a_key() -> None:
    versions = {"sales": 3}
    a = cache_key(
        "select s.region, sum(revenue) r from sales s where year = 2024 and region in ('b','a') group by 1",
        versions,
        "analyst",
    )
    b = cache_key(
        """SELECT  x.REGION,
                   SUM(revenue) AS r   -- total
           FROM Sales AS x WHERE region IN ('a', 'b') AND year = 2024 GROUP BY 1""",
        {"SALES": 3},
        "analyst",
    )
    assert a == b
    assert cache_key("select 1 from sales", versions, "analyst") != cache_key(
        "select 2 from sales", versions, "analyst"
    )


def test_key_changes_with_table_version_and_policy() -> None:
    sql = "select region, sum(revenue) from sales group by 1"
    base = cache_key(sql, {"sales": 3}, "analyst")
    assert cache_key(sql, {"sales": 4}, "analyst") != base
    assert cache_key(sql, {"sales": 3}, "viewer:region=North") != base
    assert cache_key(sql, {"sales": 3, "stores": 1}, "analyst") != base


def test_open_cache_follows_settings(redis_url: str) -> None:
    assert isinstance(open_cache(get_settings()), DiskCache)
    assert isinstance(open_cache(get_settings(redis_url=redis_url)), RedisCache)


def test_disk_cache_on_an_unusable_path_degrades(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with caplog.at_level(logging.WARNING):
        cache = DiskCache(blocker / "cache.db", ttl_s=60)
        assert cache.set("k", _frame(2)) is False
        assert cache.get("k") is None
    assert not cache.stats().available
    assert len([r for r in caplog.records if "unavailable" in r.message]) == 1


def test_disk_cache_survives_its_file_being_deleted_and_serves_other_threads(tmp_path: Path) -> None:
    """Connections are kept per thread; a deleted file is recreated rather than failing forever."""
    import threading

    cache = DiskCache(tmp_path / "cache.db", ttl_s=60)
    try:
        df = _frame(5)
        assert cache.set("k", df, tables=["sales"])
        (tmp_path / "cache.db").unlink()
        for suffix in ("-wal", "-shm"):
            (tmp_path / f"cache.db{suffix}").unlink(missing_ok=True)
        assert cache.get("k") is None  # gone with the file, and not an error
        assert cache.set("k", df, tables=["sales"])
        seen: list[pd.DataFrame | None] = []
        worker = threading.Thread(target=lambda: seen.append(getattr(cache.get("k"), "df", None)))
        worker.start()
        worker.join()
        assert seen[0] is not None
        pd.testing.assert_frame_equal(seen[0], df)
        assert cache.stats().available and cache.stats().entries == 1
    finally:
        cache.close()


@pytest.mark.redis
def test_redis_outage_degrades_to_uncached_and_recovers(
    redis_server_factory: Callable[[], RedisServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = redis_server_factory()
    cache = RedisCache(server.url, ttl_s=60, retry_interval_s=0)
    assert cache.set("k", _frame(5), tables=["sales"])
    assert cache.get("k") is not None

    server.stop()
    with caplog.at_level(logging.WARNING):
        assert cache.get("k") is None
        assert cache.set("k2", _frame(5), tables=["sales"]) is False
        assert cache.invalidate_tables(["sales"]) == 0
        assert cache.get("k2") is None
        assert cache.stats().available is False
    warnings = [r for r in caplog.records if "unavailable" in r.message]
    assert len(warnings) == 1, [r.message for r in caplog.records]

    server.start()  # same port, empty (no persistence)
    assert cache.get("k") is None
    assert cache.set("k3", _frame(5), tables=["sales"]) is True
    hit = cache.get("k3")
    assert hit is not None
    pd.testing.assert_frame_equal(hit.df, _frame(5))
    assert cache.stats().available is True
    cache.close()
