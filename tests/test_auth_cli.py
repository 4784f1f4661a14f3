"""Credentials on the command line: the users file, API tokens, and what ``--user`` means locally."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from workbench.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def repo_policies(monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.config import reset_settings

    monkeypatch.setenv("WORKBENCH_POLICIES", str(ROOT / "policies.yaml"))
    reset_settings()


def test_users_add_prompts_and_stores_only_a_salted_hash(tmp_path: Path) -> None:
    from workbench.auth.users import UsersFile, verify_password
    from workbench.config import get_settings

    out = CliRunner().invoke(main, ["users", "add", "north_analyst"], input="s3cret-pass\ns3cret-pass\n")
    assert out.exit_code == 0, out.output
    users = UsersFile.for_settings(get_settings())
    raw = users.path.read_text()
    assert "s3cret-pass" not in raw and "scrypt$" in raw
    assert stat.S_IMODE(users.path.stat().st_mode) == 0o600
    assert users.check("north_analyst", "s3cret-pass")
    assert not users.check("north_analyst", "s3cret-pasS") and not users.check("nobody", "s3cret-pass")
    # same password, another user: another salt, another hash
    CliRunner().invoke(main, ["users", "add", "admin", "--password-stdin"], input="s3cret-pass\n")
    hashes = {u["hash"] for u in users.users().values()}
    assert len(hashes) == 2 and all(verify_password("s3cret-pass", h) for h in hashes)
    again = CliRunner().invoke(main, ["users", "add", "admin", "--password-stdin"], input="other-pass-1\n")
    assert again.exit_code == 3 and "already exists" in again.output
    short = CliRunner().invoke(main, ["users", "add", "analyst", "--password-stdin"], input="short\n")
    assert short.exit_code == 3 and "too short" in short.output
    listed = CliRunner().invoke(main, ["users", "list", "--json"])
    assert [u["user"] for u in json.loads(listed.output)] == ["admin", "north_analyst"]
    assert "scrypt" not in listed.output


def test_token_create_list_revoke(tmp_path: Path) -> None:
    from workbench.auth.tokens import TokenStore
    from workbench.catalog import open_catalog
    from workbench.config import get_settings
    from workbench.errors import AuthenticationError

    made = CliRunner().invoke(main, ["token", "create", "--user", "north_analyst", "--expires", "2h", "--json"])
    assert made.exit_code == 0, made.output
    created = json.loads(made.output)
    token = created["token"]
    assert token.startswith("wb_") and created["status"] == "active"
    store = TokenStore(open_catalog(get_settings()))
    assert store.authenticate(token).name == "north_analyst"  # type: ignore[union-attr]
    listed = CliRunner().invoke(main, ["token", "list"])
    secret = token.split("_", 2)[2]
    assert created["id"] in listed.output and secret not in listed.output
    assert secret not in CliRunner().invoke(main, ["token", "list", "--json"]).output
    revoked = CliRunner().invoke(main, ["token", "revoke", created["id"]])
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    with pytest.raises(AuthenticationError, match="revoked"):
        store.authenticate(token)
    unknown = CliRunner().invoke(main, ["token", "create", "--user", "nort_analyst"])
    assert unknown.exit_code == 4 and "north_analyst" in unknown.output


def test_cli_user_is_audited_as_evaluate_as(small_lake: str) -> None:
    from workbench.auth.local import os_account
    from workbench.catalog import open_catalog
    from workbench.config import get_settings

    sql = "SELECT region, COUNT(*) AS n FROM sales GROUP BY region"
    out = CliRunner().invoke(main, ["--lake", small_lake, "sql", sql, "--user", "north_analyst", "--json"])
    assert out.exit_code == 0, out.output
    assert [r[0] for r in json.loads(out.output.strip().splitlines()[-1])["rows"]] == ["North"]
    entries = [e for e in open_catalog(get_settings()).audit_entries(limit=100) if e.sql == sql]
    chose = [e for e in entries if e.outcome == "evaluate_as"]
    assert len(chose) == 1 and chose[0].user == os_account() and chose[0].route == "cli:sql"
    assert json.loads(chose[0].detail) == {"as_user": "north_analyst", "surface": "cli", "authenticated": False}
    assert [e.user for e in entries if e.outcome == "ok"] == ["north_analyst"]


def test_dashboard_sessions_expire() -> None:
    """A signed session cookie older than ``auth.session_hours`` is no longer accepted."""
    import panel as pn
    from tornado.web import create_signed_value, decode_signed_value

    from workbench.auth.dashboard import dashboard_auth
    from workbench.auth.users import UsersFile
    from workbench.config import AuthSettings, get_settings

    settings = get_settings().model_copy(update={"auth": AuthSettings(session_hours=0.5)})
    UsersFile.for_settings(settings).add("admin", "admin-pass-1")
    kwargs = dashboard_auth(settings)
    secret = kwargs["cookie_secret"]
    assert "auth_provider" in kwargs and len(secret) >= 32
    fresh = create_signed_value(secret, "user", "admin")
    old = create_signed_value(secret, "user", "admin", clock=lambda: time.time() - 3600)
    assert decode_signed_value(secret, "user", fresh, max_age_days=pn.config.oauth_expiry) == b"admin"
    assert decode_signed_value(secret, "user", old, max_age_days=pn.config.oauth_expiry) is None
    # the secret is generated once per home and reused (sessions survive a restart)
    assert dashboard_auth(settings)["cookie_secret"] == secret


def test_serve_refuses_a_public_address_without_auth(small_lake: str, tmp_path: Path) -> None:
    """`workbench serve --address 0.0.0.0` with no sign-in configured exits, saying how to configure it."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "WORKBENCH_HOME": str(tmp_path / "home")}
    cmd = [sys.executable, "-c", "from workbench.cli import main; main()", "--lake", small_lake, "serve"]
    out = subprocess.run([*cmd, "--address", "0.0.0.0", "--port", "0"], capture_output=True, text=True, env=env)
    assert out.returncode == 2, out.stdout + out.stderr
    text = out.stdout + out.stderr
    assert "refusing to serve the dashboard on 0.0.0.0 without authentication" in text
    assert "workbench users add NAME" in text and "WORKBENCH_AUTH__OIDC__CLIENT_SECRET" in text
