"""The catalog CLI commands print the catalog, query log and audit log in text and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from click.testing import CliRunner
from deltalake import write_deltalake

from workbench.catalog import QueryLogEntry, open_catalog
from workbench.cli import main


def test_audit_and_querylog_commands() -> None:
    catalog = open_catalog()
    catalog.audit("ana", "ok", sql="select 1", rows=1, policy="analyst")
    catalog.audit("bo", "denied", question="emails?", policy="viewer")
    catalog.log_query(QueryLogEntry(user="ana", sql="select 1", route="duckdb", rows=1, latency_ms=3.0))
    runner = CliRunner()

    out = runner.invoke(main, ["audit", "--user", "bo", "--json"])
    assert out.exit_code == 0, out.output
    entries = json.loads(out.output)["entries"]
    assert [(e["user"], e["outcome"], e["policy"]) for e in entries] == [("bo", "denied", "viewer")]

    out = runner.invoke(main, ["audit", "--since", "2000-01-01", "--limit", "5"])
    assert out.exit_code == 0 and "denied" in out.output and "analyst" in out.output

    out = runner.invoke(main, ["audit", "--since", "yesterday", "--json"])
    assert out.exit_code == 3
    assert json.loads(out.output)["error"]["type"] == "data_error"

    out = runner.invoke(main, ["querylog", "--json"])
    queries = json.loads(out.output)["queries"]
    assert [(q["user"], q["route"], q["normalized_sql"]) for q in queries] == [("ana", "duckdb", "SELECT 1")]


def test_catalog_command_syncs_and_lists(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    write_deltalake(str(lake / "stores"), pd.DataFrame({"store_id": ["s1", "s2"], "region": ["North", "East"]}))
    runner = CliRunner()
    out = runner.invoke(main, ["--lake", str(lake), "catalog", "--sync", "--json"])
    assert out.exit_code == 0, out.output
    tables = json.loads(out.output)["tables"]
    assert [(t["name"], t["rows"], t["kind"]) for t in tables] == [("stores", 2, "base")]

    out = runner.invoke(main, ["catalog", "--table", "stores"])
    assert out.exit_code == 0 and "store_id" in out.output

    out = runner.invoke(main, ["catalog", "--table", "store", "--json"])
    assert out.exit_code == 4
    assert "stores" in json.loads(out.output)["error"]["hint"]

    out = runner.invoke(main, ["cache", "--json"])
    assert json.loads(out.output)["backend"] == "disk"
