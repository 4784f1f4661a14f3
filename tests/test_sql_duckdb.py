"""`workbench sql` on DuckDB: same answers as plain DuckDB over the Delta files, pruning, shapes."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
from click.testing import CliRunner
from deltalake import DeltaTable

from tests.corpus import analyst_queries, dev_queries, normalise
from tests.test_guard import HOSTILE
from workbench.cli import main
from workbench.errors import QueryRefused, WorkbenchError
from workbench.lake.delta import add_actions
from workbench.session import Workbench

TABLES = ("sales", "products", "stores", "customers")
CORPUS = dev_queries() + analyst_queries()


@pytest.fixture(scope="module")
def wb(sql_lake: str) -> Iterator[Workbench]:
    session = Workbench.open(lake=sql_lake)
    yield session
    session.close()


@pytest.fixture(scope="module")
def reference(sql_lake: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """Plain DuckDB over each table's current Delta file list (independent of the workbench).

    Tables, not views over the files: DuckDB 2.0's ``window_self_join`` optimizer answers windows
    over a hive-partitioned scan wrongly (see test_window_over_a_filtered_partition_column), and the
    reference must not share the engine's scan path.
    """
    con = duckdb.connect()
    for name in TABLES:
        files = [u.removeprefix("file://") for u in DeltaTable(f"{sql_lake}/{name}").file_uris()]
        file_list = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet([{file_list}], hive_partitioning = true)")
    yield con
    con.close()


def _expected(con: duckdb.DuckDBPyConnection, sql: str) -> list[list[Any]]:
    return [list(r) for r in con.execute(sql).fetchall()]


def test_dev_questions_are_present() -> None:
    assert len(dev_queries()) >= 40, "questions-dev.jsonl not found next to the repository"


@pytest.mark.parametrize("case", CORPUS, ids=[c["id"] for c in CORPUS])
def test_duckdb_matches_plain_duckdb(wb: Workbench, reference: duckdb.DuckDBPyConnection, case: dict[str, Any]) -> None:
    got = wb.sql(case["sql"], engine="duckdb")
    want = _expected(reference, case["sql"])
    assert normalise(got.rows, case["compare"]) == normalise(want, case["compare"])
    assert got.engine == "duckdb"


def _cli_matches(sql_lake: str, reference: duckdb.DuckDBPyConnection, cases: list[dict[str, Any]]) -> None:
    runner = CliRunner()
    for case in cases:
        out = runner.invoke(main, ["--lake", sql_lake, "sql", "--json", case["sql"]])
        assert out.exit_code == 0, out.output
        body = json.loads(out.output)
        assert normalise(body["rows"], case["compare"]) == normalise(_expected(reference, case["sql"]), case["compare"])


def test_cli_runs_dev_questions(sql_lake: str, reference: duckdb.DuckDBPyConnection) -> None:
    """Fast default check: the CLI path (one session per invocation) on a few dev questions.

    Every question's answer is already checked through the Python API above; the CLI adds
    only argument parsing and JSON output, which three questions cover.
    """
    _cli_matches(sql_lake, reference, dev_queries()[:3])


@pytest.mark.slow
def test_cli_runs_every_dev_question(sql_lake: str, reference: duckdb.DuckDBPyConnection) -> None:
    _cli_matches(sql_lake, reference, dev_queries())


def test_json_result_shape(sql_lake: str) -> None:
    out = CliRunner().invoke(main, ["--lake", sql_lake, "sql", "--json", "SELECT COUNT(*) AS n FROM sales"])
    assert out.exit_code == 0, out.output
    body = json.loads(out.output)
    assert set(body) >= {
        "columns",
        "rows",
        "engine",
        "elapsed_ms",
        "files_scanned",
        "bytes_scanned",
        "route",
        "reason",
        "cached",
        "sql",
    }
    assert body["columns"] == ["n"] and body["cached"] is False and body["engine"] == "duckdb"


def test_json_error_shape_is_locked(sql_lake: str) -> None:
    out = CliRunner().invoke(main, ["--lake", sql_lake, "sql", "--json", "SELECT * FROM '/etc/passwd'"])
    assert out.exit_code != 0
    body = json.loads(out.output)
    assert list(body) == ["error"]
    assert set(body["error"]) == {"type", "message", "hint"}
    assert body["error"]["type"] == "query_refused"
    assert "/etc/passwd" in body["error"]["message"]


def test_partition_columns_have_plain_types(wb: Workbench) -> None:
    df = wb.sql("SELECT year, month, region FROM sales LIMIT 5", engine="duckdb").df
    assert str(df["year"].dtype).startswith("int") and str(df["month"].dtype).startswith("int")
    assert df["region"].map(type).eq(str).all()


def _delta_scan(lake: str, filters: list[tuple[str, str, Any]]) -> tuple[int, int]:
    dt = DeltaTable(f"{lake}/sales")
    files = dt.file_uris(partition_filters=filters)
    actions = add_actions(dt).to_pydict()
    sizes = dict(zip(actions["path"], actions["size_bytes"], strict=True))
    total = sum(size for path, size in sizes.items() if any(f.endswith(path) for f in files))
    return len(files), total


@pytest.mark.parametrize(
    ("where", "filters"),
    [
        ("year = 2024 AND region = 'North'", [("year", "=", "2024"), ("region", "=", "North")]),
        ("year = 2023 AND month BETWEEN 10 AND 12", [("year", "=", "2023"), ("month", "in", ["10", "11", "12"])]),
        ("region IN ('West', 'East') AND year = 2022", [("region", "in", ["West", "East"]), ("year", "=", "2022")]),
    ],
)
def test_partition_filter_scans_only_matching_files(wb: Workbench, sql_lake: str, where: str, filters: list) -> None:
    result = wb.sql(f"SELECT COUNT(*) FROM sales WHERE {where}", engine="duckdb")
    n_files, n_bytes = _delta_scan(sql_lake, filters)
    assert 0 < result.files_scanned == n_files
    assert result.bytes_scanned == n_bytes
    assert result.files_scanned < len(DeltaTable(f"{sql_lake}/sales").file_uris())


def _hive_frame(files: list[str]) -> pd.DataFrame:
    """The files' rows with their ``key=value`` path segments as integer columns (pandas, no DuckDB)."""
    parts = []
    for f in files:
        frame = pd.read_parquet(f, columns=["revenue"])
        for segment in Path(f).parent.parts:
            key, sep, value = segment.partition("=")
            if sep:
                frame[key] = int(value) if value.isdigit() else value
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


@pytest.mark.parametrize("where", ["year = 2024", "year = 2024 OR year = 2024", "year + 0 >= 2024"])
def test_window_over_a_filtered_partition_column(wb: Workbench, sql_lake: str, where: str) -> None:
    """A window over aggregates, filtered on a hive partition column, pruned or not.

    DuckDB 2.0.x's window_self_join optimizer returned the unfiltered average here; the engine's
    connection switches it off. Expected values come from pandas over the same files.
    """
    sql = (
        "SELECT region, month, SUM(revenue) AS r, AVG(SUM(revenue)) OVER (PARTITION BY region) AS avg_r "
        f"FROM sales WHERE {where} GROUP BY region, month"
    )
    got = wb.sql(sql, engine="duckdb").df.sort_values(["region", "month"]).reset_index(drop=True)
    files = [u.removeprefix("file://") for u in DeltaTable(f"{sql_lake}/sales").file_uris()]
    frame = _hive_frame(files)
    monthly = frame[frame.year >= 2024].groupby(["region", "month"], as_index=False).revenue.sum()
    monthly["avg_r"] = monthly.groupby("region").revenue.transform("mean")
    assert len(got) == len(monthly) > 0
    assert got.r.round(2).tolist() == monthly.revenue.round(2).tolist()
    assert got.avg_r.round(2).tolist() == monthly.avg_r.round(2).tolist()


def test_pruning_through_a_join(wb: Workbench, sql_lake: str) -> None:
    sql = (
        "SELECT st.store_type, SUM(s.revenue) FROM sales s JOIN stores st ON s.store_id = st.store_id "
        "WHERE s.year = 2024 AND s.region = 'North' GROUP BY 1"
    )
    result = wb.sql(sql, engine="duckdb")
    n_sales, _ = _delta_scan(sql_lake, [("year", "=", "2024"), ("region", "=", "North")])
    assert result.files_scanned == n_sales + len(DeltaTable(f"{sql_lake}/stores").file_uris())


def _tree(path: Path) -> dict[str, tuple[int, float]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime) for p in path.rglob("*") if p.is_file()}


def test_hostile_statements_change_nothing(
    wb: Workbench, sql_lake: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    before = _tree(Path(sql_lake))
    for sql in HOSTILE:
        with pytest.raises(WorkbenchError):
            wb.sql(sql)
    assert _tree(Path(sql_lake)) == before
    assert list(tmp_path.iterdir()) == []
    for path in ("/tmp/out.csv", "/tmp/out.parquet", "/tmp/x.db"):
        assert not os.path.exists(path) or os.path.getmtime(path) < min(v[1] for v in before.values())
    assert wb.sql("SELECT COUNT(*) FROM sales").rows[0][0] > 0


def test_connection_refuses_files_outside_the_lake_even_past_the_guard(wb: Workbench) -> None:
    """Defence in depth: the DuckDB connection itself cannot read /etc/passwd."""
    con = wb.engine("duckdb").con  # type: ignore[attr-defined]
    with pytest.raises(duckdb.Error):
        con.execute("SELECT * FROM read_text('/etc/passwd')").fetchall()
    with pytest.raises(duckdb.Error):
        con.execute("SET enable_external_access = true")


def test_row_limit_truncates(sql_lake: str) -> None:
    with Workbench.open(lake=sql_lake, row_limit=7) as session:
        result = session.sql("SELECT transaction_id FROM sales")
    assert len(result.rows) == 7 and result.truncated


def test_unknown_table_suggests(wb: Workbench) -> None:
    with pytest.raises(QueryRefused) as info:
        wb.sql("SELECT * FROM sale")
    assert "sales" in info.value.hint


def test_new_delta_version_is_picked_up(fresh_lake: str) -> None:
    import pyarrow as pa
    from deltalake import write_deltalake

    with Workbench.open(lake=fresh_lake) as session:
        before = session.sql("SELECT COUNT(*) FROM stores").rows[0][0]
        stores = DeltaTable(f"{fresh_lake}/stores").to_pyarrow_table()
        write_deltalake(f"{fresh_lake}/stores", pa.Table.from_batches(stores.slice(0, 1).to_batches()), mode="append")
        after = session.sql("SELECT COUNT(*) FROM stores").rows[0][0]
    assert after == before + 1
