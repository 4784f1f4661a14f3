"""The HTTP API (/metrics, /healthz, /api/sql, /api/ask) served by tornado on loopback."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner

from workbench.lake.storage import Lake


class ApiServer:
    """``make_app`` on a free loopback port, in its own thread and event loop."""

    def __init__(self, lake: str) -> None:
        self.lake = lake
        self.url = ""
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.backend: Any = None

    def _run(self) -> None:
        from workbench.observability.http import make_app

        async def main() -> None:
            app = make_app(self.lake, sessions=2)
            self.backend = app.settings["workbench_backend"]
            server = app.listen(0, address="127.0.0.1")
            port = next(iter(server._sockets.values())).getsockname()[1]
            self.url = f"http://127.0.0.1:{port}"
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._ready.set()
            await self._stop.wait()
            server.stop()
            app.settings["workbench_backend"].close()

        asyncio.run(main())

    def __enter__(self) -> ApiServer:
        self._thread.start()
        assert self._ready.wait(30), "API server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def request(self, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any, str]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method="POST" if data else "GET")
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                raw = resp.read().decode()
                ctype = resp.headers.get("Content-Type", "")
                status = resp.status
        except urllib.error.HTTPError as e:
            raw, ctype, status = e.read().decode(), e.headers.get("Content-Type", ""), e.code
        return status, (json.loads(raw) if "json" in ctype else raw), ctype


@pytest.fixture(scope="module")
def api(assistant_lake: str) -> Iterator[ApiServer]:
    with ApiServer(assistant_lake) as server:
        yield server


SQL = "SELECT region, SUM(revenue) AS revenue FROM sales WHERE year = 2023 GROUP BY region ORDER BY region"


def test_sql_matches_cli_json_and_duckdb(api: ApiServer, assistant_lake: str) -> None:
    from workbench.cli import main

    status, body, _ = api.request("/api/sql", {"sql": SQL, "engine": "duckdb", "user": "analyst"})
    assert status == 200, body
    cli = CliRunner().invoke(main, ["--lake", assistant_lake, "sql", SQL, "--engine", "duckdb", "--json"])
    assert cli.exit_code == 0, cli.output
    expected_body = json.loads(cli.output.strip().splitlines()[-1])
    assert set(body) == set(expected_body)
    assert body["columns"] == expected_body["columns"] == ["region", "revenue"]
    files = Lake(assistant_lake).files("sales")
    truth = (
        duckdb.connect()
        .execute(
            "SELECT region, SUM(revenue) FROM read_parquet(?, hive_partitioning=true) WHERE year = 2023 "
            "GROUP BY region ORDER BY region",
            [files],
        )
        .fetchall()
    )
    assert [r[0] for r in body["rows"]] == [t[0] for t in truth]
    assert [r[1] for r in body["rows"]] == pytest.approx([t[1] for t in truth], rel=1e-9)


def test_sql_errors_use_the_error_shape(api: ApiServer) -> None:
    status, body, _ = api.request("/api/sql", {"sql": "DROP TABLE sales"})
    assert status == 400 and body["error"]["type"] in ("query_refused", "unsupported_query")
    assert body["error"]["hint"]
    status, body, _ = api.request("/api/sql", {"sql": "SELECT nope FROM nowhere"})
    assert status in (400, 404) and set(body["error"]) >= {"type", "message", "hint"}
    status, body, _ = api.request("/api/sql", {"engine": "duckdb"})
    assert status == 400 and body["error"]["type"] == "data_error"


def test_ask_returns_the_answer_json(api: ApiServer) -> None:
    status, body, _ = api.request("/api/ask", {"question": "Show revenue by region for 2023", "user": "analyst"})
    assert status == 200, body
    assert body["status"] == "ok" and body["columns"] and body["rows"]
    assert "cost_usd" in body and body["cost_usd"] == 0.0
    assert body["sql"] and body["route"]


def test_metrics_and_health(api: ApiServer) -> None:
    api.request("/api/sql", {"sql": SQL})
    status, text, ctype = api.request("/metrics")
    assert status == 200 and ctype.startswith("text/plain")
    assert "workbench_query_latency_seconds_bucket" in text
    assert "workbench_cache_misses_total" in text or "workbench_cache_hits_total" in text
    status, body, _ = api.request("/healthz")
    assert status == 200 and body["status"] == "ok" and "sales" in body["tables"]
    assert body["freshness_s"] is not None


def test_every_api_query_is_audited(api: ApiServer) -> None:
    from workbench.observability.recording import catalog_for

    catalog = catalog_for(api.backend.settings)
    before = {e.id for e in catalog.audit_entries(limit=1000)}
    api.request("/api/sql", {"sql": "SELECT COUNT(*) AS n FROM sales", "user": "analyst"})
    api.request("/api/sql", {"sql": "DELETE FROM sales", "user": "analyst"})
    api.request("/api/ask", {"question": "Show revenue by region for 2023", "user": "north_analyst"})
    api.request("/api/ask", {"question": "delete all rows of the sales table", "user": "north_analyst"})
    api.backend.flush()
    new = [e for e in catalog.audit_entries(limit=1000) if e.id not in before]
    # SQL: one row per query, written by the router (the API adds none)
    sql_rows = [e for e in new if e.user == "analyst"]
    assert sorted(e.outcome for e in sql_rows) == ["ok", "refused"]
    # ask: one question-level row per question (also when refused before any SQL ran)
    ask_rows = [e for e in new if e.user == "north_analyst" and e.route == "ask"]
    assert sorted(e.outcome for e in ask_rows) == ["ok", "refused"]
    assert all(e.question for e in ask_rows)
