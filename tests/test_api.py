"""The HTTP API (/metrics, /healthz, /api/sql, /api/ask) served by tornado on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner

from workbench.lake.storage import Lake

ROOT = Path(__file__).resolve().parents[1]


def api_settings(lake: str, home: Path, **auth: Any) -> Any:
    """Settings of a served API with its own home (catalog, tokens) and the repository's policies."""
    from workbench.config import AuthSettings, Settings

    return Settings(
        lake=lake,
        home=str(home),
        pii_key="test-only-key",
        policies=str(ROOT / "policies.yaml"),
        auth=AuthSettings(**auth),
    )


class ApiServer:
    """``make_app`` on a free loopback port, in its own thread and event loop."""

    def __init__(self, lake: str, settings: Any = None) -> None:
        self.lake = lake
        self.settings = settings
        self.url = ""
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.backend: Any = None
        self.tokens: dict[str, str] = {}

    def _run(self) -> None:
        from workbench.observability.http import make_app

        async def main() -> None:
            app = make_app(self.lake, settings=self.settings, sessions=2)
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

    def token(self, user: str, **kwargs: Any) -> str:
        """A new API token for ``user`` in this server's catalog (what `workbench token create` does)."""
        from workbench.auth.tokens import TokenStore
        from workbench.observability.recording import catalog_for

        return TokenStore(catalog_for(self.backend.settings)).create(user, **kwargs)[0]

    def request(
        self, path: str, body: dict[str, Any] | None = None, token: str | None = None, header: str | None = None
    ) -> tuple[int, Any, str]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method="POST" if data else "GET")
        req.add_header("Content-Type", "application/json")
        if token or header:
            req.add_header("Authorization", header or f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                raw = resp.read().decode()
                ctype = resp.headers.get("Content-Type", "")
                status = resp.status
        except urllib.error.HTTPError as e:
            raw, ctype, status = e.read().decode(), e.headers.get("Content-Type", ""), e.code
        return status, (json.loads(raw) if "json" in ctype else raw), ctype


@pytest.fixture(scope="module")
def api(assistant_lake: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    settings = api_settings(assistant_lake, tmp_path_factory.mktemp("api_home"), required=True, login_attempts=50)
    with ApiServer(assistant_lake, settings) as server:
        server.tokens = {u: server.token(u) for u in ("admin", "analyst", "north_analyst")}
        yield server


SQL = "SELECT region, SUM(revenue) AS revenue FROM sales WHERE year = 2023 GROUP BY region ORDER BY region"


def test_sql_matches_cli_json_and_duckdb(api: ApiServer, assistant_lake: str) -> None:
    from workbench.cli import main

    status, body, _ = api.request("/api/sql", {"sql": SQL, "engine": "duckdb"}, token=api.tokens["analyst"])
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
    status, body, _ = api.request("/api/sql", {"sql": "DROP TABLE sales"}, token=api.tokens["admin"])
    assert status == 400 and body["error"]["type"] in ("query_refused", "unsupported_query")
    assert body["error"]["hint"]
    status, body, _ = api.request("/api/sql", {"sql": "SELECT nope FROM nowhere"}, token=api.tokens["admin"])
    assert status in (400, 404) and set(body["error"]) >= {"type", "message", "hint"}
    status, body, _ = api.request("/api/sql", {"engine": "duckdb"}, token=api.tokens["admin"])
    assert status == 400 and body["error"]["type"] == "data_error"


def test_ask_returns_the_answer_json(api: ApiServer) -> None:
    status, body, _ = api.request(
        "/api/ask", {"question": "Show revenue by region for 2023"}, token=api.tokens["analyst"]
    )
    assert status == 200, body
    assert body["status"] == "ok" and body["columns"] and body["rows"]
    assert "cost_usd" in body and body["cost_usd"] == 0.0
    assert body["sql"] and body["route"]


def test_metrics_and_health(api: ApiServer) -> None:
    api.request("/api/sql", {"sql": SQL}, token=api.tokens["admin"])
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
    api.request("/api/sql", {"sql": "SELECT COUNT(*) AS n FROM sales"}, token=api.tokens["analyst"])
    api.request("/api/sql", {"sql": "DELETE FROM sales"}, token=api.tokens["analyst"])
    api.request("/api/ask", {"question": "Show revenue by region for 2023"}, token=api.tokens["north_analyst"])
    api.request("/api/ask", {"question": "delete all rows of the sales table"}, token=api.tokens["north_analyst"])
    api.backend.flush()
    new = [e for e in catalog.audit_entries(limit=1000) if e.id not in before]
    # SQL: one row per query, written by the router (the API adds none)
    sql_rows = [e for e in new if e.user == "analyst"]
    assert sorted(e.outcome for e in sql_rows) == ["ok", "refused"]
    # ask: one question-level row per question (also when refused before any SQL ran)
    ask_rows = [e for e in new if e.user == "north_analyst" and e.route == "ask"]
    assert sorted(e.outcome for e in ask_rows) == ["ok", "refused"]
    assert all(e.question for e in ask_rows)


# --- who is asking ---------------------------------------------------------------------------------

BY_REGION = "SELECT region, SUM(revenue) AS revenue FROM sales GROUP BY region ORDER BY region"


def region_truth(lake: str, regions: list[str] | None = None) -> list[tuple[str, float]]:
    """Revenue by region straight from the lake's Parquet files (independent of the workbench)."""
    files = Lake(lake).files("sales")
    where = f"WHERE region IN ({', '.join(repr(r) for r in regions)})" if regions else ""
    sql = f"SELECT region, SUM(revenue) FROM read_parquet(?, hive_partitioning=true) {where} GROUP BY 1 ORDER BY 1"
    return [(str(r), float(v)) for r, v in duckdb.connect().execute(sql, [files]).fetchall()]


def assert_rows(body: dict[str, Any], truth: list[tuple[str, float]]) -> None:
    assert [r[0] for r in body["rows"]] == [t[0] for t in truth]
    assert [r[1] for r in body["rows"]] == pytest.approx([t[1] for t in truth], rel=1e-9)


def assert_unauthenticated(status: int, body: Any) -> None:
    assert status == 401, body
    assert set(body["error"]) >= {"type", "message", "hint"} and body["error"]["type"] == "unauthenticated"
    assert body["error"]["hint"]


def test_no_or_bad_credentials_get_401(api: ApiServer) -> None:
    for kwargs in ({}, {"header": "Basic YWRtaW46YWRtaW4="}, {"token": "wb_nope_nope"}, {"token": "not-a-token"}):
        status, body, _ = api.request("/api/sql", {"sql": BY_REGION}, **kwargs)
        assert_unauthenticated(status, body)
        status, body, _ = api.request("/api/ask", {"question": "total revenue"}, **kwargs)
        assert_unauthenticated(status, body)
    # a real token id with a wrong secret is refused too
    good = api.tokens["north_analyst"]
    status, body, _ = api.request("/api/sql", {"sql": BY_REGION}, token=good[:-4] + "AAAA")
    assert_unauthenticated(status, body)
    # health and metrics stay open for probes and scrapers
    assert api.request("/healthz")[0] == 200 and api.request("/metrics")[0] == 200


def test_revoked_and_expired_tokens_get_401(api: ApiServer) -> None:
    import datetime as dt
    import time

    from workbench.auth.tokens import TokenStore, parse
    from workbench.observability.recording import catalog_for

    store = TokenStore(catalog_for(api.backend.settings))
    token, _ = store.create("north_analyst")
    assert api.request("/api/sql", {"sql": BY_REGION}, token=token)[0] == 200
    parsed = parse(token)
    assert parsed is not None
    store.revoke(parsed[0])
    status, body, _ = api.request("/api/sql", {"sql": BY_REGION}, token=token)
    assert_unauthenticated(status, body)
    assert "revoked" in body["error"]["message"]

    short, _ = store.create("north_analyst", expires_in=dt.timedelta(seconds=1))
    time.sleep(1.2)
    status, body, _ = api.request("/api/sql", {"sql": BY_REGION}, token=short)
    assert_unauthenticated(status, body)
    assert "expired" in body["error"]["message"]
    listed = {t.id: t.status() for t in store.list("north_analyst")}
    assert listed[parsed[0]] == "revoked" and "expired" in listed.values()


def test_identity_comes_from_the_token_never_the_body(api: ApiServer, assistant_lake: str) -> None:
    north = region_truth(assistant_lake, ["North"])
    assert len(north) == 1 and len(region_truth(assistant_lake)) == 5
    token = api.tokens["north_analyst"]
    for claim in ({"user": "admin"}, {"user": "analyst"}, {}):
        status, body, _ = api.request("/api/sql", {"sql": BY_REGION, **claim}, token=token)
        assert status == 200, body
        assert_rows(body, north)
    status, body, _ = api.request("/api/ask", {"question": "Show revenue by region", "user": "admin"}, token=token)
    assert status == 200, body
    assert {r[body["columns"].index("region")] for r in body["rows"]} == {"North"}
    # the same request with the admin's token sees every region
    status, body, _ = api.request("/api/sql", {"sql": BY_REGION}, token=api.tokens["admin"])
    assert_rows(body, region_truth(assistant_lake))


def test_admin_impersonation_is_audited_with_both_names(api: ApiServer, assistant_lake: str) -> None:
    from workbench.observability.recording import catalog_for

    catalog = catalog_for(api.backend.settings)
    before = {e.id for e in catalog.audit_entries(limit=10_000)}
    sql = BY_REGION + " -- impersonated"
    status, body, _ = api.request("/api/sql", {"sql": sql, "as_user": "north_analyst"}, token=api.tokens["admin"])
    assert status == 200, body
    assert_rows(body, region_truth(assistant_lake, ["North"]))
    status, body, _ = api.request(
        "/api/ask", {"question": "Show revenue by region", "as_user": "north_analyst"}, token=api.tokens["admin"]
    )
    assert status == 200 and {r[body["columns"].index("region")] for r in body["rows"]} == {"North"}
    # a non-admin may not impersonate: 403, audited as denied
    status, body, _ = api.request("/api/sql", {"sql": sql, "as_user": "admin"}, token=api.tokens["north_analyst"])
    assert status == 403 and body["error"]["type"] == "access_denied"
    api.backend.flush()
    new = [e for e in catalog.audit_entries(limit=10_000) if e.id not in before]
    acted = [e for e in new if e.outcome == "impersonation" and e.route == "api:sql"]
    assert [e.user for e in new if e.outcome == "impersonation" and e.route == "api:ask"] == ["admin"]
    assert len(acted) == 1 and acted[0].user == "admin" and acted[0].sql == sql
    assert json.loads(acted[0].detail)["as_user"] == "north_analyst"
    assert json.loads(acted[0].detail)["method"] == "token"
    # the query itself ran, and is logged, under the impersonated user's policy
    ran = [e for e in new if e.sql == sql and e.route != "api:sql"]
    assert [e.user for e in ran] == ["north_analyst"] and ran[0].outcome == "ok"
    denied = [e for e in new if e.outcome == "denied" and e.route == "api:sql"]
    assert len(denied) == 1 and denied[0].user == "north_analyst"
    assert json.loads(denied[0].detail)["as_user"] == "admin"


def test_failed_attempts_are_rate_limited(assistant_lake: str, tmp_path: Path) -> None:
    settings = api_settings(assistant_lake, tmp_path / "home", required=True, login_attempts=3, login_window_s=60)
    with ApiServer(assistant_lake, settings) as server:
        good = server.token("analyst")
        assert server.request("/api/sql", {"sql": "SELECT 1 AS x"}, token=good)[0] == 200
        for _ in range(3):
            assert server.request("/api/sql", {"sql": "SELECT 1 AS x"}, token="wb_guess_guess")[0] == 401
        status, body, _ = server.request("/api/sql", {"sql": "SELECT 1 AS x"}, token=good)
        assert status == 429 and body["error"]["type"] == "rate_limited" and "wait" in body["error"]["hint"]


def test_no_auth_configured_acts_as_the_local_user(assistant_lake: str, tmp_path: Path) -> None:
    settings = api_settings(assistant_lake, tmp_path / "home")
    with ApiServer(assistant_lake, settings) as server:
        assert server.backend.auth.required is False
        status, body, _ = server.request("/api/sql", {"sql": BY_REGION, "user": "north_analyst"})
        assert status == 200 and len(body["rows"]) == 5  # the body's user changes nothing
        # once a token exists the API demands one (re-checked within a few seconds)
        server.token("north_analyst")
        server.backend.auth._checked -= 60
        status, body, _ = server.request("/api/sql", {"sql": BY_REGION})
        assert_unauthenticated(status, body)


def test_bind_without_auth_is_loopback_only() -> None:
    from workbench.auth.binding import check_bind
    from workbench.errors import ConfigError

    assert "loopback" in check_bind("API", "127.0.0.1", False, "admin")
    assert "loopback" in check_bind("API", "::1", False, "admin")
    assert "required" in check_bind("API", "0.0.0.0", True, "admin")
    with pytest.raises(ConfigError) as err:
        check_bind("API", "0.0.0.0", False, "admin")
    assert "workbench users add" in err.value.hint and "WORKBENCH_AUTH__OIDC__ISSUER" in err.value.hint


def test_api_cli_refuses_a_public_bind_without_auth(assistant_lake: str, tmp_path: Path) -> None:
    """`workbench api --host 0.0.0.0` with nothing configured exits with how to configure auth."""
    import subprocess
    import sys

    env = {**os.environ, "WORKBENCH_HOME": str(tmp_path / "home"), "WORKBENCH_POLICIES": str(ROOT / "policies.yaml")}
    cmd = [sys.executable, "-c", "from workbench.cli import main; main()", "--lake", assistant_lake, "api"]
    out = subprocess.run(
        [*cmd, "--host", "0.0.0.0", "--port", "0"], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 2, out.stderr
    assert "refusing to serve the API on 0.0.0.0 without authentication" in out.stderr
    assert "workbench token create" in out.stderr


def test_secrets_never_reach_the_logs(api: ApiServer, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    for name in ("", "tornado", "tornado.access", "tornado.application", "workbench"):
        caplog.set_level(logging.DEBUG, logger=name)
    token = api.tokens["north_analyst"]
    assert api.request("/api/sql", {"sql": BY_REGION}, token=token)[0] == 200
    assert api.request("/api/sql", {"sql": BY_REGION}, token=token[:-3] + "xyz")[0] == 401
    api.backend.flush()
    secret = token.split("_", 2)[2]
    assert any(r.name == "tornado.access" for r in caplog.records), "no access log: the check would be empty"
    assert secret not in caplog.text and secret[:-3] not in caplog.text


def test_retrieved_summaries_follow_the_callers_policy(api: ApiServer) -> None:
    """The summaries an answer cites are filtered by the token's user, whatever the body says."""
    others = ("South", "East", "West", "Central")
    question = {"question": "How did revenue develop by region in 2023?", "user": "admin"}
    status, body, _ = api.request("/api/ask", question, token=api.tokens["admin"])
    assert status == 200, body
    assert any(r in s["text"] for s in body["sources"] for r in others), body["sources"]
    status, body, _ = api.request("/api/ask", question, token=api.tokens["north_analyst"])
    assert status == 200, body
    assert body["sources"], "no summaries retrieved: the check would be empty"
    assert not [s["text"] for s in body["sources"] if any(r in s["text"] for r in others)]
