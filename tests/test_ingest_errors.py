"""Malformed landing files are refused with a DataError naming the file (and column); the lake is untouched.

Each case puts one broken sales file next to a good new one: the whole batch must be refused,
so no table gets a new version.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from workbench.errors import DataError
from workbench.lake.ingest import ingest
from workbench.lake.storage import Lake

Maker = Callable[[list[str], Path], tuple[str, str | None]]


def _sample(landing_dir: Path, n: int = 300) -> list[str]:
    return (landing_dir / "sales-00000.csv").read_text().splitlines()[:n]


def _write(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n")


def missing_column(lines: list[str], d: Path) -> tuple[str, str | None]:
    table = pacsv.read_csv(io.BytesIO("\n".join(lines).encode())).drop_columns(["revenue"])
    pacsv.write_csv(table, d / "sales-bad.csv")
    return "sales-bad.csv", "revenue"


def binary_file(lines: list[str], d: Path) -> tuple[str, str | None]:
    (d / "sales-bad.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    return "sales-bad.csv", None


def truncated_parquet(lines: list[str], d: Path) -> tuple[str, str | None]:
    buf = io.BytesIO()
    pq.write_table(pacsv.read_csv(io.BytesIO("\n".join(lines).encode())), buf)
    (d / "sales-bad.parquet").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return "sales-bad.parquet", None


def empty_file(lines: list[str], d: Path) -> tuple[str, str | None]:
    (d / "sales-bad.csv").write_bytes(b"")
    return "sales-bad.csv", None


def text_in_numeric_column(lines: list[str], d: Path) -> tuple[str, str | None]:
    table = pacsv.read_csv(io.BytesIO("\n".join(lines).encode()))
    revenue = [("abc" if i % 3 == 0 else str(v)) for i, v in enumerate(table["revenue"].to_pylist())]
    table = table.set_column(table.schema.get_field_index("revenue"), "revenue", pa.array(revenue))
    pacsv.write_csv(table, d / "sales-bad.csv")
    return "sales-bad.csv", "revenue"


def unparseable_dates(lines: list[str], d: Path) -> tuple[str, str | None]:
    out = [lines[0]] + [_replace_date(line) for line in lines[1:]]
    _write(d / "sales-bad.csv", out)
    return "sales-bad.csv", "date"


def _replace_date(line: str) -> str:
    fields = line.split(",")
    y, m, dd = fields[1].strip('"').split("-") if fields[1].count("-") == 2 else ("2022", "01", "01")
    fields[1] = f'"{dd}/{m}/{y}"'
    return ",".join(fields)


def ragged_row(lines: list[str], d: Path) -> tuple[str, str | None]:
    out = list(lines)
    out[10] = out[10] + ',"extra"'
    _write(d / "sales-bad.csv", out)
    return "sales-bad.csv", None


def wrong_delimiter(lines: list[str], d: Path) -> tuple[str, str | None]:
    _write(d / "sales-bad.csv", [line.replace(",", ";") for line in lines])
    return "sales-bad.csv", None


def wrong_encoding(lines: list[str], d: Path) -> tuple[str, str | None]:
    text = "\n".join(lines).replace('"Card"', '"Carte bancaire é"') + "\n"
    (d / "sales-bad.csv").write_bytes(text.encode("latin-1"))
    return "sales-bad.csv", None


def duplicate_header(lines: list[str], d: Path) -> tuple[str, str | None]:
    header = lines[0].replace('"cost"', '"revenue"')
    _write(d / "sales-bad.csv", [header, *lines[1:]])
    return "sales-bad.csv", None


def wrong_parquet_type(lines: list[str], d: Path) -> tuple[str, str | None]:
    table = pacsv.read_csv(io.BytesIO("\n".join(lines).encode()))
    flags = pa.array([i % 2 == 0 for i in range(table.num_rows)])
    table = table.set_column(table.schema.get_field_index("quantity"), "quantity", flags)
    pq.write_table(table, d / "sales-bad.parquet")
    return "sales-bad.parquet", "quantity"


CASES = [
    missing_column,
    binary_file,
    truncated_parquet,
    empty_file,
    text_in_numeric_column,
    unparseable_dates,
    ragged_row,
    wrong_delimiter,
    wrong_encoding,
    duplicate_header,
    wrong_parquet_type,
]


@pytest.mark.parametrize("make", CASES, ids=[c.__name__ for c in CASES])
def test_malformed_file_is_refused_and_lake_unchanged(
    make: Maker, fresh_lake: str, landing_dir: Path, tmp_path: Path
) -> None:
    lines = _sample(landing_dir)
    landing = tmp_path / "landing"
    landing.mkdir()
    # a good new file next to the bad one: the batch is refused as a whole
    good = [lines[0]] + [line.replace('"T0', '"G0', 1) for line in lines[1:]]
    _write(landing / "sales-a-good.csv", good)
    name, column = make(lines, landing)
    lake = Lake(fresh_lake)
    versions = {t: lake.version(t) for t in lake.tables()}

    with pytest.raises(DataError) as info:
        ingest(landing, lake)
    err = info.value
    assert name in err.message
    assert err.hint
    if column is not None:
        assert repr(column) in err.message or column in err.message
    assert {t: lake.version(t) for t in lake.tables()} == versions


def test_wrong_delimiter_hint_names_the_delimiter(tmp_path: Path, landing_dir: Path) -> None:
    wrong_delimiter(_sample(landing_dir, 20), tmp_path)
    with pytest.raises(DataError) as info:
        ingest(tmp_path, str(tmp_path / "lake"))
    assert "';'" in info.value.hint


def test_a_few_bad_values_are_dirt_not_a_broken_file(tmp_path: Path, landing_dir: Path) -> None:
    lines = _sample(landing_dir, 301)
    table = pacsv.read_csv(
        io.BytesIO("\n".join(lines).encode()),
        convert_options=pacsv.ConvertOptions(column_types={"quantity": pa.string()}),
    )
    quantity = [("oops" if i < 5 else v) for i, v in enumerate(table["quantity"].to_pylist())]
    table = table.set_column(table.schema.get_field_index("quantity"), "quantity", pa.array(quantity))
    pacsv.write_csv(table, tmp_path / "sales-1.csv")
    report = ingest(tmp_path, str(tmp_path / "lake"))
    assert report.tables["sales"].dropped["malformed_value"] >= 5
    assert report.tables["sales"].rows_written > 250
