"""Signed-in viewers of the served dashboard: each sees only what their policy lets through.

Two viewers, ``admin`` and ``north_analyst``, sign in with headless Chromium, once through
the local users file (the dashboard's own login page) and once through a real OpenID Connect
provider on loopback (``oidc-provider-mock``: authorization-code flow, JWKS, userinfo). Both
sessions are open at the same time on one server. KPI totals are compared with plain DuckDB
over the lake's Parquet files; every chart's data (the Bokeh data sources in the browser) and
the assistant's answer hold only the viewer's regions.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.fixtures import oidc as oidc_fixtures
from tests.fixtures.browser import VIEWPORT, serve_dashboard, stop
from tests.fixtures.oidc import NoRedirect, oidc_access_token
from workbench.lake.storage import Lake

pytestmark = pytest.mark.browser
oidc_issuer = oidc_fixtures.oidc_issuer  # the provider fixture, shared

ROOT = Path(__file__).resolve().parents[1]
POLICIES = str(ROOT / "policies.yaml")
PASSWORDS = {"admin": "admin-pass-123", "north_analyst": "north-pass-456"}
ALL_REGIONS = {"North", "South", "East", "West", "Central"}

#: every Bokeh ColumnDataSource of the page as {column: [values]} (Panel renders charts with Bokeh)
CHART_DATA = """
() => {
  const out = [];
  for (const doc of Bokeh.documents) {
    for (const m of doc.all_models) {
      if (m.type !== 'ColumnDataSource') continue;
      const d = m.data instanceof Map ? Object.fromEntries(m.data) : m.data;
      const cols = {};
      for (const [k, v] of Object.entries(d)) cols[k] = Array.from(v, (x) => (typeof x === 'object' ? String(x) : x));
      out.push(cols);
    }
  }
  return out;
}
"""


def truth(lake: str, regions: set[str] | None) -> dict[str, Any]:
    """Totals and store names per policy, straight from the Parquet files (not via the workbench)."""
    lk = Lake(lake)
    con = duckdb.connect()
    con.read_parquet(lk.files("sales"), hive_partitioning=True).create_view("sales")
    con.read_parquet(lk.files("stores")).create_view("stores")
    where = f"WHERE region IN ({', '.join(repr(r) for r in sorted(regions))})" if regions else ""
    revenue, profit, n = con.execute(f"SELECT SUM(revenue), SUM(profit), COUNT(*) FROM sales {where}").fetchone()
    stores = {r[0] for r in con.execute(f"SELECT store_name FROM stores {where}").fetchall()}
    return {"revenue": float(revenue), "profit": float(profit), "transactions": float(n), "stores": stores}


def sign_in_users_file(page: Any, url: str, user: str) -> None:
    page.goto(url, wait_until="domcontentloaded")
    page.locator("input[name='username']").fill(user)
    page.locator("input[name='password']").fill(PASSWORDS[user])
    page.locator("input[name='password']").press("Enter")


def sign_in_oidc(page: Any, url: str, user: str) -> None:
    page.goto(url, wait_until="domcontentloaded")
    page.locator("input[name='sub']").fill(user)  # the provider's own sign-in form
    page.get_by_role("button", name="Authorize").click()


def wait_dashboard(page: Any) -> None:
    page.locator(".wb-kpi[data-kpi='revenue']").first.wait_for(state="visible")
    page.locator(".wb-status-line[data-busy='false']").first.wait_for(state="attached")


def kpi(page: Any, name: str) -> float:
    return float(page.locator(f".wb-kpi[data-kpi='{name}']").first.get_attribute("data-value") or "nan")


def check_viewer(page: Any, lake: str, regions: set[str] | None) -> None:
    """KPIs equal the policy's totals; every chart and the assistant show only allowed regions."""
    want = truth(lake, regions)
    for name in ("revenue", "profit", "transactions"):
        assert math.isclose(kpi(page, name), want[name], rel_tol=1e-9), (name, kpi(page, name), want[name])
    allowed = regions or ALL_REGIONS
    page.locator(".bk-Canvas, canvas").first.wait_for(state="attached")
    sources = page.evaluate(CHART_DATA)
    region_values = {str(v) for s in sources for v in s.get("region", [])}
    assert region_values and region_values <= allowed, region_values
    if regions is None:
        assert region_values == ALL_REGIONS
    # every breakdown chart adds up to the viewer's total: no other region's rows in any of them
    for key in ("period", "region", "channel", "category"):
        (chart,) = [s for s in sources if key in s]
        assert math.isclose(sum(chart["revenue"]), want["revenue"], rel_tol=1e-6), (key, sum(chart["revenue"]))
    # the top-stores chart names only the viewer's stores
    names = {str(v) for s in sources for v in s.get("name", [])}
    shown_stores = names & truth(lake, None)["stores"]
    assert shown_stores and shown_stores <= want["stores"], shown_stores - want["stores"]
    # the region filter only offers what the viewer may see
    for region in ALL_REGIONS - allowed:
        assert page.get_by_role("button", name=region, exact=True).count() == 0

    page.get_by_text("Ask the assistant", exact=True).click()
    box = page.locator("textarea").first
    box.wait_for(state="visible")
    box.fill("revenue by region")
    box.press("Enter")
    table = page.locator(".wb-answer").last.locator(".wb-answer-table table").first
    table.wait_for(state="visible", timeout=180_000)
    text = table.inner_text()
    assert {r for r in ALL_REGIONS if r in text} == allowed, text


def two_viewers(browser: Any, url: str, lake: str, sign_in: Any, artifacts: Path, tag: str) -> None:
    contexts = {user: browser.new_context(viewport=VIEWPORT) for user in ("admin", "north_analyst")}
    try:
        pages = {}
        for user, ctx in contexts.items():
            pg = ctx.new_page()
            pg.set_default_timeout(120_000)
            sign_in(pg, url, user)
            wait_dashboard(pg)
            pages[user] = pg
        # both sessions are live on the same server at once, with different totals
        assert kpi(pages["admin"], "revenue") > kpi(pages["north_analyst"], "revenue") > 0
        check_viewer(pages["north_analyst"], lake, {"North"})
        check_viewer(pages["admin"], lake, None)
        for user, pg in pages.items():
            pg.screenshot(path=str(artifacts / f"dashboard-{tag}-{user}.png"))
    finally:
        for ctx in contexts.values():
            ctx.close()


def assert_login_required(url: str) -> None:
    """Without a session the dashboard itself is not served (the request goes to sign-in)."""
    req = urllib.request.Request(url)
    opener = urllib.request.build_opener(NoRedirect())
    try:
        opener.open(req, timeout=30)
    except urllib.error.HTTPError as e:
        assert e.code in (302, 303), e.code
        assert "login" in (e.headers.get("Location") or "")
    else:
        raise AssertionError("the dashboard was served without signing in")


# --- the local users file ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def users_dashboard(small_lake: str, tmp_path_factory: pytest.TempPathFactory, artifacts_dir: Path) -> Iterator[str]:
    from workbench.auth.users import UsersFile

    home = tmp_path_factory.mktemp("users_home")
    users = UsersFile(home / "users.json")
    for user, password in PASSWORDS.items():
        users.add(user, password)
    env = {"WORKBENCH_POLICIES": POLICIES, "WORKBENCH_AUTH__LOGIN_ATTEMPTS": "3"}
    proc, url = serve_dashboard(small_lake, home, artifacts_dir / "dashboard-users.log", extra_env=env)
    try:
        yield url
    finally:
        stop(proc)
    log = (artifacts_dir / "dashboard-users.log").read_text()
    assert all(p not in log for p in PASSWORDS.values()), "a password reached the server log"


def test_users_file_two_viewers(browser: Any, users_dashboard: str, small_lake: str, artifacts_dir: Path) -> None:
    assert_login_required(users_dashboard)
    two_viewers(browser, users_dashboard, small_lake, sign_in_users_file, artifacts_dir, "users")


def test_users_file_wrong_password_and_rate_limit(browser: Any, users_dashboard: str) -> None:
    ctx = browser.new_context(viewport=VIEWPORT)
    try:
        page = ctx.new_page()
        page.set_default_timeout(60_000)
        for _ in range(3):
            page.goto(users_dashboard, wait_until="domcontentloaded")
            page.locator("input[name='username']").fill("north_analyst")
            page.locator("input[name='password']").fill("wrong-password")
            page.locator("input[name='password']").press("Enter")
            page.wait_for_url("**error=*")
            assert "Invalid username or password" in page.content()
        # the right password is refused now: too many failures for this user
        sign_in_users_file(page, users_dashboard, "north_analyst")
        page.wait_for_url("**error=*")
        assert "too many failed sign-in attempts" in page.content()
        assert page.locator(".wb-kpi").count() == 0
    finally:
        ctx.close()


def test_session_expires_on_an_open_page(browser: Any, small_lake: str, tmp_path: Path, artifacts_dir: Path) -> None:
    """A page left open ends when its sign-in expires; reloading asks for the password again."""
    from workbench.auth.users import UsersFile

    home = tmp_path / "home"
    UsersFile(home / "users.json").add("north_analyst", PASSWORDS["north_analyst"])
    env = {"WORKBENCH_POLICIES": POLICIES, "WORKBENCH_AUTH__SESSION_HOURS": str(40 / 3600)}  # 40 s
    proc, url = serve_dashboard(small_lake, home, artifacts_dir / "dashboard-expiry.log", extra_env=env)
    ctx = browser.new_context(viewport=VIEWPORT)
    try:
        page = ctx.new_page()
        page.set_default_timeout(120_000)
        sign_in_users_file(page, url, "north_analyst")
        wait_dashboard(page)
        page.locator(".wb-session-expired").first.wait_for(state="attached", timeout=90_000)
        assert page.locator(".wb-kpi").count() == 0
        page.goto(url, wait_until="domcontentloaded")
        page.locator("input[name='password']").wait_for(state="visible")
    finally:
        ctx.close()
        stop(proc)


# --- a real OIDC provider on loopback ---------------------------------------------------------------


@pytest.fixture(scope="module")
def oidc_dashboard(
    small_lake: str, oidc_issuer: str, tmp_path_factory: pytest.TempPathFactory, artifacts_dir: Path
) -> Iterator[str]:
    home = tmp_path_factory.mktemp("oidc_home")
    env = {
        "WORKBENCH_POLICIES": POLICIES,
        "WORKBENCH_AUTH__OIDC__ISSUER": oidc_issuer,
        "WORKBENCH_AUTH__OIDC__CLIENT_ID": "workbench-dashboard",
        "WORKBENCH_AUTH__OIDC__CLIENT_SECRET": "dashboard-client-secret",
    }
    proc, url = serve_dashboard(small_lake, home, artifacts_dir / "dashboard-oidc.log", extra_env=env)
    try:
        yield url
    finally:
        stop(proc)
    assert "dashboard-client-secret" not in (artifacts_dir / "dashboard-oidc.log").read_text()


def test_oidc_two_viewers(browser: Any, oidc_dashboard: str, small_lake: str, artifacts_dir: Path) -> None:
    assert_login_required(oidc_dashboard)
    two_viewers(browser, oidc_dashboard, small_lake, sign_in_oidc, artifacts_dir, "oidc")


def test_oidc_api_on_the_served_dashboard(oidc_dashboard: str, oidc_issuer: str, small_lake: str) -> None:
    """The API mounted next to the dashboard takes the provider's access tokens (userinfo)."""
    token = oidc_access_token(oidc_issuer, "north_analyst")
    sql = "SELECT region, SUM(revenue) AS revenue FROM sales GROUP BY region ORDER BY region"
    body = json.dumps({"sql": sql, "user": "admin"}).encode()
    req = urllib.request.Request(oidc_dashboard + "api/sql", data=body, method="POST")
    req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=120) as resp:
        got = json.loads(resp.read())
    assert [r[0] for r in got["rows"]] == ["North"]
    assert math.isclose(got["rows"][0][1], truth(small_lake, {"North"})["revenue"], rel_tol=1e-9)
    req = urllib.request.Request(oidc_dashboard + "api/sql", data=body, method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=60)
    assert err.value.code == 401
    assert json.loads(err.value.read())["error"]["type"] == "unauthenticated"
