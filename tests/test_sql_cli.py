"""`workbench sql` in a terminal: a page, not 100,000 rows; files for everything (issue 15).

Numbers are checked against plain DuckDB over the same Delta files, not against the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from click.testing import CliRunner
from deltalake import DeltaTable

from workbench.cli import main
from workbench.cli.output import table_text, tidy_float


def _plain(lake: str, sql: str) -> pd.DataFrame:
    files = DeltaTable(f"{lake}/sales").file_uris()
    con = duckdb.connect()
    con.execute(f"CREATE VIEW sales AS SELECT * FROM read_parquet({files!r}, hive_partitioning = true)")
    return con.execute(sql).df()


def _sql(lake: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--lake", lake, "sql", *args])
    return result.exit_code, result.stdout, result.stderr


def test_select_star_prints_a_page_with_the_row_count(small_lake: str) -> None:
    total = int(_plain(small_lake, "SELECT COUNT(*) FROM sales").iloc[0, 0])
    code, out, _ = _sql(small_lake, "SELECT * FROM sales")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 1 + 50 + 1  # header, a page, the footer
    assert f"50 of {total:,} rows shown" in lines[-1] and "--limit" in lines[-1] and "--output" in lines[-1]
    code, out, _ = _sql(small_lake, "SELECT * FROM sales", "--limit", "7")
    assert len(out.splitlines()) == 1 + 7 + 1


def test_json_still_prints_every_row(small_lake: str) -> None:
    total = int(_plain(small_lake, "SELECT COUNT(*) FROM sales WHERE year = 2023").iloc[0, 0])
    code, out, _ = _sql(small_lake, "SELECT transaction_id FROM sales WHERE year = 2023", "--json")
    assert code == 0
    assert len(json.loads(out)["rows"]) == total > 50


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".json", ".jsonl"])
def test_output_writes_every_row_at_full_precision(small_lake: str, tmp_path: Path, suffix: str) -> None:
    query = "SELECT transaction_id, revenue FROM sales"
    path = tmp_path / f"all{suffix}"
    code, out, err = _sql(small_lake, query, "--output", str(path))
    assert code == 0, err
    expected = _plain(small_lake, query).sort_values("transaction_id").reset_index(drop=True)
    if suffix == ".csv":
        got = pd.read_csv(path)
    elif suffix == ".parquet":
        got = pd.read_parquet(path)
    else:
        got = pd.read_json(path, lines=suffix == ".jsonl", dtype={"transaction_id": str})
    got = got.sort_values("transaction_id").reset_index(drop=True)
    assert f"wrote {len(expected):,} rows" in out
    assert len(got) == len(expected)
    assert got["transaction_id"].tolist() == expected["transaction_id"].tolist()
    assert abs(got["revenue"].sum() - expected["revenue"].sum()) < 1e-6


def test_output_with_an_unknown_extension_says_which_ones_work(small_lake: str, tmp_path: Path) -> None:
    code, _, err = _sql(small_lake, "SELECT 1 AS x FROM sales", "--output", str(tmp_path / "x.txt"))
    assert code != 0
    assert ".parquet" in err and not (tmp_path / "x.txt").exists()


def test_money_is_rounded_for_display_only(small_lake: str) -> None:
    query = "SELECT region, SUM(revenue) AS revenue FROM sales GROUP BY region ORDER BY region"
    expected = _plain(small_lake, query)
    code, out, _ = _sql(small_lake, query)
    assert code == 0
    for region, revenue in expected.itertuples(index=False):
        assert f"{revenue:,.2f}" in out and region in out
    code, out, _ = _sql(small_lake, query, "--json")
    rows = json.loads(out)["rows"]
    assert [r[1] for r in rows] == pytest.approx(expected["revenue"].tolist(), rel=1e-12)
    assert all(len(repr(r[1]).split(".")[-1]) <= 12 for r in rows)


def test_tidy_float_drops_binary_noise_only() -> None:
    assert tidy_float(12431455.390000004) == 12431455.39
    assert tidy_float(599475.8500000001) == 599475.85
    assert tidy_float(0.1234567890123) == 0.123456789012
    assert tidy_float(1e-9) == 1e-9


def test_text_left_numbers_right() -> None:
    df = pd.DataFrame({"category": ["Books", "Home & Garden"], "revenue": [5.0, 12345.678]})
    header, first, second = table_text(df, 10).splitlines()
    assert first.startswith("Books ") and second.startswith("Home & Garden")
    assert first.endswith("5.00") and second.endswith("12,345.68")
    assert header.startswith("category") and header.endswith("revenue")
