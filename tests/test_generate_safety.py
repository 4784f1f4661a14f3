"""`workbench generate` never mixes datasets in one folder (issue 15)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from workbench.cli import main
from workbench.errors import ConfigError


def _generate(out: Path, rows: int, *extra: str) -> tuple[int, str]:
    args = ["generate", "--rows", str(rows), "--out", str(out), "--chunk-rows", "300", *extra]
    result = CliRunner().invoke(main, args)
    return result.exit_code, result.output


def _sales_rows(out: Path) -> int:
    return sum(len(p.read_text().splitlines()) - 1 for p in out.glob("sales-*.csv"))


def test_non_empty_folder_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    out = tmp_path / "landing"
    assert _generate(out, 900)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    code, output = _generate(out, 200)
    assert code == ConfigError.exit_code
    assert "not empty" in output and "--overwrite" in output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_overwrite_replaces_every_earlier_file(tmp_path: Path) -> None:
    out = tmp_path / "landing"
    assert _generate(out, 900)[0] == 0  # three sales files
    assert len(list(out.glob("sales-*.csv"))) == 3
    code, output = _generate(out, 200, "--overwrite")
    assert code == 0, output
    assert sorted(p.name for p in out.glob("sales-*.csv")) == ["sales-00000.csv"]  # no stale sales-00001/2
    assert _sales_rows(out) == 200


def test_overwrite_never_deletes_files_generate_did_not_write(tmp_path: Path) -> None:
    out = tmp_path / "landing"
    assert _generate(out, 300)[0] == 0
    (out / "my-notes.txt").write_text("mine")
    code, output = _generate(out, 300, "--overwrite")
    assert code == ConfigError.exit_code
    assert "my-notes.txt" in output
    assert (out / "my-notes.txt").read_text() == "mine"
    assert (out / "sales-00000.csv").exists()


@pytest.mark.s3
def test_the_same_rules_on_s3(s3_env: Any) -> None:
    from workbench.lake.generate import generate
    from workbench.lake.storage import filesystem_for

    out = f"s3://{s3_env.bucket}/generate-safety"
    generate(600, out, chunk_rows=300)
    with pytest.raises(ConfigError, match="not empty"):
        generate(100, out, chunk_rows=300)
    generate(100, out, chunk_rows=300, overwrite=True)
    names = sorted(p.rsplit("/", 1)[-1] for p in filesystem_for(out).ls(out, detail=False))
    assert names == ["customers.csv", "products.csv", "sales-00000.csv", "stores.csv"]
