"""Registration: in place without copying, partition pruning, Delta in place, unregister, bad input.

Each bad input gives a clear error (DataError/ConfigError with a hint) and leaves nothing
half-registered: no log in the lake, no catalog row.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from workbench.config import Settings
from workbench.errors import ConfigError, DataError, NotFoundError, WorkbenchError
from workbench.lake.register import register, registrations, unregister
from workbench.lake.storage import Lake
from workbench.session import Workbench


@pytest.fixture()
def lake(tmp_path: Path) -> Lake:
    return Lake(settings=Settings(lake=str(tmp_path / "lake"), home=str(tmp_path / "home"), pii_key="k"))


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _hive(root: Path, years: int = 3, rows: int = 2_000) -> Path:
    for y in range(2020, 2020 + years):
        for region in ("east", "west"):
            folder = root / f"year={y}" / f"region={region}"
            folder.mkdir(parents=True)
            t = pa.table({"id": pa.array(range(rows)), "value": pa.array([float(i % 97) for i in range(rows)])})
            pq.write_table(t, folder / "data.parquet")
    return root


def _nothing_left(lake: Lake, name: str) -> None:
    assert not lake.exists(name)
    assert name not in {r.name for r in registrations(lake=lake)}


def test_in_place_copies_nothing_and_prunes(lake: Lake, tmp_path: Path) -> None:
    src = _hive(tmp_path / "events")
    before = _du(src)
    reg = register("events", str(src), lake=lake)
    assert reg.mode == "in_place" and reg.partition_columns == ["year", "region"] and reg.files == 6
    lake_bytes = _du(Path(lake.url))
    assert lake_bytes < before / 5, (lake_bytes, before)  # only a Delta log, no data files
    assert not list(Path(lake.url).rglob("*.parquet"))
    with Workbench(lake, lake.settings) as wb:
        full = wb.sql("SELECT COUNT(*) AS n, SUM(value) AS v FROM events", engine="duckdb")
        pruned = wb.sql("SELECT COUNT(*) AS n FROM events WHERE year = 2021 AND region = 'west'", engine="duckdb")
    assert int(full.df["n"][0]) == 12_000 and full.files_scanned == 6
    assert int(pruned.df["n"][0]) == 2_000 and pruned.files_scanned == 1
    assert 0 < pruned.bytes_scanned < full.bytes_scanned


def test_unregister_keeps_user_files(lake: Lake, tmp_path: Path) -> None:
    src = _hive(tmp_path / "events", years=1)
    files = sorted(p for p in src.rglob("*") if p.is_file())
    register("events", str(src), lake=lake)
    unregister("events", lake=lake)
    _nothing_left(lake, "events")
    assert sorted(p for p in src.rglob("*") if p.is_file()) == files
    with Workbench(lake, lake.settings) as wb, pytest.raises(WorkbenchError):
        wb.sql("SELECT * FROM events", engine="duckdb")


def test_delta_in_place_and_unsupported_protocol(lake: Lake, tmp_path: Path) -> None:
    from deltalake import write_deltalake

    src = tmp_path / "delta_src"
    write_deltalake(str(src), pa.table({"k": [1, 2, 3], "part": ["a", "a", "b"]}), partition_by=["part"])
    reg = register("dsrc", str(src), lake=lake)
    assert reg.format == "delta" and reg.mode == "in_place" and reg.rows == 3
    with Workbench(lake, lake.settings) as wb:
        res = wb.sql("SELECT SUM(k) AS s FROM dsrc WHERE part = 'a'", engine="duckdb")
    assert int(res.df["s"][0]) == 3 and res.files_scanned == 1

    newer = tmp_path / "newer"
    (newer / "_delta_log").mkdir(parents=True)
    protocol = {"protocol": {"minReaderVersion": 3, "minWriterVersion": 7, "readerFeatures": ["deletionVectors"],
                             "writerFeatures": ["deletionVectors"]}}  # fmt: skip
    schema = '{"type":"struct","fields":[{"name":"k","type":"long","nullable":true,"metadata":{}}]}'
    meta = {"metaData": {"id": "x", "format": {"provider": "parquet", "options": {}}, "schemaString": schema,
                         "partitionColumns": [], "configuration": {}, "createdTime": 0}}  # fmt: skip
    import json

    (newer / "_delta_log" / "00000000000000000000.json").write_text(json.dumps(protocol) + "\n" + json.dumps(meta))
    with pytest.raises(DataError) as err:
        register("newer", str(newer), lake=lake)
    assert "deletionVectors" in err.value.message or "reader" in err.value.message
    _nothing_left(lake, "newer")


def test_empty_folder(lake: Lake, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as err:
        register("nothing", str(tmp_path / "empty"), fmt="parquet", lake=lake)
    assert "no parquet files" in err.value.message and err.value.hint
    _nothing_left(lake, "nothing")


def test_mixed_schemas_refused_in_place_and_promoted_in_copy(lake: Lake, tmp_path: Path) -> None:
    src = tmp_path / "mixed"
    src.mkdir()
    pq.write_table(pa.table({"a": pa.array([1, 2], pa.int64()), "b": ["x", "y"]}), src / "1.parquet")
    pq.write_table(pa.table({"a": pa.array([1.5], pa.float64()), "b": ["z"]}), src / "2.parquet")
    with pytest.raises(DataError) as err:
        register("mixed", str(src), lake=lake)
    assert "column 'a'" in err.value.message and "--copy" in err.value.hint
    _nothing_left(lake, "mixed")
    reg = register("mixed", str(src), copy=True, lake=lake)
    assert reg.details["types"]["a"] == "double" and reg.rows == 3
    pq.write_table(pa.table({"other": [1]}), src / "3.parquet")
    unregister("mixed", lake=lake)
    with pytest.raises(DataError) as err2:
        register("mixed", str(src), copy=True, lake=lake)
    assert "other columns" in err2.value.message
    _nothing_left(lake, "mixed")


def test_ragged_csv_and_encodings(lake: Lake, tmp_path: Path) -> None:
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(DataError) as err:
        register("ragged", str(ragged), lake=lake)
    assert "different number of fields" in err.value.hint
    _nothing_left(lake, "ragged")

    latin = tmp_path / "latin.csv"
    latin.write_bytes("city,n\nSão Paulo,1\nMünchen,2\n".encode("latin-1"))
    with pytest.raises(DataError) as err2:
        register("latin", str(latin), lake=lake)
    assert "not UTF-8" in err2.value.message and "--encoding" in err2.value.hint
    _nothing_left(lake, "latin")
    with pytest.raises(ConfigError):
        register("latin", str(latin), encoding="no-such-codec", lake=lake)
    register("latin", str(latin), encoding="latin-1", lake=lake)
    with Workbench(lake, lake.settings) as wb:
        res = wb.sql("SELECT city FROM latin ORDER BY n", engine="duckdb")
    assert res.df["city"].tolist() == ["São Paulo", "München"]


def test_column_names_with_spaces_and_keywords(lake: Lake, tmp_path: Path) -> None:
    src = tmp_path / "odd.parquet"
    pq.write_table(
        pa.table({"unit price": [1.5, 2.5], "select": [1, 2], "Order Date": ["2024-01-01", "2024-01-02"]}), src
    )
    reg = register("odd", str(src), lake=lake)  # in place: names kept, quoting needed (and reported)
    assert any("unit price" in w for w in reg.details["column_warnings"])
    assert any("'select'" in w for w in reg.details["column_warnings"])
    csv = tmp_path / "odd.csv"
    csv.write_text('"unit price",select,Order Date\n1.5,1,2024-01-01\n2.5,2,2024-01-02\n')
    copied = register("odd_copy", str(csv), lake=lake)  # a copy: plain names
    assert copied.details["renamed_columns"] == {
        "unit price": "unit_price",
        "select": "select_",
        "Order Date": "order_date",
    }
    assert copied.details["types"]["order_date"] == "date32[day]"
    with Workbench(lake, lake.settings) as wb:
        quoted = wb.sql('SELECT SUM("unit price") AS s, MAX("select") AS m FROM odd', engine="duckdb")
        plain = wb.sql("SELECT SUM(unit_price) AS s, MAX(select_) AS m FROM odd_copy", engine="duckdb")
    assert quoted.df.to_dict() == plain.df.to_dict() == {"s": {0: 4.0}, "m": {0: 2}}


def test_bad_names_and_partition_layouts(lake: Lake, tmp_path: Path) -> None:
    src = _hive(tmp_path / "events", years=1)
    for bad in ("sales", "Bad Name", "select", "1abc"):
        with pytest.raises(ConfigError):
            register(bad, str(src), lake=lake)
    (src / "loose.parquet").write_bytes((src / "year=2020" / "region=east" / "data.parquet").read_bytes())
    with pytest.raises(DataError) as err:
        register("events", str(src), lake=lake)
    assert "partition layouts" in err.value.message
    _nothing_left(lake, "events")
    with pytest.raises(NotFoundError):
        register("nowhere", str(tmp_path / "missing"), lake=lake)


def test_csv_copy_partitioned_by_derived_year_month(lake: Lake, tmp_path: Path) -> None:
    csv = tmp_path / "visits.csv"
    csv.write_text("day,visits\n2023-12-31,3\n2024-01-01,4\n2024-01-15,5\n")
    reg = register("visits", str(csv), partition_by=["year", "month"], lake=lake)
    assert reg.partition_columns == ["year", "month"] and reg.files == 2
    with Workbench(lake, lake.settings) as wb:
        res = wb.sql("SELECT SUM(visits) AS v FROM visits WHERE year = 2024 AND month = 1", engine="duckdb")
    assert int(res.df["v"][0]) == 9 and res.files_scanned == 1


def test_cli_register_list_unregister(lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.cli import main

    monkeypatch.setenv("WORKBENCH_HOME", lake.settings.home)
    src = _hive(tmp_path / "events", years=1)
    runner = CliRunner()
    out = runner.invoke(main, ["--lake", lake.url, "register", "events", str(src)])
    assert out.exit_code == 0 and "read in place (no copy)" in out.output, out.output
    listed = runner.invoke(main, ["--lake", lake.url, "registered"])
    assert "events" in listed.output and str(src) in listed.output
    q = runner.invoke(main, ["--lake", lake.url, "sql", "SELECT COUNT(*) AS n FROM events WHERE region = 'east'"])
    assert q.exit_code == 0 and "2000" in q.output and "1 files" in q.output, q.output
    bad = runner.invoke(main, ["--lake", lake.url, "register", "x", str(tmp_path / "nope"), "--json"])
    assert bad.exit_code != 0 and '"error"' in bad.output
    gone = runner.invoke(main, ["--lake", lake.url, "unregister", "events"])
    assert gone.exit_code == 0 and os.path.exists(src / "year=2020")


def test_wide_table_profile(lake: Lake, tmp_path: Path) -> None:
    """300 columns: profiled by grouped DuckDB aggregates over the files (never loaded as a frame)."""
    import numpy as np

    from workbench.lake.profile import profile_table

    rows = 5_000
    rng = np.random.default_rng(1)
    cols = {f"m{i:03d}": rng.normal(size=rows) for i in range(290)}
    cols.update({f"c{i}": np.array(["a", "b", "c"])[rng.integers(0, 3, rows)] for i in range(9)})
    cols["row_id"] = np.arange(rows)
    src = tmp_path / "wide.parquet"
    pq.write_table(pa.table(cols), src)
    register("wide", str(src), lake=lake, profile=False)
    profile = profile_table(lake, "wide")
    by_name = {c["name"]: c for c in profile["columns"]}
    assert len(by_name) == 300 and profile["rows"] == rows
    assert by_name["c3"]["values"] == ["a", "b", "c"]
    assert by_name["m017"]["min"] == pytest.approx(float(cols["m017"].min()))
    assert profile["candidate_keys"] == ["row_id"]
