"""Which tables are registered and which outside folders they read: the read side of registration.

Why a module of its own: the SQL engines ask this on every connection (DuckDB's
``allowed_directories``) and the guard on every query, while :mod:`workbench.lake.register`
writes registrations and profiles them (which needs the SQL engine's views). Keeping the
read side here lets ``register -> profile -> sql.engines.duckdb -> registry`` stay a chain
instead of a cycle.
"""

from __future__ import annotations

import time
from pathlib import Path

from workbench.catalog import profiles as P
from workbench.catalog.store import open_catalog
from workbench.errors import WorkbenchError
from workbench.lake.storage import Lake

_names_cache: dict[str, tuple[float, frozenset[str], list[str]]] = {}
_CACHE_S = 2.0


def registered_names(lake: Lake) -> frozenset[str]:
    """Names of the registered tables (cached for a moment: the guard asks on every query)."""
    return _cached(lake)[0]


def registered_roots(lake: Lake) -> list[str]:
    """Folders outside the lake that in-place registrations read (the DuckDB engine allows them)."""
    return _cached(lake)[1]


def allowed_directories(lake: Lake) -> list[str]:
    """The lake root and the registered folders, without nesting (DuckDB 1.2 ignores a folder
    that has another listed folder inside it: measured, a file beside the inner folder is refused)."""
    dirs = sorted({lake.url.rstrip("/") + "/", *registered_roots(lake)}, key=len)
    out: list[str] = []
    for d in dirs:
        if not any(d.startswith(kept) for kept in out):
            out.append(d)
    return out


def invalidate() -> None:
    """Forget the cached names (after a registration changes)."""
    _names_cache.clear()


def _cached(lake: Lake) -> tuple[frozenset[str], list[str]]:
    settings = lake.settings
    default_db = Path(settings.home).expanduser().resolve() / "catalog.db"  # not home_path: that creates the home
    key = f"{lake.url}|{settings.catalog_url or default_db}"
    hit = _names_cache.get(key)
    now = time.monotonic()
    if hit is not None and now - hit[0] < _CACHE_S:
        return hit[1], hit[2]
    url = settings.catalog_url or f"sqlite:///{default_db}"
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).exists():
        _names_cache[key] = (now, frozenset(), [])  # no catalog yet: nothing registered (asking creates none)
        return frozenset(), []
    try:
        catalog = open_catalog(settings)
        try:
            regs = P.list_registrations(catalog)
        finally:
            catalog.close()
    except WorkbenchError:
        regs = []  # no catalog: nothing registered (the reference tables still work)
    names = frozenset(r.name for r in regs)
    roots = sorted({root for r in regs for root in r.roots})
    _names_cache[key] = (now, names, roots)
    return names, roots
