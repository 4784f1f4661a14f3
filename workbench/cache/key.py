"""Result-cache keys: canonical SQL + the lake version of every table read + the policy.

Versions make a key change the moment an ingest commits, so a stale result can never be served
even before :meth:`ResultCache.invalidate_tables` runs; the policy fingerprint keeps users with
different row filters or masks from seeing each other's results.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from sqlglot import exp

from workbench.cache.normalise import DIALECT, normalise_sql

#: bumped when the key recipe or the value format changes
KEY_VERSION = 1


def cache_key(
    sql: str | exp.Expression,
    table_versions: Mapping[str, int],
    policy_fp: str = "",
    dialect: str = DIALECT,
) -> str:
    """A stable hex key for one query result."""
    payload = {
        "v": KEY_VERSION,
        "sql": normalise_sql(sql, dialect),
        "tables": sorted((name.lower(), int(version)) for name, version in table_versions.items()),
        "policy": policy_fp,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
