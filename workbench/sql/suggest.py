""" "Did you mean ...?" for a column an engine could not find.

The guard lets a query through without resolving every column (aliases, CTEs and registered
tables make that an engine's job), so an unknown column surfaces as an engine error. Each
engine words it differently; this pulls the name out of the known wordings and offers the
nearest real column of the tables the query reads, plus the command that lists them all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from workbench.errors import did_you_mean

#: how engines name a missing column (DuckDB binder, DataFusion planner, generic)
_PATTERNS = (
    re.compile(r'Referenced column "([^"]+)" not found', re.IGNORECASE),
    re.compile(r'FieldNotFound \{ field: Column \{ relation: [^}]*?name: "([^"]+)"'),
    re.compile(r'does not have a column named "([^"]+)"', re.IGNORECASE),
    re.compile(r'column "?([A-Za-z_][A-Za-z0-9_]*)"? (?:not found|does not exist)', re.IGNORECASE),
)


def unknown_column(error_text: str) -> str | None:
    """The column name an engine error says it could not find, or None."""
    for pattern in _PATTERNS:
        match = pattern.search(error_text)
        if match:
            return match.group(1)
    return None


def column_hint(error_text: str, columns: Mapping[str, Iterable[str]]) -> str | None:
    """A hint for an unknown-column error over ``columns`` (table -> names), or None.

    Names the nearest real column when one is close ("did you mean 'region'?") and always the
    ``workbench columns TABLE`` command, so the user can see every name without guessing.
    """
    name = unknown_column(error_text)
    if name is None:
        return None
    pool = sorted({c for cols in columns.values() for c in cols})
    suggestion = did_you_mean(name, pool)
    tables = sorted(columns) or ["sales"]
    listing = " / ".join(f"`workbench columns {t}`" for t in tables)
    if suggestion:
        return f"no column {name!r}: {suggestion} ({listing} lists them all)"
    return f"no column {name!r} in {', '.join(tables)}: {listing} lists the columns"
