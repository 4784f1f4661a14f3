"""TPC-H and TPC-DS at small scale factors: data from ``tpcgen-cli``, queries from DuckDB's suites.

The data is generated at test time by ``tpcgen-cli`` (a Rust generator shipped as a binary in
its PyPI wheel, a dev dependency): DuckDB 2.0's wheel no longer bundles its ``tpch``
extension and extensions cannot be downloaded offline. The queries are DuckDB's own
renditions of the 22 TPC-H and 99 TPC-DS queries with their parameters substituted
(``extension/tpch/dbgen/queries/qNN.sql`` and ``extension/tpcds/dsdgen/queries/NN.sql`` of
the DuckDB repository, MIT licence), kept in ``tpch_queries.jsonl`` / ``tpcds_queries.jsonl``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def generator() -> str | None:
    """Path of the ``tpcgen-cli`` binary next to this interpreter (or on PATH), None when missing."""
    beside = Path(sys.executable).with_name("tpcgen-cli")
    return str(beside) if beside.exists() else shutil.which("tpcgen-cli")


def generate(kind: str, scale: float, out: Path, *, keep_decimals: bool = False) -> dict[str, Path]:
    """Write every table of ``kind`` (``tpch``/``tpcds``) as one Parquet file; ``{table: path}``.

    DECIMAL columns are rewritten as DOUBLE unless ``keep_decimals``: the differential suites
    compare engines, not decimal arithmetic, and both engines and the reference read the same
    files. The bring-your-own-data suite keeps them, as a user's export would have them.
    """
    import duckdb

    binary = generator()
    if binary is None:
        raise RuntimeError("tpcgen-cli is not installed: pip install tpcgen-cli (a dev dependency)")
    raw = out / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    subprocess.run([binary, kind, "parquet", "-s", str(scale), "--output-dir", str(raw)], check=True, timeout=600)
    con = duckdb.connect()
    files: dict[str, Path] = {}
    for src in sorted(raw.glob("*.parquet")):
        if src.stem == "dbgen_version":
            continue
        cols = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(src)]).fetchall()
        select = ", ".join(
            f'CAST("{c[0]}" AS DOUBLE) AS "{c[0]}"'
            if str(c[1]).startswith("DECIMAL") and not keep_decimals
            else f'"{c[0]}"'
            for c in cols
        )
        files[src.stem] = out / src.name
        con.execute(f"COPY (SELECT {select} FROM read_parquet('{src}')) TO '{files[src.stem]}' (FORMAT parquet)")
    con.close()
    shutil.rmtree(raw)
    return files


def queries(kind: str) -> dict[int, str]:
    """The standard queries of ``kind`` by number."""
    lines = (HERE / f"{kind}_queries.jsonl").read_text().splitlines()
    return {int(row["id"]): row["sql"] for row in map(json.loads, lines)}
