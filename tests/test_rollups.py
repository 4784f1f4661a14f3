"""Rollup tables: contents vs an independent DuckDB aggregation, refresh after an ingest, freshness."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.test_rollup_rewrite import lake_duckdb, same_rows
from workbench.config import get_settings
from workbench.lake.delta import add_actions, arrow_schema
from workbench.lake.storage import Lake
from workbench.sql.rollups import ROWS, Rollup, build, configured, rollup_state


def _expected(con, rollup: Rollup):  # type: ignore[no-untyped-def]
    dims = ", ".join(rollup.dimensions)
    sums = ", ".join(f"SUM({m}) AS {m}" for m in rollup.measures)
    return con.execute(f"SELECT {dims}, {sums}, COUNT(*) AS {ROWS} FROM sales GROUP BY ALL ORDER BY ALL").df()


def _actual(con, rollup: Rollup):  # type: ignore[no-untyped-def]
    cols = ", ".join([*rollup.dimensions, *rollup.measures, ROWS])
    return con.execute(f"SELECT {cols} FROM {rollup.view} ORDER BY ALL").df()


def test_rollups_equal_an_independent_aggregation(small_lake: str) -> None:
    con = lake_duckdb(small_lake)
    for rollup in configured(get_settings()):
        assert same_rows(_expected(con, rollup), _actual(con, rollup), ordered=True), rollup.name


def test_batched_aggregation_equals_the_independent_one(fresh_lake: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny batches force the partial-aggregate path (sums, counts, min/max re-aggregated, folded)."""
    from workbench.config import RollupSpec, Settings
    from workbench.sql import rollups as module

    monkeypatch.setattr(module, "BATCH_ROWS", 97)
    monkeypatch.setattr(module, "COMBINE_ROWS", 150)  # partials folded every few batches
    specs = [
        *get_settings().rollups,
        RollupSpec(name="monthly_minmax", dimensions=["year", "month", "channel"], grain="month", min_max=["revenue"]),
    ]
    settings = Settings(lake=fresh_lake, rollups=specs)
    lake = Lake(fresh_lake, settings=settings)
    built = build(lake, settings)
    assert {b.mode for b in built} == {"build"}
    con = lake_duckdb(fresh_lake)
    for rollup in configured(settings):
        con.execute(
            f"CREATE OR REPLACE VIEW {rollup.view} AS SELECT * FROM "
            f"read_parquet({lake.files(rollup.table)!r}, hive_partitioning = true)"
        )
        assert same_rows(_expected(con, rollup), _actual(con, rollup), ordered=True), rollup.name
    minmax = con.execute(
        "SELECT year, month, channel, rollup_min_revenue, rollup_max_revenue FROM rollup_monthly_minmax ORDER BY ALL"
    ).df()
    want = con.execute(
        "SELECT year, month, channel, MIN(revenue), MAX(revenue) FROM sales GROUP BY ALL ORDER BY ALL"
    ).df()
    assert same_rows(want, minmax, ordered=True)


def test_daily_rollup_carries_date_year_month_and_is_listed(small_lake: str) -> None:
    lake = Lake(small_lake)
    assert set(lake.tables("rollups")) >= {"rollups/daily_region_category_channel", "rollups/monthly_store"}
    daily = lake.table("rollups/daily_region_category_channel")
    names = set(arrow_schema(daily).names)
    assert {"date", "year", "month", "region", "category", "channel", ROWS, "revenue"} <= names
    state = rollup_state(lake, configured(get_settings())[0])
    assert state is not None and state["base_version"] == lake.version("sales")


def test_ingest_refreshes_only_touched_months(fresh_lake: str, tmp_path: Path) -> None:
    from workbench.lake.generate import generate
    from workbench.lake.ingest import ingest

    lake = Lake(fresh_lake)
    before = {r.name: lake.version(r.table) for r in configured(get_settings())}
    landing = tmp_path / "more"
    generate(2_000, str(landing), seed=99, start=dt.date(2024, 12, 1), end=dt.date(2024, 12, 31), chunk_rows=2_000)
    report = ingest(str(landing), lake)
    touched = {(int(p["year"]), int(p["month"])) for p in report.tables["sales"].touched_partitions}
    assert touched == {(2024, 12)}
    con = lake_duckdb(fresh_lake)
    for rollup in configured(get_settings()):
        last = lake.table(rollup.table).history(1)[0]
        assert lake.version(rollup.table) == before[rollup.name] + 1
        assert "predicate" in last["operationParameters"], "a refresh replaces only the touched months"
        assert "2024" in last["operationParameters"]["predicate"] and "12" in last["operationParameters"]["predicate"]
        assert rollup_state(lake, rollup)["base_version"] == lake.version("sales")  # type: ignore[index]
        assert same_rows(_expected(con, rollup), _actual(con, rollup), ordered=True), rollup.name


def test_a_missed_refresh_rebuilds_everything(fresh_lake: str) -> None:
    """A sales commit the rollups did not see (here: a delete) forces a full rebuild."""
    lake = Lake(fresh_lake)
    lake.table("sales").delete("year = 2022 AND month = 1")
    builds = build(lake, get_settings(), months=[(2024, 6)], previous_version=lake.version("sales") - 5)
    assert {b.mode for b in builds} == {"build"}
    con = lake_duckdb(fresh_lake)
    for rollup in configured(get_settings()):
        assert same_rows(_expected(con, rollup), _actual(con, rollup), ordered=True)
        assert con.execute(f"SELECT COUNT(*) FROM {rollup.view} WHERE year = 2022 AND month = 1").fetchone()[0] == 0


def test_unknown_rollup_column_is_a_config_error() -> None:
    from workbench.config import RollupSpec
    from workbench.errors import ConfigError
    from workbench.sql.rollups import resolve

    with pytest.raises(ConfigError, match="regoin"):
        resolve(RollupSpec(name="bad", dimensions=["regoin"]))


def test_cli_lists_fresh_rollups(small_lake: str) -> None:
    import json

    from click.testing import CliRunner

    from workbench.cli import main

    out = CliRunner().invoke(main, ["--lake", small_lake, "rollups", "list", "--json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.stdout)
    assert {r["name"] for r in rows} == {r.name for r in configured(get_settings())}
    assert all(r["fresh"] for r in rows)
    assert all(r["stale_reason"] is None for r in rows)


def test_cli_says_why_a_rollup_is_stale(small_lake: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A changed definition or a missing rollup is named, with the command that fixes it."""
    import json

    from click.testing import CliRunner

    from workbench.cli import main

    config = tmp_path / "workbench.yaml"
    config.write_text(
        "rollups:\n"
        "  - {name: monthly_store, dimensions: [year, month, store_id], grain: month}\n"
        "  - {name: brand_new, dimensions: [year, month, channel], grain: month}\n"
    )
    monkeypatch.setenv("WORKBENCH_CONFIG", str(config))
    from workbench.config import reset_settings

    reset_settings()
    out = CliRunner().invoke(main, ["--lake", small_lake, "rollups", "list", "--json"])
    assert out.exit_code == 0, out.output
    reasons = {r["name"]: r["stale_reason"] for r in json.loads(out.stdout)}
    assert reasons == {"monthly_store": "definition changed", "brand_new": "not built"}
    text = CliRunner().invoke(main, ["--lake", small_lake, "rollups", "list"]).output
    assert "STALE: definition changed" in text and "workbench rollups build" in text


def test_refreshes_compact_the_year_partition_and_stay_fresh(
    fresh_lake: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every refresh adds a file to its year; past the threshold they are merged, metadata kept."""
    from workbench.lake.generate import generate
    from workbench.lake.ingest import ingest
    from workbench.sql import rollups as module

    monkeypatch.setattr(module, "COMPACT_AT_FILES", 1)
    lake = Lake(fresh_lake)
    for month in (1, 2):  # two new months of one year: two refreshes, each adding a file to 2025
        landing = tmp_path / f"more-{month}"
        start, end = dt.date(2025, month, 1), dt.date(2025, month, 28)
        generate(2_000, str(landing), seed=month, start=start, end=end, chunk_rows=2_000)
        for csv in landing.glob("sales-*.csv"):  # ids of their own, not the lake's
            csv.write_text(csv.read_text().replace('"T0', f'"Z{month}', -1))
        assert ingest(str(landing), lake).tables["sales"].rows_written > 1_000
    con = lake_duckdb(fresh_lake)
    for rollup in configured(get_settings()):
        years = [str(y) for y in add_actions(lake.table(rollup.table)).to_pydict()["partition.year"]]
        assert years.count("2025") == 1, rollup.name
        assert lake.table(rollup.table).history(1)[0]["operation"] == "OPTIMIZE"
        assert rollup_state(lake, rollup)["base_version"] == lake.version("sales")  # type: ignore[index]
        assert same_rows(_expected(con, rollup), _actual(con, rollup), ordered=True), rollup.name
