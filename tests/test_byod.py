"""Bring your own data end to end: a star schema (hive-partitioned Parquet + a CSV export)
is registered, profiled, gets a drafted model, and the offline planner answers questions on
it. Every expected number is computed independently with pandas from the generated files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from tests.data.star import frames, write_star
from workbench.config import Settings
from workbench.lake.storage import Lake
from workbench.session import Workbench


@pytest.fixture(scope="module")
def star(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_star(tmp_path_factory.mktemp("star"))


@pytest.fixture(scope="module")
def byod(star: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Lake + home of their own (module scope), the four tables registered, a drafted model in use."""
    from workbench.lake.register import invalidate, register
    from workbench.semantic.draft import draft_yaml, use_model

    base = tmp_path_factory.mktemp("byod")
    settings = Settings(lake=str(base / "lake"), home=str(base / "home"), pii_key="test-only-key")
    lake = Lake(settings=settings)
    regs = {
        "coffee_shops": register("coffee_shops", str(star / "shops.parquet"), lake=lake),
        "drinks": register("drinks", str(star / "drinks.parquet"), lake=lake),
        "members": register("members", str(star / "members.csv"), lake=lake),
        "orders": register("orders", str(star / "orders"), lake=lake),
    }
    text = draft_yaml(lake)
    model_file = base / "model.yaml"
    model_file.write_text(text)
    use_model(model_file, settings)
    wb = Workbench(lake, settings)
    yield {"lake": lake, "settings": settings, "regs": regs, "wb": wb, "model": text, "frames": frames(star)}
    wb.close()
    invalidate()


def test_in_place_and_copy_modes(byod: dict[str, Any]) -> None:
    regs = byod["regs"]
    assert regs["orders"].mode == "in_place" and regs["orders"].partition_columns == ["year", "month"]
    assert regs["orders"].files == 24 and regs["orders"].rows == 20_000
    assert regs["members"].mode == "copy"
    assert regs["members"].details["renamed_columns"] == {"Loyalty Level": "loyalty_level"}
    quality = regs["members"].details["quality"]
    assert quality["rows_read"] == quality["rows_written"] == 300
    assert quality["trimmed_values"] > 0  # padded " Porto " -> "Porto"
    nulls = byod["wb"].sql("SELECT COUNT(*) AS n FROM members WHERE home_city IS NULL", engine="duckdb").df
    assert int(nulls["n"][0]) == 12  # empty cells became NULL


def test_profile_types_nulls_keys_and_joins(byod: dict[str, Any]) -> None:
    from workbench.lake.profile import load_profiles

    profiles = load_profiles(byod["lake"])
    members = {c["name"]: c for c in profiles["members"]["columns"]}
    f = byod["frames"]["members"]
    assert members["home_city"]["null_rate"] == pytest.approx(f["home_city"].isna().mean(), abs=1e-6)
    assert members["loyalty_level"]["values"] == ["Bean", "Reserve", "Roast"]
    assert members["joined"]["type"] == "DATE"
    assert profiles["members"]["candidate_keys"] == ["member_id"]
    orders = {c["name"]: c for c in profiles["orders"]["columns"]}
    o = byod["frames"]["orders"]
    assert orders["amount"]["min"] == pytest.approx(o["amount"].min())
    assert orders["amount"]["max"] == pytest.approx(o["amount"].max())
    assert orders["payment"]["values"] == sorted(o["payment"].unique())
    joins = {(j["left"], j["left_column"], j["right"]) for j in profiles["orders"]["joins"]}
    assert joins == {
        ("orders", "shop_id", "coffee_shops"),
        ("orders", "drink_id", "drinks"),
        ("orders", "member_id", "members"),
    }


def test_draft_model_shape(byod: dict[str, Any]) -> None:
    model = yaml.safe_load(byod["model"])
    assert model["fact"] == "orders"
    assert {j["right"] for j in model["joins"]} == {"coffee_shops", "drinks", "members"}
    assert model["metrics"]["amount"]["sql"] == "SUM(amount)"
    assert model["metrics"]["average_tip"]["sql"] == "AVG(tip)"
    assert model["dimensions"]["loyalty_level"]["vocabulary"] is True
    assert {"date", "month", "quarter", "year"} <= set(model["dimensions"])
    assert model["time"] == {"date": "order_date", "year": "year", "month": "month"}


def _joined(fr: dict[str, pd.DataFrame]) -> pd.DataFrame:
    members = fr["members"].rename(columns={"Loyalty Level": "loyalty_level"})
    members["loyalty_level"] = members["loyalty_level"].str.strip()
    return (
        fr["orders"].merge(fr["shops"], on="shop_id").merge(fr["drinks"], on="drink_id").merge(members, on="member_id")
    )


def _expect(fr: dict[str, pd.DataFrame]) -> list[tuple[str, Any]]:
    j = _joined(fr)
    y24, y23 = j[j.year == 2024], j[j.year == 2023]
    quarter = (y24.month - 1) // 3 + 1
    return [
        ("total amount in 2024", y24.amount.sum()),
        ("amount by city in 2024", y24.groupby("city").amount.sum()),
        ("number of orders by payment", j.groupby("payment").size()),
        ("average tip by shop format", j.groupby("shop_format").tip.mean()),
        ("amount by family in March 2024", y24[y24.month == 3].groupby("family").amount.sum()),
        ("cups by loyalty level", j.groupby("loyalty_level").cups.sum()),
        ("monthly amount in 2023", y23.groupby("month").amount.sum()),
        ("top 3 drinks by amount", j.groupby("drink_name").amount.sum().nlargest(3)),
        ("amount by year", j.groupby("year").amount.sum()),
        ("amount for Kiosk shops", j[j.shop_format == "Kiosk"].amount.sum()),
        ("average amount by payment", j.groupby("payment").amount.mean()),
        ("amount by quarter in 2024", y24.groupby(quarter).amount.sum()),
        ("how many drinks", float(len(fr["drinks"]))),
        ("number of members", float(len(fr["members"]))),
        ("tip by family in 2023", y23.groupby("family").tip.sum()),
        ("cups for Tea in 2024", y24[y24.family == "Tea"].cups.sum()),
        ("number of orders paid by App", float((j.payment == "App").sum())),
    ]


def _values(answer: Any) -> pd.Series | float:
    df = answer.df
    value_col = df.columns[-1]
    if len(df.columns) == 1:
        return float(df[value_col].iloc[0])
    keys = df.columns[:-1]
    index = df[keys[-1]]  # the innermost key ("monthly in 2023" groups by year, month)
    return pd.Series(df[value_col].to_numpy(dtype=float), index=index.to_numpy())


def test_fifteen_questions_answered_correctly(byod: dict[str, Any]) -> None:
    wb = byod["wb"]
    correct, wrong = [], []
    for question, expected in _expect(byod["frames"]):
        answer = wb.ask(question)
        assert answer.ok, (question, answer.answer, answer.error)
        got = _values(answer)
        if isinstance(expected, pd.Series):
            exp_s = expected.astype(float)
            exp_s.index = exp_s.index.to_numpy()
            ok = isinstance(got, pd.Series) and sorted(map(str, got.index)) == sorted(map(str, exp_s.index))
            ok = ok and all(abs(got[k] - exp_s[k]) <= 1e-6 * max(1.0, abs(exp_s[k])) for k in exp_s.index)
        else:
            ok = not isinstance(got, pd.Series) and abs(got - float(expected)) <= 1e-6 * max(1.0, abs(expected))
        (correct if ok else wrong).append((question, answer.sql))
    assert not wrong, wrong
    assert len(correct) >= 15


def test_sql_on_registered_tables_duckdb_vs_pandas(byod: dict[str, Any]) -> None:
    wb = byod["wb"]
    duck = wb.sql(JOIN_SQL, engine="duckdb")
    j = _joined(byod["frames"])
    expected = j[j.year == 2024].groupby(["city", "family"]).amount.sum().reset_index()
    assert duck.df["amount"].round(6).tolist() == expected["amount"].round(6).tolist()
    assert duck.files_scanned == 12 + 2  # 12 months of 2024 + two dimension files


JOIN_SQL = (
    "SELECT s.city, d.family, SUM(o.amount) AS amount FROM orders o JOIN coffee_shops s ON o.shop_id = s.shop_id "
    "JOIN drinks d ON o.drink_id = d.drink_id WHERE o.year = 2024 GROUP BY s.city, d.family ORDER BY 1, 2"
)


RANKED_SQL = "SELECT shop_id, RANK() OVER (ORDER BY SUM(amount) DESC) AS r FROM orders GROUP BY shop_id ORDER BY r"


@pytest.mark.slow
@pytest.mark.parametrize(
    "sql",
    [
        pytest.param(JOIN_SQL, id="join"),
        pytest.param(RANKED_SQL, id="rank"),
    ],
)
def test_dask_engine_on_registered_tables_matches_or_refuses(byod: dict[str, Any], dask_client: Any, sql: str) -> None:
    from workbench.errors import WorkbenchError

    want = byod["wb"].sql(sql, engine="duckdb").df
    with Workbench(byod["lake"], byod["settings"], dask_client=dask_client) as wb:
        try:
            got = wb.sql(sql, engine="dask").df
        except WorkbenchError as e:
            assert e.hint  # refused with what to do
            return
    pd.testing.assert_frame_equal(
        got.reset_index(drop=True), want.reset_index(drop=True), check_dtype=False, check_exact=False
    )


def test_cli_model_draft_and_use(byod: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.cli import main

    settings = byod["settings"]
    monkeypatch.setenv("WORKBENCH_HOME", settings.home)
    monkeypatch.setenv("WORKBENCH_LAKE", settings.lake)
    runner = CliRunner()
    out = runner.invoke(main, ["model", "draft", "orders", "drinks"])
    assert out.exit_code == 0, out.output
    drafted = yaml.safe_load(out.output)
    assert drafted["fact"] == "orders" and drafted["joins"] == [
        {"left": "orders", "right": "drinks", "column": "drink_id"}
    ]
    path = tmp_path / "m.yaml"
    path.write_text(out.output)
    used = runner.invoke(main, ["model", "use", str(path)])
    assert used.exit_code == 0 and "active model: draft" in used.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(out.output.replace("drinks:", "no_such_table:", 1))
    refused = runner.invoke(main, ["model", "use", str(bad)])
    assert refused.exit_code != 0
    listed = runner.invoke(main, ["registered", "--json"])
    assert {t["name"] for t in yaml.safe_load(listed.output)["tables"]} == {
        "coffee_shops",
        "drinks",
        "members",
        "orders",
    }
