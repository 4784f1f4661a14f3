"""One error shape on every surface (datasette's ``test_error_shape.py`` is the model).

``sql --json``, ``ask --json``, ``POST /api/sql`` and ``POST /api/ask`` report a failure as
``{"type", "message", "hint"}`` plus an optional ``details`` object: under ``"error"`` at the
top level when the request failed, or as the ``error`` of an answer that was refused or
failed. The CLI's exit code is the error class's own (``workbench.errors``), whether the error
was raised or reported inside an answer; the HTTP status comes from the same class.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.test_api import ApiServer, api_settings
from workbench.errors import ERROR_KEYS, error_classes, exit_code_for

REPO = Path(__file__).resolve().parents[1]

#: (SQL, user, expected type); every one fails before or while it runs
SQL_ERRORS = [
    ("DELETE FROM sales", None, "query_refused"),
    ("SELECT * FROM read_csv('/etc/passwd')", None, "query_refused"),
    ("SELECT email FROM customers", "north_analyst", "access_denied"),
    ("SELECT region FROM sales", "nobody_known", "not_found"),
]
#: (question, user, expected type)
ASK_ERRORS = [
    ("Please delete all rows of the sales table", None, "query_refused"),
    ("revenue by region in 2023", "nobody_known", "not_found"),
]


def assert_shape(error: Any) -> None:
    assert isinstance(error, dict), error
    assert set(error) - {"details"} == set(ERROR_KEYS), error
    assert all(isinstance(error[k], str) for k in ERROR_KEYS), error
    assert error["message"], "an error says what failed"
    assert error["type"] in error_classes(), f"{error['type']} is not an error family of workbench.errors"
    if "details" in error:
        assert isinstance(error["details"], dict)


@pytest.fixture(scope="module", autouse=True)
def policies(assistant_lake: str) -> Iterator[None]:
    from workbench.config import reset_settings

    mp = pytest.MonkeyPatch()
    mp.setenv("WORKBENCH_POLICIES", str(REPO / "policies.yaml"))
    mp.setenv("WORKBENCH_LLM_MODEL", "")
    reset_settings()
    yield
    mp.undo()
    reset_settings()


@pytest.fixture(scope="module")
def api(assistant_lake: str, policies: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """An authenticated API: the caller is whoever the bearer token names (never the body)."""
    settings = api_settings(assistant_lake, tmp_path_factory.mktemp("shape_home"), required=True, login_attempts=50)
    with ApiServer(assistant_lake, settings) as server:
        yield server


def _token(api: ApiServer, user: str | None) -> str:
    """A token for ``user``, or for the default user the CLI runs as when no --user is given."""
    from workbench.config import get_settings

    return api.token(user or get_settings().user)


def _cli(lake: str, *args: str) -> tuple[int, dict[str, Any]]:
    from workbench.cli import main

    run = CliRunner().invoke(main, ["--lake", lake, *args, "--json"])
    lines = [line for line in run.stdout.strip().splitlines() if line.startswith("{")]
    assert lines, run.output
    return run.exit_code, json.loads(lines[-1])


def _user(user: str | None) -> list[str]:
    return ["--user", user] if user else []


@pytest.mark.parametrize(("sql", "user", "kind"), SQL_ERRORS)
def test_sql_json_error_shape_and_exit_code(assistant_lake: str, sql: str, user: str | None, kind: str) -> None:
    code, body = _cli(assistant_lake, "sql", sql, *_user(user))
    assert set(body) == {"error"}
    assert_shape(body["error"])
    assert body["error"]["type"] == kind
    assert code == error_classes()[kind].exit_code != 0


@pytest.mark.parametrize(("question", "user", "kind"), ASK_ERRORS)
def test_ask_json_error_shape_and_exit_code(assistant_lake: str, question: str, user: str | None, kind: str) -> None:
    code, body = _cli(assistant_lake, "ask", question, *_user(user))
    error = body["error"]  # a refused answer, or a request that failed before any answer
    assert_shape(error)
    assert error["type"] == kind
    assert code == exit_code_for(kind) != 0
    if "question" in body:
        assert body["status"] == "refused" and body["rows"] == []


@pytest.mark.parametrize(("sql", "user", "kind"), SQL_ERRORS)
def test_api_sql_error_shape(api: ApiServer, assistant_lake: str, sql: str, user: str | None, kind: str) -> None:
    from workbench.observability.http import status_for

    status, body, ctype = api.request("/api/sql", {"sql": sql}, token=_token(api, user))
    assert "json" in ctype and set(body) == {"error"}
    assert_shape(body["error"])
    assert body["error"]["type"] == kind
    assert status == status_for(error_classes()[kind](""))
    _, cli_body = _cli(assistant_lake, "sql", sql, *_user(user))
    assert body["error"] == cli_body["error"], "the API and the CLI report the same error"


@pytest.mark.parametrize(("question", "user", "kind"), ASK_ERRORS)
def test_api_ask_error_shape(api: ApiServer, question: str, user: str | None, kind: str) -> None:
    status, body, _ = api.request("/api/ask", {"question": question}, token=_token(api, user))
    assert_shape(body["error"])
    assert body["error"]["type"] == kind
    assert (status == 200) == ("question" in body), "an answer (200) or a failed request (4xx/5xx)"


@pytest.mark.parametrize("body", [{}, {"sql": ""}, {"sql": 42}])
def test_api_malformed_request_error_shape(api: ApiServer, body: dict[str, Any]) -> None:
    status, got, _ = api.request("/api/sql", body, token=_token(api, None))
    assert status == 400
    assert_shape(got["error"])
