"""Ingest: cleaning, dedupe, idempotence, appends; numbers checked independently with DuckDB.

The expected values are computed with plain DuckDB straight from the landing CSV files,
applying the documented cleaning rules (not the ingest code).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from click.testing import CliRunner

from workbench.cli import main
from workbench.lake.ingest import ingest
from workbench.lake.schema import CATEGORIES, CHANNELS, PAYMENT_METHODS, REGIONS
from workbench.lake.storage import Lake


def _vocab(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v.lower()}'" for v in values)


def expected_sales(landing: Path) -> duckdb.DuckDBPyConnection:
    """The clean sales rows per the documented rules, computed independently in DuckDB."""
    con = duckdb.connect()
    con.execute(
        f"""create view raw as select *, row_number() over () rn
            from read_csv('{landing}/sales-*.csv', all_varchar=true, filename=true);
        create view valid as select upper(trim(transaction_id)) tid, revenue::double revenue,
            lower(trim(region)) region, filename, rn
        from raw
        where nullif(trim(transaction_id), '') is not null
          and try_strptime(trim(date), '%Y-%m-%d') is not null
          and try_cast(trim(quantity) as bigint) >= 1
          and try_cast(revenue as double) > 0
          and lower(trim(region)) in ({_vocab(REGIONS)})
          and lower(trim(channel)) in ({_vocab(CHANNELS)})
          and lower(trim(category)) in ({_vocab(CATEGORIES)})
          and lower(trim(payment_method)) in ({_vocab(PAYMENT_METHODS)})
          and nullif(trim(store_id), '') is not null and nullif(trim(customer_id), '') is not null
          and nullif(trim(product_id), '') is not null;
        create view expected as select tid, arg_min(revenue, (filename, rn)) revenue,
            arg_min(region, (filename, rn)) region from valid group by tid"""
    )
    return con


def lake_sql(lake: Lake, table: str, sql: str) -> list[tuple]:
    con = duckdb.connect()
    con.execute(f"create view {table} as select * from read_parquet({lake.files(table)!r}, hive_partitioning=true)")
    return con.execute(sql).fetchall()


def test_small_lake_matches_independent_computation(small_lake: str, landing_dir: Path) -> None:
    lake = Lake(small_lake)
    assert lake.tables() == ["customers", "products", "sales", "stores"]
    exp = expected_sales(landing_dir)
    want = exp.execute("select count(*), round(sum(revenue), 2) from expected").fetchone()
    got = lake_sql(lake, "sales", "select count(*), round(sum(revenue), 2) from sales")[0]
    assert got == want
    ((n, distinct),) = lake_sql(lake, "sales", "select count(*), count(distinct transaction_id) from sales")
    assert n == distinct
    by_region_want = exp.execute("select region, round(sum(revenue), 2) from expected group by 1 order by 1")
    by_region_got = lake_sql(
        lake, "sales", "select lower(region), round(sum(revenue), 2) from sales group by 1 order by 1"
    )
    assert by_region_got == by_region_want.fetchall()


def test_values_are_normalised_and_derived(small_lake: str) -> None:
    lake = Lake(small_lake)
    cats = {r[0] for r in lake_sql(lake, "sales", "select distinct category from sales")}
    assert cats == set(CATEGORIES)
    regions = {r[0] for r in lake_sql(lake, "stores", "select distinct region from stores")}
    assert regions == set(REGIONS)
    bad = lake_sql(
        lake,
        "sales",
        """select count(*) from sales where revenue <= 0 or quantity < 1 or year <> year(date)
           or month <> month(date) or abs(profit_margin - profit / revenue * 100) > 1e-9
           or transaction_id <> upper(trim(transaction_id))""",
    )
    assert bad == [(0,)]


def test_pii_is_tokenised_with_the_keyed_hash(small_lake: str, landing_dir: Path) -> None:
    raw = duckdb.sql(f"select customer_id, email from read_csv('{landing_dir}/customers.csv') order by 1 limit 5")
    lake = Lake(small_lake)
    got = dict(lake_sql(lake, "customers", "select customer_id, email from customers"))
    for customer_id, email in raw.fetchall():
        assert got[customer_id] == hmac.new(b"test-only-key", email.encode(), hashlib.sha256).hexdigest()
    assert not any("@" in (v or "") for v in got.values())


def test_report_counts_add_up_and_are_stored(tmp_path: Path, landing_dir: Path) -> None:
    report = ingest(landing_dir, str(tmp_path / "lake"))
    for name, t in report.tables.items():
        assert t.rows_read == t.rows_written + t.rows_dropped, name
    sales = report.tables["sales"]
    assert {"duplicate", "nonpositive_revenue", "missing_value", "malformed_value"} <= set(sales.dropped)
    assert sales.version == 1 and len(sales.files) == 3
    assert {"year", "month", "region"} == set(sales.touched_partitions[0])
    stored = json.loads(Path(report.report_uri or "").read_text())
    assert stored["tables"]["sales"]["rows_written"] == sales.rows_written
    assert stored["rows_read"] == report.rows_read


def test_reingest_adds_nothing(fresh_lake: str, landing_dir: Path) -> None:
    lake = Lake(fresh_lake)
    versions = {t: lake.version(t) for t in lake.tables()}
    report = ingest(landing_dir, lake)
    assert report.rows_written == 0
    assert all(len(t.skipped_files) >= 1 and not t.files for t in report.tables.values())
    assert {t: lake.version(t) for t in lake.tables()} == versions


def test_new_file_is_appended_and_deduped_against_the_lake(fresh_lake: str, landing_dir: Path, tmp_path: Path) -> None:
    lake = Lake(fresh_lake)
    before = lake_sql(lake, "sales", "select count(*) from sales")[0][0]
    landing = tmp_path / "landing"
    shutil.copytree(landing_dir, landing)
    # a new file: 50 rows already in the lake (ids re-cased / padded) + 40 new rows
    old = pacsv.read_csv(landing / "sales-00000.csv", convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
    old = old.filter(pa.compute.greater(old["revenue"], 0)).slice(100, 90)
    old = old.filter(pa.compute.is_valid(old["payment_method"]))
    ids = old["transaction_id"].to_pylist()
    new_ids = [f" {t.lower()} " if i < 50 else f"N{i:010d}" for i, t in enumerate(ids)]
    new = old.set_column(0, "transaction_id", pa.array(new_ids))
    pacsv.write_csv(new, landing / "sales-new-0001.csv")
    n_new_valid = sum(1 for i in range(new.num_rows) if i >= 50)

    report = ingest(landing, lake)
    sales = report.tables["sales"]
    assert [Path(f).name for f in sales.files] == ["sales-new-0001.csv"]
    assert sales.dropped.get("already_in_lake") == 50
    assert sales.rows_written == n_new_valid
    assert lake_sql(lake, "sales", "select count(*), count(distinct transaction_id) from sales")[0] == (
        before + n_new_valid,
        before + n_new_valid,
    )
    assert ingest(landing, lake).rows_written == 0


def test_dedupe_reads_only_lake_files_overlapping_the_batch_ids(
    fresh_lake: str, landing_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch of new ids reads no lake file; one old id among them brings in only its file(s)."""
    import workbench.lake.ingest as ingest_module

    lake = Lake(fresh_lake)
    read: list[str] = []
    real_spill = ingest_module._spill_existing

    def counting_spill(lake_: Lake, files: list[str], *args: object) -> None:
        read.extend(files)
        real_spill(lake_, files, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(ingest_module, "_spill_existing", counting_spill)
    top = lake_sql(lake, "sales", "select max(transaction_id) from sales")[0][0]
    old = pacsv.read_csv(
        landing_dir / "sales-00000.csv", convert_options=pacsv.ConvertOptions(strings_can_be_null=True)
    )
    old = old.filter(pa.compute.greater(old["revenue"], 0))
    rows = old.filter(pa.compute.is_valid(old["payment_method"])).slice(100, 30)
    landing = tmp_path / "new"
    landing.mkdir()
    new_ids = [f"{top}Z{i:04d}" for i in range(30)]  # sorts after every id in the lake
    pacsv.write_csv(rows.set_column(0, "transaction_id", pa.array(new_ids)), landing / "sales-a.csv")
    assert ingest(landing, lake).tables["sales"].rows_written == 30
    assert read == []

    again = tmp_path / "again"
    again.mkdir()
    repeat_id = lake_sql(lake, "sales", "select min(transaction_id) from sales")[0][0]
    ids = [repeat_id] + [f"{top}Y{i:04d}" for i in range(29)]
    pacsv.write_csv(rows.set_column(0, "transaction_id", pa.array(ids)), again / "sales-b.csv")
    report = ingest(again, lake).tables["sales"]
    assert report.dropped.get("already_in_lake") == 1 and report.rows_written == 29
    assert 0 < len(read) < len(lake.files("sales"))


def test_cli_ingest_and_generate_json(tmp_path: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(main, ["generate", "--rows", "3000", "--out", str(tmp_path / "land"), "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["rows"]["sales"] == 3000
    res = runner.invoke(main, ["ingest", str(tmp_path / "land"), "--lake", str(tmp_path / "lake"), "--json"])
    assert res.exit_code == 0, res.output
    body = json.loads(res.output)
    assert body["tables"]["sales"]["rows_read"] == 3000
    assert body["report_uri"].endswith(".json")
    text = runner.invoke(main, ["--lake", str(tmp_path / "lake"), "ingest", str(tmp_path / "land")])
    assert text.exit_code == 0 and "sales" in text.output and "skipped" in text.output


@pytest.mark.parametrize("as_json", [True, False])
def test_cli_missing_landing_is_a_data_error(tmp_path: Path, as_json: bool) -> None:
    args = ["ingest", str(tmp_path / "nope"), "--lake", str(tmp_path / "lake")] + (["--json"] if as_json else [])
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 3
    if as_json:
        assert json.loads(res.output)["error"]["type"] == "data_error"


def test_issue_acceptance_200k_rows_via_cli(tmp_path: Path) -> None:
    """Issue 2 as written: `generate --rows 200000`, `ingest`, count = distinct valid ids, re-ingest adds nothing."""
    landing, lake_dir = tmp_path / "landing", tmp_path / "lake"
    runner = CliRunner()
    gen = runner.invoke(main, ["generate", "--rows", "200000", "--out", str(landing), "--seed", "11", "--json"])
    assert gen.exit_code == 0, gen.output
    first = runner.invoke(main, ["ingest", str(landing), "--lake", str(lake_dir), "--json"])
    assert first.exit_code == 0, first.output
    lake = Lake(str(lake_dir))
    (want,) = expected_sales(landing).execute("select count(*) from expected").fetchone()
    ((got, distinct),) = lake_sql(lake, "sales", "select count(*), count(distinct transaction_id) from sales")
    assert got == distinct == want
    version = lake.version("sales")
    again = runner.invoke(main, ["ingest", str(landing), "--lake", str(lake_dir), "--json"])
    assert again.exit_code == 0, again.output
    assert lake.version("sales") == version
    assert lake_sql(lake, "sales", "select count(*) from sales") == [(want,)]


def _same_sales(a: Lake, b: Lake) -> None:
    sql = "select count(*), count(distinct transaction_id), round(sum(revenue), 4), round(sum(profit), 4) from sales"
    assert lake_sql(a, "sales", sql) == lake_sql(b, "sales", sql)
    parts = "select year, month, region, count(*) from sales group by all order by all"
    assert lake_sql(a, "sales", parts) == lake_sql(b, "sales", parts)


def test_ingest_runs_on_a_configured_scheduler(small_lake: str, landing_dir: Path, tmp_path: Path) -> None:
    """WORKBENCH_SCHEDULER set: the tasks run on that cluster's worker processes, same lake as on threads."""
    from distributed import LocalCluster

    from workbench.cluster import close_client
    from workbench.config import Settings

    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None) as cluster:
        settings = Settings(
            home=str(tmp_path / "home"),
            pii_key="test-only-key",
            lake=str(tmp_path / "lake"),
            scheduler=cluster.scheduler_address,
        )
        try:
            report = ingest(landing_dir, Lake(str(tmp_path / "lake"), settings=settings))
        finally:
            close_client()
    assert report.ran_on == cluster.scheduler_address
    _same_sales(Lake(str(tmp_path / "lake")), Lake(small_lake))
    assert report.rows_written == sum(t.rows_written for t in report.tables.values()) > 0


def test_ingest_falls_back_to_threads_when_the_scheduler_is_down(
    small_lake: str, landing_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import socket

    from workbench.cluster import close_client
    from workbench.config import Settings

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = Settings(
        home=str(tmp_path / "home"),
        pii_key="test-only-key",
        lake=str(tmp_path / "lake"),
        scheduler=f"tcp://127.0.0.1:{port}",
    )
    try:
        with caplog.at_level("WARNING", logger="workbench.lake.ingest"):
            report = ingest(landing_dir, Lake(str(tmp_path / "lake"), settings=settings))
    finally:
        close_client()
    assert report.ran_on == "threads"
    assert "ingest runs on local threads" in caplog.text and "unavailable" in caplog.text
    _same_sales(Lake(str(tmp_path / "lake")), Lake(small_lake))
