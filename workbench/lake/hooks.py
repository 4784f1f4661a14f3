"""What runs after an ingest commits: catalog sync, rollup refresh, cache invalidation.

Called once by ``workbench.lake.ingest.ingest`` after its commits (the ingest's single
commit point), with the quality report that lists the touched partitions. The data is
already committed and visible when this runs, so nothing here may fail the ingest: each
step logs and records its error in the returned summary instead. Correctness does not
depend on these steps either: cache keys carry table versions and the router uses only
rollups built from the current ``sales`` version; the hook makes the *fast* paths current.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from workbench.config import Settings

if TYPE_CHECKING:
    from workbench.lake.quality import QualityReport
    from workbench.lake.storage import Lake

log = logging.getLogger(__name__)


def after_ingest(lake: Lake, report: QualityReport, settings: Settings | None = None) -> dict[str, Any]:
    """Sync the catalog, refresh rollups for the touched months, invalidate cached results."""
    settings = settings or lake.settings
    touched = report.touched_partitions()
    summary: dict[str, Any] = {"tables": sorted(touched), "rollups": [], "invalidated": 0, "errors": []}
    if not touched:
        return summary
    summary["rollups"] = _refresh_rollups(lake, report, settings, summary)
    _sync_catalog(lake, [*touched, *[f"rollups/{r['name']}" for r in summary["rollups"]]], settings, summary)
    summary["invalidated"] = _invalidate(sorted(touched), settings, summary)
    return summary


def _refresh_rollups(lake: Lake, report: QualityReport, settings: Settings, summary: dict[str, Any]) -> list[Any]:
    from workbench.sql.rollups import BASE_TABLE, build

    sales = report.tables.get(BASE_TABLE)
    if sales is None or not sales.rows_written or sales.version is None:
        return []
    months = {(int(p["year"]), int(p["month"])) for p in sales.touched_partitions if "year" in p and "month" in p}
    client = None
    if report.ran_on != "threads":  # the ingest ran on a cluster: so does its rollup refresh
        from workbench.cluster import client_for_paths

        client = client_for_paths(settings, lake.local_paths(), "rollup refresh")
    try:
        builds = build(lake, settings, months, previous_version=sales.version - 1, client=client)
    except Exception as e:  # committed data stays; the router falls back to sales until a rebuild
        log.warning("rollup refresh failed after ingest: %s", e)
        summary["errors"].append(f"rollups: {type(e).__name__}: {e}")
        return []
    return [b.to_dict() for b in builds]


def _sync_catalog(lake: Lake, tables: list[str], settings: Settings, summary: dict[str, Any]) -> None:
    from workbench.catalog import open_catalog

    try:
        catalog = open_catalog(settings, connect=False)
    except Exception as e:
        summary["errors"].append(f"catalog: {type(e).__name__}: {e}")
        return
    try:
        for name in tables:
            catalog.sync_table(lake, name)
        for r in summary["rollups"]:
            from workbench.sql.rollups import BASE_TABLE, configured

            spec = next((x for x in configured(settings) if x.name == r["name"]), None)
            if spec is not None:
                catalog.record_rollup(r["name"], BASE_TABLE, spec.definition(), r["base_version"])
    except Exception as e:  # catalog down: statistics catch up on the next sync
        log.warning("catalog sync failed after ingest: %s", e)
        summary["errors"].append(f"catalog: {type(e).__name__}: {e}")
    finally:
        catalog.close()


def _invalidate(tables: list[str], settings: Settings, summary: dict[str, Any]) -> int:
    from workbench.cache import open_cache

    try:
        cache = open_cache(settings)
        try:
            return cache.invalidate_tables(tables)
        finally:
            cache.close()
    except Exception as e:  # keys carry versions: stale entries are unreachable anyway
        summary["errors"].append(f"cache: {type(e).__name__}: {e}")
        return 0
