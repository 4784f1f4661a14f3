"""Personal data at rest and ``workbench forget``: checked by reading every Parquet file with pyarrow."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from workbench.config import get_settings
from workbench.errors import DataError
from workbench.lake.storage import Lake
from workbench.security.pii import files_mentioning, forget, parquet_files, token


def _landing_customers(landing: Path) -> pa.Table:
    files = sorted(landing.glob("customers*.csv"))
    assert files, "the generator writes customers landing files"
    return pa.concat_tables(
        [pacsv.read_csv(f, convert_options=pacsv.ConvertOptions(strings_can_be_null=True)) for f in files]
    )


def _string_values(path: str) -> set[str]:
    values: set[str] = set()
    table = pq.read_table(path)
    for col in table.columns:
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            values |= {v for v in pc.unique(col).to_pylist() if v is not None}
    return values


def test_personal_fields_are_tokenised_at_rest(small_lake: str, landing_dir: Path) -> None:
    raw = _landing_customers(landing_dir)
    names = {v.strip() for v in raw["customer_name"].to_pylist() if v and v.strip()}
    emails = {v.strip() for v in raw["email"].to_pylist() if v and v.strip()}
    assert len(names) > 50 and len(emails) > 50
    lake = Lake(small_lake)
    files = parquet_files(lake)
    assert any("/customers/" in f for f in files)
    # no raw name or email as a value of any string column of any Parquet file of the lake
    assert files_mentioning(lake, names | emails) == []
    for f in files:
        values = _string_values(f)
        assert not any("@" in v for v in values), f"an e-mail-like value is stored in {f}"
    # and what is stored is the keyed hash (stable: joins on tokens keep working)
    key = get_settings().pii_key_bytes()
    stored = lake.table("customers").to_pyarrow_table(columns=["customer_id", "customer_name", "email"])
    first = raw.filter(pc.equal(raw["customer_id"], stored["customer_id"][0]))
    assert stored["email"][0].as_py() == token(first["email"][0].as_py(), key)
    assert stored["customer_name"][0].as_py() == token(first["customer_name"][0].as_py(), key)


def _counts(lake: str) -> tuple[str, int, int, int]:
    """The busiest customer, its sales rows, all sales rows, all customer rows (plain DuckDB)."""
    lk = Lake(lake)
    con = duckdb.connect()
    sales = lk.files("sales")
    cid, n = con.execute(
        "SELECT customer_id, COUNT(*) FROM read_parquet(?) GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1", [sales]
    ).fetchone()
    total = con.execute("SELECT COUNT(*) FROM read_parquet(?)", [sales]).fetchone()[0]
    customers = con.execute("SELECT COUNT(*) FROM read_parquet(?)", [lk.files("customers")]).fetchone()[0]
    return str(cid), int(n), int(total), int(customers)


@pytest.fixture
def lake_with_traces(fresh_lake: str) -> tuple[str, str, int, int, int]:
    """A private lake with summaries (one mentioning the customer), a cached result and a session turn."""
    import workbench
    from workbench.assistant import build_summaries
    from workbench.assistant.retrieval.index import SummaryIndex
    from workbench.cache import cache_key, open_cache

    cid, n, total, customers = _counts(fresh_lake)
    wb = workbench.connect(fresh_lake)
    try:
        build_summaries(wb)
    finally:
        wb.close()
    index = SummaryIndex.load(fresh_lake)
    injected = {"id": "inj-1", "text": f"Top spender {cid} bought the most in 2024.", "year": 2024}
    SummaryIndex.build(fresh_lake, [*index.records, injected], index.embedder).save()
    cache = open_cache()
    sql = f"SELECT * FROM sales WHERE customer_id = '{cid}'"
    cache.set(cache_key(sql, {"sales": 1}, ""), pa.table({"customer_id": [cid]}).to_pandas(), {}, tables=["sales"])
    cache.close()
    sessions = get_settings().home_path / "sessions"
    sessions.mkdir(parents=True, exist_ok=True)
    (sessions / "s1.json").write_text(
        json.dumps({"turns": [{"question": f"revenue of customer {cid}"}, {"question": "revenue by region"}]})
    )
    return fresh_lake, cid, n, total, customers


def test_forget_leaves_no_trace(lake_with_traces: tuple[str, str, int, int, int]) -> None:
    from workbench.assistant.retrieval.index import SummaryIndex
    from workbench.cache import open_cache
    from workbench.catalog import open_catalog

    lake_url, cid, n, total, customers = lake_with_traces
    lake = Lake(lake_url)
    key = get_settings().pii_key_bytes()
    needles = [cid, token(cid, key)]
    assert files_mentioning(lake, [cid]), "precondition: the customer is in the lake"

    report = forget(cid, lake, user="dpo")

    assert report.deleted_rows["sales"] == n
    assert report.deleted_rows["customers"] == 1
    # what `workbench forget` prints (--json and text; the CLI run itself is a slow test)
    body = json.loads(json.dumps(report.to_dict()))
    assert body["deleted_rows"] == report.deleted_rows and body["customer_token"] == report.customer_token
    text = report.to_text()
    assert f"{n + 1} rows deleted" in text and "sales" in text
    assert sum(report.vacuumed_files.values()) > 0
    # physically gone: no Parquet file under the lake (live, old or log) holds the id or its token
    assert files_mentioning(lake, needles) == []
    # nothing else was lost (counts computed independently with DuckDB on the new files)
    _, _, total_after, customers_after = _counts(lake_url)
    assert total_after == total - n
    assert customers_after == customers - 1
    # rollups (no customer_id) were recomputed for the touched months: totals match the new sales
    rollups = lake.tables("rollups")
    if rollups:
        assert report.rollups_refreshed
        con = duckdb.connect()
        base = con.execute("SELECT SUM(revenue), SUM(quantity) FROM read_parquet(?)", [lake.files("sales")]).fetchone()
        for name in rollups:
            got = con.execute("SELECT SUM(revenue), SUM(quantity) FROM read_parquet(?)", [lake.files(name)]).fetchone()
            assert got[0] == pytest.approx(base[0], rel=1e-9), name
            assert got[1] == base[1], name
    # cache: the entry that read sales is gone
    cache = open_cache()
    assert cache.stats().entries == 0
    cache.close()
    # summaries: rebuilt, and none mentions the customer
    records = SummaryIndex.load(lake).records
    assert report.summaries_rebuilt and records
    assert not any(cid.lower() in json.dumps(r).lower() for r in records)
    # session memory: the turn naming the customer is gone, the other stays
    turns = json.loads((get_settings().home_path / "sessions" / "s1.json").read_text())["turns"]
    assert [t["question"] for t in turns] == ["revenue by region"]
    assert report.sessions_purged == 1
    # audit: one row, by token, not by id
    entries = [e for e in open_catalog().audit_entries(user="dpo") if e.route == "forget"]
    assert len(entries) == 1 and entries[0].rows == n + 1
    assert cid not in (entries[0].detail or "") and report.customer_token in (entries[0].detail or "")
    # idempotent
    again = forget(cid, lake, user="dpo", rebuild_summaries=False)
    assert sum(again.deleted_rows.values()) == 0


@pytest.mark.slow  # a second full forget; the Python API test above covers the default run
def test_forget_cli_verifies(fresh_lake: str) -> None:
    from workbench.cli import main

    cid, n, _, _ = _counts(fresh_lake)
    result = CliRunner().invoke(main, ["forget", "--customer", cid, "--lake", fresh_lake, "--json", "--verify"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["deleted_rows"]["sales"] == n
    assert body["verify"]["files_with_traces"] == []


@pytest.mark.parametrize("bad", ["", "x' OR '1'='1", "a b", "C1; DROP TABLE sales"])
def test_forget_refuses_malformed_ids(small_lake: str, bad: str) -> None:
    with pytest.raises(DataError):
        forget(bad, Lake(small_lake))
