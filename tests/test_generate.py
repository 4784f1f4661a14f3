"""The generator: deterministic, chunked, realistic and dirty in the documented ways.

Realism is checked with plain DuckDB over the landing CSV files of the session fixture.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from workbench.errors import ConfigError
from workbench.lake.generate import generate
from workbench.lake.schema import CATEGORIES, SALES_LANDING


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_deterministic_for_a_seed_and_chunked(tmp_path: Path) -> None:
    a = generate(5_000, str(tmp_path / "a"), seed=3, chunk_rows=2_000)
    generate(5_000, str(tmp_path / "b"), seed=3, chunk_rows=2_000)
    generate(5_000, str(tmp_path / "c"), seed=4, chunk_rows=2_000)
    assert [Path(f).name for f in a.files["sales"]] == ["sales-00000.csv", "sales-00001.csv", "sales-00002.csv"]
    assert a.rows["sales"] == 5_000
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a")["sales-00000.csv"] != _digest(tmp_path / "c")["sales-00000.csv"]
    n = duckdb.sql(f"select count(*) from read_csv('{tmp_path / 'a'}/sales-*.csv', all_varchar=true)").fetchall()
    assert n == [(5_000,)]


def test_parquet_format(tmp_path: Path) -> None:
    result = generate(3_000, str(tmp_path), seed=1, fmt="parquet")
    table = pq.read_table(result.files["sales"][0])
    assert table.num_rows == 3_000
    assert table.schema.names == SALES_LANDING.names
    assert pq.read_table(result.files["customers"][0]).num_rows == result.rows["customers"]


def test_periods_split_the_dataset_like_arrivals(tmp_path: Path) -> None:
    """Consecutive periods add up to the whole dataset: every row once, ids contiguous, dates inside."""
    periods = [(dt.date(2022, 1, 1), dt.date(2023, 6, 30)), (dt.date(2023, 7, 1), dt.date(2024, 12, 31))]
    counts = []
    for i, period in enumerate(periods):
        out = tmp_path / f"p{i}"
        counts.append(generate(9_000, str(out), seed=3, chunk_rows=2_000, period=period).rows["sales"])
        first, last = period
        ids, lo, hi, bad = duckdb.execute(
            f"""select count(distinct upper(trim(transaction_id))), min(try_strptime(date, '%Y-%m-%d')),
                max(try_strptime(date, '%Y-%m-%d')), count(*) filter (where try_strptime(date, '%Y-%m-%d') is not null
                and try_strptime(date, '%Y-%m-%d')::date not between '{first}' and '{last}')
            from read_csv('{out}/sales-*.csv', all_varchar=true)"""
        ).fetchall()[0]
        assert bad == 0 and lo.date() >= first and hi.date() <= last
        assert ids == counts[-1] - round(counts[-1] * 0.005)  # distinct ids = rows less the duplicates
    assert sum(counts) == 9_000
    # ids continue across periods: the second period starts where the first stopped
    ranges = duckdb.sql(
        f"""select filename like '%/p0/%' is_first, min(upper(trim(transaction_id))), max(upper(trim(transaction_id)))
        from read_csv('{tmp_path}/p*/sales-*.csv', all_varchar=true, filename=true) group by 1 order by 1 desc"""
    ).fetchall()
    assert ranges[0][2] < ranges[1][1]
    # the whole dataset's calendar: the later period (growth, Q4 peaks) holds more rows
    assert counts[1] > counts[0] * 1.05


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        generate(0, str(tmp_path))
    with pytest.raises(ConfigError):
        generate(10, str(tmp_path), fmt="xlsx")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="outside"):
        generate(10, str(tmp_path), period=(dt.date(2030, 1, 1), dt.date(2030, 1, 31)))


@pytest.fixture(scope="module")
def sales(landing_dir: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(
        f"""create view raw as select * from read_csv('{landing_dir}/sales-*.csv', all_varchar=true);
        create view s as select upper(trim(transaction_id)) tid, try_strptime(date, '%Y-%m-%d')::date d,
            lower(trim(region)) region, lower(trim(channel)) channel, trim(category) category_raw,
            lower(trim(category)) category, try_cast(quantity as bigint) quantity, discount::double discount,
            revenue::double revenue, profit::double profit, product_id, customer_id
        from raw"""
    )
    return con


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> float:
    return con.execute(sql).fetchall()[0][0]  # type: ignore[no-any-return]


def test_seasonality_and_weekdays(sales: duckdb.DuckDBPyConnection) -> None:
    per_day = "select d, sum(revenue) r, count(*) n from s where d is not null and revenue > 0 group by d"
    q4 = _one(sales, f"select avg(n) from ({per_day}) where month(d) >= 10")
    q1 = _one(sales, f"select avg(n) from ({per_day}) where month(d) <= 3")
    jan_feb = _one(sales, f"select avg(n) from ({per_day}) where month(d) in (1, 2)")
    overall = _one(sales, f"select avg(n) from ({per_day})")
    late_nov = _one(sales, f"select avg(n) from ({per_day}) where month(d) = 11 and day(d) >= 22")
    early_nov = _one(sales, f"select avg(n) from ({per_day}) where month(d) = 11 and day(d) < 22")
    assert q4 > 1.3 * q1
    assert jan_feb < 0.85 * overall
    assert late_nov > 1.6 * early_nov
    saturday = _one(sales, f"select avg(n) from ({per_day}) where dayofweek(d) = 6")
    tuesday = _one(sales, f"select avg(n) from ({per_day}) where dayofweek(d) = 2")
    assert saturday > 1.2 * tuesday


def test_trends_channel_shift_and_promotions(sales: duckdb.DuckDBPyConnection) -> None:
    def growth(category: str) -> float:
        return _one(
            sales,
            f"""select sum(case when year(d) = 2024 then 1 else 0 end) / sum(case when year(d) = 2022 then 1 else 0 end)
            from s where category = '{category}'""",
        )

    assert growth("electronics") > 1.15 * growth("books")
    online = "avg(case when channel in ('online', 'mobile') then 1.0 else 0.0 end)"
    assert (
        _one(sales, f"select {online} from s where year(d) = 2024")
        > _one(sales, f"select {online} from s where year(d) = 2022") + 0.1
    )
    promo_q = _one(sales, "select avg(quantity) from s where discount >= 0.2")
    plain_q = _one(sales, "select avg(quantity) from s where discount = 0")
    assert promo_q > 1.3 * plain_q
    promo_m = _one(sales, "select sum(profit) / sum(revenue) from s where discount >= 0.2 and revenue > 0")
    plain_m = _one(sales, "select sum(profit) / sum(revenue) from s where discount = 0 and revenue > 0")
    assert promo_m < plain_m - 0.1


def test_heavy_tails(sales: duckdb.DuckDBPyConnection) -> None:
    def top_decile_share(key: str, measure: str) -> float:
        return _one(
            sales,
            f"""with t as (select {key} k, sum({measure}) v from s where revenue > 0 group by 1),
                r as (select v, ntile(10) over (order by v desc) tile from t)
            select sum(case when tile = 1 then v end) / sum(v) from r""",
        )

    assert top_decile_share("product_id", "1") > 0.4
    assert top_decile_share("customer_id", "revenue") > 0.3


def test_dirt_is_present(sales: duckdb.DuckDBPyConnection) -> None:
    n = _one(sales, "select count(*) from raw")
    dup_rate = (n - _one(sales, "select count(distinct tid) from s")) / n
    assert 0.003 < dup_rate < 0.008
    assert _one(sales, "select count(*) from raw where transaction_id <> upper(trim(transaction_id))") > 0
    assert _one(sales, "select count(*) from s where revenue <= 0") > 0
    assert _one(sales, "select count(*) from raw where payment_method is null") > 0
    assert _one(sales, "select count(*) from s where quantity is null") > 0
    assert _one(sales, "select count(*) from s where d is null") > 0
    canonical = ", ".join(f"'{c}'" for c in CATEGORIES)
    assert _one(sales, f"select count(*) from s where category_raw not in ({canonical})") > 0
    assert _one(sales, "select count(*) from raw where region <> trim(region) or region = upper(region)") > 0


def test_cli_period(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from workbench.cli import main

    args = ["generate", "--rows", "20000", "--out", str(tmp_path), "--json"]
    out = CliRunner().invoke(main, [*args, "--period", "2024-12-01..2024-12-31"])
    assert out.exit_code == 0, out.output
    body = json.loads(out.output)
    (n,) = duckdb.execute(f"select count(*) from read_csv('{tmp_path}/sales-*.csv', all_varchar=true)").fetchall()[0]
    assert n == body["rows"]["sales"] and 0 < n < 20_000
    bad = CliRunner().invoke(main, [*args, "--period", "December"])
    assert bad.exit_code == 2 and "FIRST..LAST" in bad.output
