"""The embedded result cache: one SQLite file in the workbench home, no server, no dependency.

SQLite gives atomic writes and safe sharing between the notebook, the dashboard and CLI
processes of one user; an index table maps each lake table to the entries that read it so an
ingest can drop exactly those.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.cache.base import CachedResult, CacheStats, ResultCache

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY, value BLOB NOT NULL, created REAL NOT NULL, expires REAL NOT NULL, size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_expires ON entries (expires);
CREATE TABLE IF NOT EXISTS entry_tables (table_name TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (table_name, key));
CREATE INDEX IF NOT EXISTS entry_tables_key ON entry_tables (key);
"""


def _prepare(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA journal_mode=WAL")  # readers never block the writer (persistent in the file)
    db.executescript(_SCHEMA)


class DiskCache(ResultCache):
    """Result cache in a SQLite file; expired entries are purged as new ones are written."""

    backend = "disk"

    def __init__(self, path: Path, ttl_s: int, max_bytes: int = 1 * 2**30, max_entry_bytes: int = 64 * 2**20) -> None:
        super().__init__(ttl_s, max_entry_bytes)
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._warned = False
        self._ok = True
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[sqlite3.Connection] = []
        self._pid = os.getpid()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with closing(sqlite3.connect(self.path, timeout=10)) as db:
                _prepare(db)
        except (sqlite3.Error, OSError) as e:
            self._fail(e)

    def __repr__(self) -> str:
        return f"DiskCache({str(self.path)!r})"

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """One transaction on this thread's connection.

        Connections are kept per thread (and per process, for forked workers): opening one per
        call cost more than the lookup itself on a cache hit. A connection that saw an error
        is dropped, so a deleted or replaced file is reopened on the next call.
        """
        db = self._connection()
        try:
            with db:  # one transaction
                yield db
        except (sqlite3.Error, OSError):
            self._forget(db)
            raise

    def _connection(self) -> sqlite3.Connection:
        if self._pid != os.getpid():  # a forked child: never touch (or close) the parent's connections
            self._pid, self._local, self._open = os.getpid(), threading.local(), []
        local = self._local
        db: sqlite3.Connection | None = getattr(local, "db", None)
        if db is None or not self.path.exists():
            if db is not None:
                self._forget(db)
            db = sqlite3.connect(self.path, timeout=10, check_same_thread=False)
            try:
                _prepare(db)  # idempotent: recreates a cache file deleted under a running session
            except sqlite3.Error:
                db.close()
                raise
            local.db = db
            with self._lock:
                self._open.append(db)
        return db

    def _forget(self, db: sqlite3.Connection) -> None:
        with self._lock:
            if db in self._open:
                self._open.remove(db)
        if getattr(self._local, "db", None) is db:
            self._local.db = None
        try:
            db.close()
        except sqlite3.Error:
            pass

    def close(self) -> None:
        with self._lock:
            open_, self._open = self._open, []
        for db in open_:
            try:
                db.close()
            except sqlite3.Error:
                pass
        self._local = threading.local()

    def _fail(self, e: Exception) -> None:
        self._ok = False
        if not self._warned:
            log.warning("result cache %s unavailable, continuing uncached: %s", self.path, e)
            self._warned = True

    def _recovered(self) -> None:
        if not self._ok:
            log.warning("result cache %s available again", self.path)
        self._ok, self._warned = True, False

    def get(self, key: str) -> CachedResult | None:
        try:
            with self._db() as db:
                row = db.execute("SELECT value, expires, size FROM entries WHERE key = ?", (key,)).fetchone()
                if row is not None and row[1] < time.time():
                    db.execute("DELETE FROM entries WHERE key = ?", (key,))
                    db.execute("DELETE FROM entry_tables WHERE key = ?", (key,))
                    row = None
            self._recovered()
        except (sqlite3.Error, OSError) as e:
            self._fail(e)
            return self._count(None)
        if row is None:
            return self._count(None)
        return self._decode(key, row[0], row[2])

    def set(
        self,
        key: str,
        df: pd.DataFrame,
        meta: Mapping[str, Any] | None = None,
        tables: Iterable[str] = (),
        ttl_s: int | None = None,
    ) -> bool:
        now = time.time()
        encoded = self._encode(df, meta, tables, dt.datetime.fromtimestamp(now, dt.UTC))
        if encoded is None:
            return False
        blob, names = encoded
        ttl = self.ttl_s if ttl_s is None else ttl_s
        try:
            with self._db() as db:
                db.execute("DELETE FROM entry_tables WHERE key = ?", (key,))
                db.execute(
                    "INSERT OR REPLACE INTO entries (key, value, created, expires, size) VALUES (?, ?, ?, ?, ?)",
                    (key, blob, now, now + ttl, len(blob)),
                )
                db.executemany("INSERT OR IGNORE INTO entry_tables VALUES (?, ?)", [(n, key) for n in names])
                self._purge(db, now)
            self._recovered()
        except (sqlite3.Error, OSError) as e:
            self._fail(e)
            return False
        self.sets += 1
        return True

    def _purge(self, db: sqlite3.Connection, now: float) -> None:
        """Drop expired entries, then the oldest ones while the file holds more than max_bytes."""
        db.execute("DELETE FROM entry_tables WHERE key IN (SELECT key FROM entries WHERE expires < ?)", (now,))
        db.execute("DELETE FROM entries WHERE expires < ?", (now,))
        total = db.execute("SELECT COALESCE(SUM(size), 0) FROM entries").fetchone()[0]
        if total <= self.max_bytes:
            return
        for key, size in db.execute("SELECT key, size FROM entries ORDER BY created").fetchall():
            if total <= self.max_bytes:
                break
            db.execute("DELETE FROM entries WHERE key = ?", (key,))
            db.execute("DELETE FROM entry_tables WHERE key = ?", (key,))
            total -= size

    def invalidate(self, key: str) -> None:
        try:
            with self._db() as db:
                db.execute("DELETE FROM entries WHERE key = ?", (key,))
                db.execute("DELETE FROM entry_tables WHERE key = ?", (key,))
            self.invalidations += 1
        except (sqlite3.Error, OSError) as e:
            self._fail(e)

    def invalidate_tables(self, names: Iterable[str]) -> int:
        wanted = sorted({n.lower() for n in names})
        if not wanted:
            return 0
        marks = ",".join("?" * len(wanted))
        try:
            with self._db() as db:
                keys = [
                    r[0]
                    for r in db.execute(f"SELECT DISTINCT key FROM entry_tables WHERE table_name IN ({marks})", wanted)
                ]
                db.executemany("DELETE FROM entries WHERE key = ?", [(k,) for k in keys])
                db.executemany("DELETE FROM entry_tables WHERE key = ?", [(k,) for k in keys])
        except (sqlite3.Error, OSError) as e:
            self._fail(e)
            return 0
        self.invalidations += len(keys)
        return len(keys)

    def clear(self) -> None:
        try:
            with self._db() as db:
                db.execute("DELETE FROM entries")
                db.execute("DELETE FROM entry_tables")
        except (sqlite3.Error, OSError) as e:
            self._fail(e)

    def stats(self) -> CacheStats:
        entries = size = 0
        try:
            with self._db() as db:
                entries, size = db.execute(
                    "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM entries WHERE expires >= ?", (time.time(),)
                ).fetchone()
            self._recovered()
        except (sqlite3.Error, OSError) as e:
            self._fail(e)
        return CacheStats(
            self.backend,
            self._ok,
            entries,
            size,
            self.hits,
            self.misses,
            self.sets,
            self.invalidations,
            {"path": str(self.path)},
        )
