"""Micro-batch ingest of a landing folder, and how fresh the lake is.

``workbench ingest --watch DIR`` polls ``DIR`` every ``interval`` seconds and ingests the new
files as one batch. *Exactly once* is not re-implemented here: each Delta commit of the ingest
records the landing files it consumed (name, size, mtime) in the same atomic log entry that
makes their rows visible, and the ingest skips recorded files. A watcher killed at any point
therefore re-ingests exactly the files whose commit did not happen.

What the watcher adds is *when* to ingest: only files that have stopped changing (same size and
mtime on two consecutive polls, or older than ``settle_s``) are taken, so a file still being
copied in is not ingested half-written. Producers should still write ``.name.tmp`` and rename
(hidden files are ignored by the ingest).

Freshness is the age of the newest ingested data: now minus the time of the newest commit that
carries an ingest record, per table, read from the Delta log only.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.lake.delta import INGEST_METADATA_KEY, ingested_fingerprints
from workbench.lake.storage import Lake

log = logging.getLogger(__name__)

#: a file untouched for this long is considered complete even on its first sighting
SETTLE_S = 2.0


@dataclass
class WatchState:
    """What the watcher has done so far (returned by :func:`watch`, updated in place)."""

    batches: int = 0
    rows: int = 0
    files: int = 0
    failures: int = 0
    polls: int = 0
    last_error: str | None = None
    reports: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "reports"} | {"reports": self.reports[-10:]}


def pending_files(
    landing: str, lake: Lake, seen: dict[str, str] | None = None, settle_s: float = SETTLE_S
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(settled new files, still-changing new files) of ``landing`` not yet committed to ``lake``."""
    from workbench.lake import schema as s
    from workbench.lake.ingest import list_landing

    files = list_landing(landing)
    done: dict[str, set[str]] = {}
    ready: list[dict[str, Any]] = []
    changing: list[dict[str, Any]] = []
    now = time.time()
    for f in files:
        table = s.table_for_file(f["uri"])
        if table is None:
            continue
        if table not in done:
            done[table] = ingested_fingerprints(lake, table)
        if f["fingerprint"] in done[table]:
            continue
        mtime = _mtime(f["fingerprint"])
        stable = seen is not None and seen.get(f["uri"]) == f["fingerprint"]
        old_enough = mtime is not None and now - mtime >= settle_s
        (ready if stable or old_enough else changing).append(f)
    if seen is not None:
        seen.clear()
        seen.update({f["uri"]: f["fingerprint"] for f in files})
    return ready, changing


def _mtime(fingerprint: str) -> float | None:
    try:
        return float(fingerprint.rsplit("|", 1)[-1])
    except ValueError:
        return None


def ingest_once(
    landing: str, lake: Lake, seen: dict[str, str] | None = None, settle_s: float = SETTLE_S, **ingest_kwargs: Any
) -> dict[str, Any] | None:
    """One micro-batch: ingest when there are settled new files and none still changing.

    Returns the ingest report as a dict, or None when there was nothing (complete) to take.
    """
    from workbench.lake.ingest import ingest
    from workbench.observability import metrics

    ready, changing = pending_files(landing, lake, seen, settle_s)
    if not ready or changing:
        return None
    try:
        report = ingest(landing, lake, **ingest_kwargs)
    except Exception as e:
        metrics.observe_ingest_failure(e)
        raise
    metrics.observe_ingest(report)
    _after_ingest(lake, report)
    metrics.set_freshness(0.0)
    return report.to_dict()


def _after_ingest(lake: Lake, report: Any) -> None:
    """Keep derived state in step: catalog stats and the result cache of touched tables."""
    touched = [n for n, t in report.tables.items() if getattr(t, "rows_written", 0)]
    if not touched:
        return
    try:
        from workbench.cache import open_cache

        cache = open_cache(lake.settings)
        try:
            cache.invalidate_tables(touched)
        finally:
            cache.close()
    except WorkbenchError as e:
        log.warning("cache not invalidated after ingest: %s", e.message)
    try:
        from workbench.catalog import open_catalog

        catalog = open_catalog(lake.settings)
        try:
            for name in touched:
                catalog.sync_table(lake, name)
        finally:
            catalog.close()
    except WorkbenchError as e:
        log.warning("catalog not synced after ingest: %s", e.message)


def watch(
    landing: str,
    lake: Lake | str | None = None,
    *,
    interval_s: float = 10.0,
    once: bool = False,
    max_batches: int | None = None,
    settle_s: float = SETTLE_S,
    stop: threading.Event | None = None,
    on_batch: Callable[[dict[str, Any]], None] | None = None,
    on_error: Callable[[WorkbenchError], None] | None = None,
) -> WatchState:
    """Poll ``landing`` and ingest new files in micro-batches until stopped.

    ``once`` ingests what is there now (files are taken without waiting to settle) and returns.
    A failed batch is reported (``on_error``) and retried on the next poll: its files were not
    recorded, so nothing is lost or doubled.
    """
    lake = lake if isinstance(lake, Lake) else Lake(lake)
    landing = str(landing).rstrip("/")
    state = WatchState()
    seen: dict[str, str] = {}
    stop = stop or threading.Event()
    while not stop.is_set():
        state.polls += 1
        try:
            report = ingest_once(landing, lake, seen, 0.0 if once else settle_s)
        except WorkbenchError as e:
            state.failures += 1
            state.last_error = e.message
            log.warning("watch: batch failed, will retry: %s", e)
            if on_error is not None:
                on_error(e)
            if once:
                raise
            report = None
        if report is not None:
            state.batches += 1
            state.rows += int(report.get("rows_written", 0) or 0)
            state.files += sum(len(t.get("files", [])) for t in report.get("tables", {}).values())
            state.reports.append(report)
            if on_batch is not None:
                on_batch(report)
        if once or (max_batches is not None and state.batches >= max_batches):
            break
        stop.wait(interval_s)
    return state


# --- freshness -------------------------------------------------------------------------------


def _last_ingest_ms(dt_: Any) -> int | None:
    for limit in (200, None):
        history = dt_.history(limit) if limit else dt_.history()
        for commit in history:  # newest first
            if commit.get(INGEST_METADATA_KEY):
                return int(commit.get("timestamp") or 0) or None
        if limit and len(history) < limit:
            return None
    return None


def _latest_date(dt_: Any) -> str | None:
    try:
        actions = dt_.get_add_actions(flatten=True)
        if "max.date" not in actions.column_names or actions.num_rows == 0:
            return None
        import pyarrow.compute as pc

        latest = pc.max(actions["max.date"]).as_py()
        return latest.isoformat() if latest is not None else None
    except Exception as e:  # statistics are optional in the Delta log: no date rather than no report
        log.debug("no latest date from the Delta log: %s", e)
        return None


def freshness(lake: Lake | str | None = None, settings: Settings | None = None) -> dict[str, Any]:
    """Age of the newest ingested data, overall and per table (from the Delta log only).

    Also sets the ``workbench_data_freshness_seconds`` gauge, so a ``/metrics`` scrape after a
    ``/healthz`` call (or a periodic call) reports it.
    """
    from workbench.observability import metrics

    lake = lake if isinstance(lake, Lake) else Lake(lake, settings)
    now = time.time()
    tables: dict[str, Any] = {}
    newest: int | None = None
    for name in lake.tables():
        table = lake.table(name)
        ms = _last_ingest_ms(table)
        age = round(now - ms / 1000, 3) if ms else None
        tables[name] = {
            "version": int(table.version()),
            "last_ingest_at": _iso(ms),
            "age_s": age,
            "latest_date": _latest_date(table),
        }
        metrics.set_freshness(age, name)
        if ms and (newest is None or ms > newest):
            newest = ms
    age_s = round(now - newest / 1000, 3) if newest else None
    metrics.set_freshness(age_s, "all")
    return {"lake": lake.url, "last_ingest_at": _iso(newest), "age_s": age_s, "tables": tables}


def _iso(ms: int | None) -> str | None:
    if not ms:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds")
