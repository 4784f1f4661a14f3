"""Column profiles of lake tables: types, rows, null rates, distinct counts, values, min/max, keys, joins.

Why DuckDB aggregates over the table's files: a profile must work on a wide table (hundreds
of columns) or a large one without loading it. DuckDB streams the Parquet files and keeps
one aggregate state per column; columns are profiled in groups of :data:`GROUP` per scan so
a query never carries thousands of aggregates, and the row count comes from the Delta log
(the Parquet footers' statistics). Exact distinct values are only collected for columns
whose approximate distinct count is low (the value vocabularies of a semantic model), exact
uniqueness only for the few columns that look like keys.

Candidate joins pair a column of one table with a candidate key of another when the names
agree (``store_id`` = ``store_id``, ``store_id`` -> ``stores.id``) and the values overlap.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import duckdb
from sqlglot import exp

from workbench.catalog import profiles as P
from workbench.catalog.store import Catalog, open_catalog
from workbench.errors import DataError
from workbench.lake.storage import Lake
from workbench.sql.engines.duckdb import view_sql
from workbench.sql.scan import Snapshot

#: columns profiled per scan
GROUP = 40
#: at most this many distinct values makes a column low-cardinality (values are stored)
LOW_CARDINALITY = 50
#: a table with at most this many rows is a lookup table (joined by value overlap alone)
LOOKUP_ROWS = 1000
#: distinct values kept as a sample of a high-cardinality text column
SAMPLE = 20
#: share of a column's distinct values found in the other table's key for a candidate join
JOIN_OVERLAP = 0.9

_FLOATS = ("FLOAT", "DOUBLE", "REAL", "DECIMAL")
_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE", "DECIMAL", "UTINYINT")


def _connect(lake: Lake, tables: list[str]) -> Any:
    """A private DuckDB connection with one view per table (same views as the SQL engine)."""
    con = duckdb.connect(config={"memory_limit": lake.settings.duckdb_memory_limit})
    if lake.is_s3:
        con.register_filesystem(lake.fs)
    snap = Snapshot(lake)
    for t in tables:
        scan = snap.plan(exp.select("*").from_(t), {t})[t]
        con.execute(view_sql(t, scan))
    return con


def _q(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql(dialect="duckdb")


def _is_numeric(duck_type: str) -> bool:
    return duck_type.upper().startswith(_NUMERIC)


def _is_temporal(duck_type: str) -> bool:
    return duck_type.upper().startswith(("DATE", "TIMESTAMP"))


def _jsonable(v: Any) -> Any:
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    if hasattr(v, "item"):
        return v.item()
    if isinstance(v, (int, float, str, bool)) or v is None:
        return v
    return str(v)


def column_profiles(con: Any, table: str, rows: int) -> list[dict[str, Any]]:
    """Per column: type, nulls, null_rate, distinct (approx), min/max, values (low cardinality), key."""
    described = con.execute(f"DESCRIBE {_q(table)}").fetchall()
    cols = [{"name": r[0], "type": str(r[1])} for r in described]
    for start in range(0, len(cols), GROUP):
        group = cols[start : start + GROUP]
        aggs = []
        for c in group:
            q = _q(c["name"])
            aggs += [f"count({q})", f"approx_count_distinct({q})"]
            simple = not c["type"].upper().startswith(("STRUCT", "MAP", "LIST")) and not c["type"].endswith("[]")
            aggs += [f"min({q})", f"max({q})"] if simple else ["NULL", "NULL"]
        row = con.execute(f"SELECT {', '.join(aggs)} FROM {_q(table)}").fetchone()
        for i, c in enumerate(group):
            non_null, distinct, lo, hi = row[4 * i : 4 * i + 4]
            c["nulls"] = rows - int(non_null)
            c["null_rate"] = round(c["nulls"] / rows, 6) if rows else 0.0
            c["distinct"] = int(distinct)
            c["min"], c["max"] = _jsonable(lo), _jsonable(hi)
        low = [c for c in group if c["distinct"] <= LOW_CARDINALITY * 2 and c["min"] is not None]
        if low:
            lists = con.execute(
                "SELECT " + ", ".join(f"list(DISTINCT {_q(c['name'])})" for c in low) + f" FROM {_q(table)}"
            ).fetchone()
            for c, values in zip(low, lists, strict=True):
                vals = sorted(v for v in values if v is not None)
                c["distinct"] = len(vals)
                if len(vals) <= LOW_CARDINALITY:
                    c["values"] = [_jsonable(v) for v in vals]
    _samples(con, table, [c for c in cols if "values" not in c and c["type"].upper().startswith("VARCHAR")])
    maybe_keys = [  # measurements (floats) are unique by accident, not keys
        c
        for c in cols
        if rows and c["nulls"] == 0 and c["distinct"] >= 0.9 * rows and not c["type"].upper().startswith(_FLOATS)
    ]
    if maybe_keys:
        exact = con.execute(
            "SELECT " + ", ".join(f"count(DISTINCT {_q(c['name'])})" for c in maybe_keys) + f" FROM {_q(table)}"
        ).fetchone()
        for c, n in zip(maybe_keys, exact, strict=True):
            c["distinct"] = int(n)
            c["key"] = int(n) == rows
    return cols


def _samples(con: Any, table: str, cols: list[dict[str, Any]]) -> None:
    """Up to :data:`SAMPLE` distinct values of high-cardinality text columns: their shape (codes,
    leading zeros, dates kept as text) tells a drafted model what the column is."""
    for start in range(0, len(cols), GROUP):
        group = cols[start : start + GROUP]
        lists = con.execute(
            "SELECT "
            + ", ".join(f"list(DISTINCT {_q(c['name'])})[1:{SAMPLE}]" for c in group)
            + f" FROM (SELECT * FROM {_q(table)} LIMIT 2000)"
        ).fetchone()
        for c, values in zip(group, lists, strict=True):
            c["sample"] = sorted(str(v) for v in (values or []) if v is not None)


def profile_table(lake: Lake, name: str, catalog: Catalog | None = None) -> dict[str, Any]:
    """Profile ``name`` (at its current Delta version), find joins with other profiled tables, store both."""
    own = catalog is None
    catalog = catalog or open_catalog(lake.settings)
    try:
        dt_table = lake.table(name)
        version = int(dt_table.version())
        actions = dt_table.get_add_actions(flatten=True).to_pydict()
        rows = int(sum(n or 0 for n in actions.get("num_records", [])))
        others: dict[str, dict[str, Any]] = {}
        for r in P.list_registrations(catalog):
            stored = P.load_profile(catalog, r.name) if r.name != name else None
            if stored is not None and lake.exists(r.name):
                others[r.name] = stored
        con = _connect(lake, [name, *others])
        try:
            if not rows:
                rows = int(con.execute(f"SELECT count(*) FROM {_q(name)}").fetchone()[0])
            cols = column_profiles(con, name, rows)
            profile: dict[str, Any] = {
                "table": name,
                "version": version,
                "rows": rows,
                "files": len(actions.get("path", [])),
                "bytes": int(sum(actions.get("size_bytes", []))),
                "partition_columns": list(dt_table.metadata().partition_columns),
                "columns": cols,
                "candidate_keys": [c["name"] for c in cols if c.get("key")],
                "joins": [],
            }
            for other, other_profile in others.items():
                found = candidate_joins(con, profile, other_profile) + candidate_joins(con, other_profile, profile)
                profile["joins"] += found
                kept = [j for j in other_profile.get("joins", []) if name not in (j["left"], j["right"])]
                other_profile["joins"] = kept + found
                P.save_profile(catalog, other, int(other_profile["version"]), other_profile)
        finally:
            con.close()
        P.save_profile(catalog, name, version, profile)
        return profile
    except DataError:
        raise
    finally:
        if own:
            catalog.close()


def _singular(word: str) -> str:
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _unprefixed(name: str) -> str:
    """``l_orderkey`` -> ``orderkey``: TPC-style schemas prefix every column with its table."""
    return re.sub(r"^[a-z]{1,2}_(?=[a-z])", "", name)


def _names_match(col: str, table: str, key: str) -> bool:
    col, key = col.lower(), key.lower()
    if col == key or _unprefixed(col) == _unprefixed(key):
        return True
    if "_" in _unprefixed(key) and _unprefixed(col).endswith("_" + _unprefixed(key)):
        return True  # a role of the key: ss_sold_date_sk -> d_date_sk
    stem = _singular(table.lower())
    return col in (f"{stem}_{key}", f"{stem}{key}", f"{table.lower()}_{key}") or (key == "id" and col == f"{stem}_id")


def _lookup_candidate(col: dict[str, Any], key: dict[str, Any], right: dict[str, Any]) -> bool:
    """A text column against the text key of a small lookup table (``region`` -> managers.area):
    names may differ, so the value overlap alone decides."""
    text = col["type"].upper().startswith("VARCHAR") and key["type"].upper().startswith("VARCHAR")
    return text and int(right["rows"]) <= LOOKUP_ROWS and int(col.get("distinct") or 0) >= 2


def _contained(con: Any, right: dict[str, Any], key: str, left: dict[str, Any], col: str) -> float:
    """Share of ``right``'s key values found in ``left.col``: a table listing *some* of the fact's
    orders (the returned ones) joins on the order id although most orders are not in it."""
    n, hit = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE k IN (SELECT {_q(col)} FROM {_q(left['table'])})) "
        f"FROM (SELECT DISTINCT {_q(key)} AS k FROM {_q(right['table'])})"
    ).fetchone()
    return round(hit / n, 4) if n else 0.0


def candidate_joins(con: Any, left: dict[str, Any], right: dict[str, Any]) -> list[dict[str, Any]]:
    """Columns of ``left`` that reference a candidate key of ``right`` (by name, then by value overlap)."""
    found = []
    rcols = {c["name"]: c for c in right["columns"]}
    for key in right.get("candidate_keys", []):
        for col in left["columns"]:
            left_key = col["name"] in left.get("candidate_keys", [])
            if left_key and left["rows"] > right["rows"]:
                continue
            by_name = _names_match(col["name"], right["table"], key)
            if not (by_name or _lookup_candidate(col, rcols[key], right)):
                continue
            if _is_numeric(col["type"]) != _is_numeric(rcols[key]["type"]):
                continue
            lq, rq = _q(col["name"]), _q(key)
            n, hit = con.execute(
                f"SELECT count(DISTINCT l.{lq}), count(DISTINCT l.{lq}) FILTER (WHERE r.k IS NOT NULL) "
                f"FROM {_q(left['table'])} l LEFT JOIN (SELECT DISTINCT {rq} AS k FROM {_q(right['table'])}) r "
                f"ON l.{lq} = r.k"
            ).fetchone()
            overlap = (hit / n) if n else 0.0
            if overlap < JOIN_OVERLAP and by_name and not left_key:
                overlap = _contained(con, right, key, left, col["name"])  # a list of some orders (returns)
            if overlap >= JOIN_OVERLAP:
                found.append(
                    {
                        "left": left["table"],
                        "left_column": col["name"],
                        "right": right["table"],
                        "right_column": key,
                        "overlap": round(overlap, 4),
                    }
                )
    return found


def load_profiles(lake: Lake, tables: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Stored profiles of ``tables`` (default: every registered table); stale or missing ones are redone."""
    catalog = open_catalog(lake.settings)
    try:
        names = tables or [r.name for r in P.list_registrations(catalog)]
        out = {}
        for t in names:
            version = int(lake.table(t).version())
            stored = P.load_profile(catalog, t, version)
            out[t] = stored if stored is not None else profile_table(lake, t, catalog=catalog)
        return out
    finally:
        catalog.close()
