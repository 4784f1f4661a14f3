"""Types a user's CSV really has (workbench.lake.types), through a real registration copy."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

from workbench.lake.types import date_order, infer


def _col(values: list[str | None]) -> pa.ChunkedArray:
    return pa.chunked_array([pa.array(values, pa.string())])


@pytest.mark.parametrize(
    ("values", "kind", "ambiguous"),
    [
        (["3/14/2024", "12/1/2023"], "mdy", False),
        (["14/3/2024", "1/12/2023"], "dmy", False),
        (["03/04/2024", "01/02/2023"], "mdy", True),
        (["13/14/2024"], None, None),
    ],
)
def test_date_order_from_values(values: list[str], kind: str | None, ambiguous: bool | None) -> None:
    got = date_order(values)
    assert (got is None) if kind is None else got == (kind, ambiguous)


def test_inferred_types_and_notes() -> None:
    codes = infer("zip", _col(["02134", "10001"]))
    assert codes.array.to_pylist() == ["02134", "10001"] and "leading zeros" in (codes.note or "")
    money = infer("amount", _col(["$1,234.50", "(3.50)", "12.00", None]))
    assert money.array.to_pylist() == [1234.5, -3.5, 12.0, None] and "currency" in (money.note or "")
    dmy = infer("d", _col(["14/3/2024", "1/2/2023"]))
    assert dmy.array.to_pylist() == [dt.date(2024, 3, 14), dt.date(2023, 2, 1)] and "d/m/yyyy" in (dmy.note or "")
    ambiguous = infer("d", _col(["03/04/2024"]))
    assert ambiguous.array.to_pylist() == [dt.date(2024, 3, 4)] and "fits both" in (ambiguous.note or "")
    timed = infer("t", _col(["3/14/2024 1:05 PM", "3/15/2024"]))
    assert timed.array.to_pylist() == [dt.datetime(2024, 3, 14, 13, 5), dt.datetime(2024, 3, 15)]
    flags = infer("f", _col(["Yes", "no", None]))
    assert flags.array.to_pylist() == [True, False, None]
    assert infer("label", _col(["Yes"])).array.type == pa.string()  # one value alone is a label
    assert infer("n", _col(["1", "20"])).array.type == pa.int64()


def test_registered_copy_types(tmp_path: Path) -> None:
    from workbench.config import Settings
    from workbench.lake.register import invalidate, register
    from workbench.lake.storage import Lake
    from workbench.session import Workbench

    csv = tmp_path / "sales.csv"
    csv.write_text(
        'Order Date,Postal Code,Amount,Paid\n3/14/2024,02134,"$1,200.00",true\n12/1/2023,90036,$5.25,false\n'
    )
    settings = Settings(lake=str(tmp_path / "lake"), home=str(tmp_path / "home"), pii_key="test-only-key")
    lake = Lake(settings=settings)
    reg = register("typed", str(csv), lake=lake)
    assert len(reg.details["type_notes"]) == 4
    wb = Workbench(lake, settings)
    try:
        df = wb.sql("SELECT order_date, postal_code, amount, paid FROM typed ORDER BY order_date").df
    finally:
        wb.close()
        invalidate()
    assert [str(d)[:10] for d in df.order_date] == ["2023-12-01", "2024-03-14"]
    assert list(df.postal_code) == ["90036", "02134"] and list(df.amount) == [5.25, 1200.0]
    assert list(df.paid) == [False, True]


def test_text_dates_read_in_place_get_time_without_reregistering(tmp_path: Path) -> None:
    """Parquet whose dates are text (``3/14/2024``) is read in place, so nothing retypes it; the
    drafted model reads the text with its format and answers by year and month."""
    import random

    import pandas as pd
    import pyarrow.parquet as pq

    from workbench.assistant import ask
    from workbench.config import Settings
    from workbench.lake.profile import load_profiles
    from workbench.lake.register import invalidate, register
    from workbench.lake.storage import Lake
    from workbench.semantic.draft import draft_model, to_yaml, use_model
    from workbench.session import Workbench

    rng = random.Random(3)
    days = [dt.date(2023, 1, 1) + dt.timedelta(days=rng.randrange(700)) for _ in range(400)]
    frame = pd.DataFrame(
        {"sold_on": [f"{d.month}/{d.day}/{d.year}" for d in days], "amount": [rng.randint(1, 99) for _ in days]}
    )
    (tmp_path / "src").mkdir()
    pq.write_table(pa.Table.from_pandas(frame), tmp_path / "src" / "sales.parquet")
    settings = Settings(lake=str(tmp_path / "lake"), home=str(tmp_path / "home"), pii_key="test-only-key")
    lake = Lake(settings=settings)
    register("tickets", str(tmp_path / "src"), lake=lake)
    model = draft_model(load_profiles(lake))
    assert model["dimensions"]["year"]["sql"] == "YEAR(CAST(STRPTIME(sold_on, '%m/%d/%Y') AS DATE))"
    (tmp_path / "model.yaml").write_text(to_yaml(model, ["tickets"]))
    use_model(tmp_path / "model.yaml", settings)
    wb = Workbench(lake, settings)
    try:
        total = ask(wb, "amount in 2023")
        monthly = ask(wb, "monthly amount in 2024")
    finally:
        wb.close()
        invalidate()
    dates = pd.to_datetime(frame.sold_on, format="%m/%d/%Y")
    assert total.ok and total.df.iloc[0, -1] == frame.amount[dates.dt.year == 2023].sum()
    want = frame.amount[dates.dt.year == 2024].groupby(dates.dt.month[dates.dt.year == 2024]).sum()
    got = monthly.df.set_index("month").iloc[:, -1]
    assert list(got.sort_index()) == list(want.sort_index())


def test_one_date_order_for_all_files_of_a_table(tmp_path: Path) -> None:
    """March's export says 14/3 (day first); April's 3/4 alone would read as March 4: the table decides once."""
    from workbench.config import Settings
    from workbench.lake.register import invalidate, register
    from workbench.lake.storage import Lake
    from workbench.session import Workbench

    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "a_march.csv").write_text("day,amount\n14/3/2024,1\n")
    (tmp_path / "exports" / "b_april.csv").write_text("day,amount\n3/4/2024,2\n")
    settings = Settings(lake=str(tmp_path / "lake"), home=str(tmp_path / "home"), pii_key="test-only-key")
    lake = Lake(settings=settings)
    reg = register("exports", str(tmp_path / "exports"), lake=lake)
    assert any("d/m/yyyy" in n for n in reg.details["type_notes"])
    wb = Workbench(lake, settings)
    try:
        df = wb.sql("SELECT day, amount FROM exports ORDER BY amount").df
    finally:
        wb.close()
        invalidate()
    assert [str(d)[:10] for d in df.day] == ["2024-03-14", "2024-04-03"]
