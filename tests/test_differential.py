"""One differential suite over both engines: every query against plain DuckDB, row by row.

Suites: the dev SQL and the analyst corpus (``tests/corpus/``) on the small Delta lake, and
TPC-H and TPC-DS at scale factor 0.01 (``tests/data/tpc.py``) registered in place. Each query
runs through ``Workbench.sql`` on ``duckdb`` and on ``dask`` (a 2-worker LocalCluster) and
is compared with plain DuckDB over the same files (no workbench code: ``read_parquet`` views).
TPC-H and TPC-DS also run as ``dask-shuffle``: the dask engine with only tables under 100 kB
broadcast, so a join of two larger tables goes through the hash-partitioned path.

An outcome is *right*, *refused* (a WorkbenchError with a hint, naming what it cannot do) or
*wrong*. Wrong fails the test, always. A refusal fails it too unless the query is listed in
``KNOWN_REFUSALS`` with its reason, as a strict expected failure that only a refusal
satisfies (``raises=Refused``): a wrong answer there still fails, and a refusal that starts
working fails until it is removed from the list. ``test_acceptance_shares`` checks the share
the dask engine accepts: >= 90% of TPC-DS's 99 queries and >= 95% of the rest.

The corpus runs with small file groups so the dask engine's split and gather paths combine
many tasks (on the small lake one group would hold every file).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from tests.corpus import analyst_queries, dev_queries
from tests.data import tpc
from workbench.errors import WorkbenchError
from workbench.sql.engines import dask as dask_engine

ENGINES = ("duckdb", "dask")
SCALE = 0.01

#: (suite, query id) -> why the dask engine refuses it. Empty: every query is answered.
KNOWN_REFUSALS: dict[tuple[str, Any], str] = {}


class Refused(AssertionError):
    """The engine declined the query by name (the only failure a KNOWN_REFUSALS entry expects)."""


def _cases() -> list[Any]:
    corpus = [("corpus", c["id"]) for c in dev_queries() + analyst_queries()]
    standard = [("tpch", n) for n in tpc.queries("tpch")] + [("tpcds", n) for n in tpc.queries("tpcds")]
    params = []
    for suite, qid in corpus + standard:
        for engine in (*ENGINES, "dask-shuffle") if suite != "corpus" else ENGINES:
            marks = []
            if engine.startswith("dask") and (suite, qid) in KNOWN_REFUSALS:
                marks = [pytest.mark.xfail(strict=True, raises=Refused, reason=KNOWN_REFUSALS[(suite, qid)])]
            params.append(pytest.param(suite, qid, engine, marks=marks, id=f"{suite}-{qid}-{engine}"))
    return params


@pytest.fixture(scope="module")
def suites(
    sql_lake: str, dask_client: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, dict[str, Any]]]:
    """Per suite: a workbench session, the SQL by id, and a plain DuckDB over the same files."""
    import duckdb
    from deltalake import DeltaTable

    from workbench.config import Settings
    from workbench.lake.register import invalidate, register
    from workbench.lake.storage import Lake
    from workbench.session import Workbench
    from workbench.sql.engines import dask_frames
    from workbench.sql.engines.duckdb import CONNECTION_CONFIG

    out: dict[str, dict[str, Any]] = {}
    plain = duckdb.connect(config=CONNECTION_CONFIG)  # the optimizer DuckDB 2.0 gets wrong stays off
    for table in ("sales", "products", "stores", "customers"):
        uris = ", ".join(f"'{f}'" for f in DeltaTable(f"{sql_lake}/{table}").file_uris())
        plain.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet([{uris}], hive_partitioning = true)")
    corpus = {c["id"]: c["sql"] for c in dev_queries() + analyst_queries()}
    out["corpus"] = {"wb": Workbench.open(lake=sql_lake, dask_client=dask_client), "sql": corpus, "plain": plain}
    for kind in ("tpch", "tpcds"):
        base = tmp_path_factory.mktemp(kind)
        files = tpc.generate(kind, SCALE, base / "data")
        settings = Settings(lake=str(base / "lake"), home=str(base / "home"), pii_key="test-only-key")
        lake = Lake(settings=settings)
        con = duckdb.connect(config=CONNECTION_CONFIG)
        for name, path in files.items():
            register(name, str(path), lake=lake, profile=False)
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{path}')")
        wb = Workbench(lake, settings, dask_client=dask_client)
        out[kind] = {"wb": wb, "sql": tpc.queries(kind), "plain": con}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dask_frames, "MAX_FILES_PER_PARTITION", 16)  # many tasks on the small lake
        yield out
    for suite in out.values():
        suite["wb"].close()
        suite["plain"].close()
    invalidate()


_outcomes: dict[tuple[str, Any, str], str] = {}


@pytest.mark.parametrize(("suite", "qid", "engine"), _cases())
def test_matches_plain_duckdb(
    suites: dict[str, dict[str, Any]], suite: str, qid: Any, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = suites[suite]
    sql = case["sql"][qid]
    want = rows(case["plain"].execute(sql).df())
    if engine == "dask-shuffle":  # only tables under 100 kB are broadcast: two large tables are hash-partitioned
        monkeypatch.setattr(dask_engine, "BROADCAST_MAX_BYTES", 100_000)
    try:
        got = rows(case["wb"].sql(sql, engine=engine.split("-")[0], use_cache=False).df)
    except WorkbenchError as e:
        _outcomes[(suite, qid, engine)] = "refused"
        assert e.message and e.hint, "a refusal names what failed and what to do"
        raise Refused(f"{engine} refused {suite} {qid}: {e.message}") from e
    same = len(got) == len(want) and all(close(a, b) for a, b in zip(got, want, strict=True))
    _outcomes[(suite, qid, engine)] = "right" if same else "WRONG"
    assert same, f"{engine} differs from plain DuckDB on {suite} {qid}: {got[:3]} vs {want[:3]}"


def test_acceptance_shares(capsys: pytest.CaptureFixture[str]) -> None:
    """The dask engine accepts >= 90% of TPC-DS and >= 95% of the other queries, 0 wrong."""
    dask = {(s, q): o for (s, q, e), o in _outcomes.items() if e == "dask"}
    if len(dask) < sum(1 for p in _cases() if p.values[2] == "dask"):
        pytest.skip("run with the whole differential suite (it reads the outcomes of the runs above)")
    tpcds = [o for (s, _), o in dask.items() if s == "tpcds"]
    rest = [o for (s, _), o in dask.items() if s != "tpcds"]
    with capsys.disabled():
        for name, outs in (("TPC-DS", tpcds), ("corpus + TPC-H", rest)):
            counts = {k: outs.count(k) for k in ("right", "refused", "WRONG")}
            print(f"\ndask engine, {name}: {counts} of {len(outs)}")
    assert "WRONG" not in dask.values()
    assert tpcds.count("right") >= 0.90 * len(tpcds) and len(tpcds) == 99
    assert rest.count("right") >= 0.95 * len(rest)


def rows(df: pd.DataFrame) -> list[tuple[Any, ...]]:
    """Rows as plain values, in an order both engines share (floats compared apart from rounding)."""
    out = [tuple(_value(v) for v in row) for row in df.astype(object).itertuples(index=False)]
    return sorted(out, key=_sort_key)


def _value(v: Any) -> Any:
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return None
    if hasattr(v, "as_tuple") or (isinstance(v, (int, float)) and not isinstance(v, bool)):
        return float(v)  # DECIMAL, HUGEINT and integer widths differ by route, not by value
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        return _value(v.item())
    if hasattr(v, "isoformat"):
        return pd.Timestamp(v).isoformat()
    return v


def _sort_key(row: tuple[Any, ...]) -> str:
    return repr(tuple(f"{v:.6e}" if isinstance(v, float) else str(v) for v in row))


def close(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """Equal rows, floating-point values to a relative 1e-9 (summation order differs by route)."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if isinstance(x, float) and isinstance(y, float):
            if not math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9):
                return False
        elif x != y:
            return False
    return True
