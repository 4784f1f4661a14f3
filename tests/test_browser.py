"""The dashboard in a real browser: KPIs equal `workbench sql`, filters update it, the chat answers.

Headless Chromium (Debian's) driven by Playwright against ``workbench serve`` over
``small_lake``. Panel renders after its websocket connects, so every check waits for
content. Expected numbers come from hand-written SQL run by the ``workbench sql`` CLI in a
separate process, not from the dashboard's own query builder. The time a filter change
takes to render is measured and written to ``benchmarks/results/dashboard_filter.json``
(reported, never asserted).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.browser import VIEWPORT

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "dashboard_filter.json"

#: finds the first element matching a CSS selector inside nested shadow roots (Panel uses them)
DEEP_QUERY = """
(sel) => {
  const walk = (root) => {
    const hit = root.querySelector(sel);
    if (hit) return hit;
    for (const el of root.querySelectorAll('*')) {
      if (el.shadowRoot) { const found = walk(el.shadowRoot); if (found) return found; }
    }
    return null;
  };
  return walk(document);
}
"""


def workbench_sql(lake: str, home: Path, sql: str) -> dict[str, Any]:
    """Run ``workbench sql --json`` in its own process (an independent path to the numbers)."""
    env = {**os.environ, "WORKBENCH_HOME": str(home), "WORKBENCH_PII_KEY": "test-only-key"}
    out = subprocess.run(
        [sys.executable, "-c", "from workbench.cli import main; main()", "--lake", lake, "sql", "--json", sql],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    body = json.loads(out.stdout)
    return dict(zip(body["columns"], body["rows"][0], strict=True))


def kpi_values(page: Any) -> dict[str, float | None]:
    """Exact KPI values (``data-value``) of the cards on the page."""
    values: dict[str, float | None] = {}
    for name in ("revenue", "profit", "margin", "transactions", "aov"):
        raw = page.locator(f".wb-kpi[data-kpi='{name}']").first.get_attribute("data-value")
        values[name] = float(raw) if raw else None
    return values


def kpi_text(page: Any, name: str) -> str:
    return page.locator(f".wb-kpi[data-kpi='{name}'] .wb-kpi-value").first.inner_text().strip()


def status(page: Any) -> str:
    """The dashboard's status line: filters, query time, server refresh time, routes."""
    return str(page.locator(".wb-status-line").first.inner_text())


def refresh_count(page: Any) -> int:
    return int(page.locator(".wb-status-line").first.get_attribute("data-refresh") or 0)


def wait_refreshed(page: Any, after: int, timeout_ms: int = 120_000) -> float:
    """Wait (checking every animation frame) until the dashboard shows refresh ``after + 1``."""
    start = time.perf_counter()
    page.wait_for_function(
        f"""() => {{
            const el = ({DEEP_QUERY})('.wb-status-line');
            return el && Number(el.dataset.refresh) > {after} && el.dataset.busy === 'false';
        }}""",
        polling="raf",
        timeout=timeout_ms,
    )
    line = page.locator(".wb-status-line").first.inner_text()
    if "Update failed" in line:  # the dashboard's own error, shown on the page: report it, do not time out
        alert = page.locator(".alert-danger, .bk-panel-models-markup-HTML .alert").first
        raise AssertionError(f"dashboard refresh failed: {alert.inner_text() if alert.count() else line}")
    return (time.perf_counter() - start) * 1000


def expected(lake: str, home: Path, where: str = "") -> dict[str, float]:
    sql = "SELECT SUM(revenue) AS revenue, SUM(profit) AS profit, COUNT(*) AS transactions FROM sales" + (
        f" WHERE {where}" if where else ""
    )
    got = workbench_sql(lake, home, sql)
    revenue, profit, n = float(got["revenue"]), float(got["profit"]), float(got["transactions"])
    return {
        "revenue": revenue,
        "profit": profit,
        "transactions": n,
        "margin": profit / revenue * 100,
        "aov": revenue / n,
    }


def assert_kpis(page: Any, want: dict[str, float]) -> None:
    from workbench.ui.data import KPI_FORMATS, format_value

    got = kpi_values(page)
    for name, value in want.items():
        assert got[name] is not None, name
        assert math.isclose(got[name], value, rel_tol=1e-9), (name, got[name], value)
        assert kpi_text(page, name) == format_value(value, KPI_FORMATS[name][1])


@pytest.fixture(scope="module")
def lake_under_test(small_lake: str) -> str:
    return os.environ.get("WORKBENCH_BROWSER_LAKE") or small_lake


@pytest.fixture(scope="module")
def sql_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sql_home")


#: requests the page made to anything but the dashboard's own loopback server (must stay empty)
OUTSIDE: list[str] = []
#: navigation -> KPI cards shown and the first refresh done, ms (reported with the filter timings)
PAGE_LOAD_MS: list[float] = []


def _keep_on_loopback(route: Any) -> None:
    """Let loopback requests through; record and abort anything leaving the machine."""
    from urllib.parse import urlsplit

    url = route.request.url
    if url.startswith(("data:", "blob:")) or urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1"):
        route.continue_()
    else:
        OUTSIDE.append(url)
        route.abort()


@pytest.fixture(scope="module")
def page(browser: Any, dashboard_url: str) -> Any:
    """One page on the dashboard, loaded and rendered (KPI cards present).

    Every request is checked: one that would leave 127.0.0.1 (a CDN font, an icon set) is
    aborted and recorded, and ``test_no_request_leaves_the_machine`` fails on it.
    """
    context = browser.new_context(viewport=VIEWPORT)
    context.route("**/*", _keep_on_loopback)
    pg = context.new_page()
    pg.set_default_timeout(120_000)
    start = time.perf_counter()
    pg.goto(dashboard_url, wait_until="domcontentloaded")
    pg.locator(".wb-kpi[data-kpi='revenue']").first.wait_for(state="visible")
    pg.locator(".wb-status-line[data-busy='false']").first.wait_for(state="attached")
    PAGE_LOAD_MS.append(round((time.perf_counter() - start) * 1000, 1))
    yield pg
    context.close()


def test_dashboard_renders_without_horizontal_scroll(page: Any, artifacts_dir: Path) -> None:
    # all five KPI cards and the charts (bokeh canvases) are on the page
    assert page.locator(".wb-kpi").count() == 5
    page.locator(".bk-Canvas, canvas").first.wait_for(state="attached")
    overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"page scrolls horizontally by {overflow}px at 1280x800"
    page.screenshot(path=str(artifacts_dir / "dashboard.png"), full_page=False)


def test_kpis_equal_workbench_sql(page: Any, lake_under_test: str, sql_home: Path) -> None:
    """Default filters cover all data: KPIs equal totals over the whole sales table."""
    assert_kpis(page, expected(lake_under_test, sql_home))


def test_filter_change_updates_kpis_and_charts(
    page: Any, lake_under_test: str, sql_home: Path, artifacts_dir: Path
) -> None:
    timings: list[dict[str, Any]] = []

    # a region filter (a CheckButtonGroup button)
    before = refresh_count(page)
    charts = {name: page.locator(f".wb-chart-{name}").first for name in ("trend", "channel", "products")}
    pixels = {name: chart.screenshot() for name, chart in charts.items()}
    start = time.perf_counter()
    page.get_by_role("button", name="East", exact=True).click()
    wait_refreshed(page, before)
    timings.append(
        {"change": "region=East", "render_ms": round((time.perf_counter() - start) * 1000, 1), "server": status(page)}
    )
    assert_kpis(page, expected(lake_under_test, sql_home, "region = 'East'"))
    assert "region: East" in page.locator(".wb-status-line").first.inner_text()
    page.wait_for_timeout(500)  # let Bokeh repaint the canvases
    changed = [name for name, chart in charts.items() if chart.screenshot() != pixels[name]]
    assert changed == list(charts), f"charts that did not change: {set(charts) - set(changed)}"
    page.screenshot(path=str(artifacts_dir / "dashboard-east.png"))

    # a period preset: the last year of data, compared with the previous period of equal length
    before = refresh_count(page)
    start = time.perf_counter()
    page.locator("select").first.select_option("Year to date")
    wait_refreshed(page, before)
    timings.append(
        {
            "change": "period=Year to date",
            "render_ms": round((time.perf_counter() - start) * 1000, 1),
            "server": status(page),
        }
    )
    last = dt.date.fromisoformat(
        str(workbench_sql(lake_under_test, sql_home, "SELECT CAST(MAX(date) AS VARCHAR) AS d FROM sales")["d"])[:10]
    )
    first = dt.date(last.year, 1, 1)
    days = (last - first).days + 1
    prev_end = first - dt.timedelta(days=1)
    prev_start = prev_end - dt.timedelta(days=days - 1)
    cur = expected(lake_under_test, sql_home, f"region = 'East' AND date BETWEEN DATE '{first}' AND DATE '{last}'")
    prev = expected(
        lake_under_test, sql_home, f"region = 'East' AND date BETWEEN DATE '{prev_start}' AND DATE '{prev_end}'"
    )
    assert_kpis(page, cur)
    change = page.locator(".wb-kpi[data-kpi='revenue'] .wb-kpi-change").first.inner_text()
    want = (cur["revenue"] - prev["revenue"]) / prev["revenue"] * 100
    assert f"{want:+.1f}%" in change

    # clearing the filters brings the totals back
    before = refresh_count(page)
    start = time.perf_counter()
    page.get_by_role("button", name="Clear filters").click()
    wait_refreshed(page, before)
    timings.append(
        {"change": "clear", "render_ms": round((time.perf_counter() - start) * 1000, 1), "server": status(page)}
    )
    assert_kpis(page, expected(lake_under_test, sql_home))

    rows = int(expected(lake_under_test, sql_home)["transactions"])
    report = {
        "what": "dashboard filter change -> KPIs and charts rendered (browser, click to DOM update)",
        "rows": rows,
        "lake": "WORKBENCH_BROWSER_LAKE" if os.environ.get("WORKBENCH_BROWSER_LAKE") else "small_lake fixture",
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "load_avg_1m": round(os.getloadavg()[0], 1),
        "note": (
            "render_ms = click in Chromium -> new KPIs/status in the DOM; the status line holds server-side "
            "times; page_load_ms = navigation -> KPI cards shown and the first refresh done (server already up)"
        ),
        "page_load_ms": PAGE_LOAD_MS[0] if PAGE_LOAD_MS else None,
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "timings": timings,
    }
    print("\ndashboard filter change:", json.dumps(report, indent=1))
    # a deliberate benchmark run (WORKBENCH_BROWSER_LAKE) records into benchmarks/results; the
    # default suite keeps its timings with the other test artifacts (a test run never dirties the tree)
    if os.environ.get("WORKBENCH_BROWSER_RESULTS"):
        name = Path(os.environ["WORKBENCH_BROWSER_RESULTS"])
    elif os.environ.get("WORKBENCH_BROWSER_LAKE"):
        name = RESULTS.with_name(f"dashboard_filter_{rows}.json")
    else:
        name = artifacts_dir / "dashboard_filter.json"
    name.parent.mkdir(parents=True, exist_ok=True)
    name.write_text(json.dumps(report, indent=1) + "\n")


def test_chat_answers_with_table_and_sql(page: Any, artifacts_dir: Path) -> None:
    page.get_by_text("Ask the assistant", exact=True).click()
    box = page.locator("textarea").first
    box.wait_for(state="visible")
    box.fill("revenue by region in 2024")
    box.press("Enter")
    answer = page.locator(".wb-answer").last
    answer.wait_for(state="visible", timeout=180_000)
    # what was answered, in one sentence, above the narrative
    shown = answer.locator(".wb-interpretation").first.evaluate("el => (el.shadowRoot || el).textContent")
    assert "Revenue by region, 2024" in shown, shown  # the interpretation, read from the pane's shadow DOM
    table = answer.locator(".wb-answer-table table").first
    table.wait_for(state="visible")
    text = table.inner_text()
    for region in ("North", "South", "East", "West", "Central"):
        assert region in text
    card = answer.locator(".wb-sql-card").first
    card.locator("button, .card-header").first.click()
    sql = answer.locator(".wb-sql code").first
    sql.wait_for(state="visible")
    assert "SELECT" in sql.inner_text().upper()
    assert "answered" in answer.locator(".wb-route small").first.inner_text()
    page.screenshot(path=str(artifacts_dir / "dashboard-chat.png"))


def test_chat_shows_errors_as_messages(page: Any) -> None:
    page.get_by_text("Ask the assistant", exact=True).click()
    box = page.locator("textarea").first
    box.fill("please delete all sales rows")
    box.press("Enter")
    alert = page.locator(".wb-answer-error").last
    alert.wait_for(state="visible", timeout=120_000)
    text = alert.evaluate("el => (el.shadowRoot || el).textContent")
    assert "Traceback" not in text
    assert "can't answer" in text or "could not answer" in text, text


#: every element matching a CSS selector, inside nested shadow roots too
DEEP_QUERY_ALL = """
(sel) => {
  const out = [];
  const walk = (root) => {
    out.push(...root.querySelectorAll(sel));
    for (const el of root.querySelectorAll('*')) if (el.shadowRoot) walk(el.shadowRoot);
  };
  walk(document);
  return out;
}
"""


def test_charts_do_not_zoom_on_the_scroll_wheel(page: Any) -> None:
    page.get_by_text("Overview", exact=True).click()
    toolbars = page.evaluate(
        """() => {
            const out = [];
            for (const doc of Bokeh.documents) for (const m of doc.all_models)
                if (m.type === 'Toolbar') out.push({scroll: m.active_scroll === null ? null : String(m.active_scroll),
                    tools: m.tools.map(t => t.type)});
            return out;
        }"""
    )
    charts = [t for t in toolbars if "BoxZoomTool" in t["tools"] or "WheelZoomTool" in t["tools"]]
    assert len(charts) >= 6, toolbars  # trend + five breakdowns
    assert all(t["scroll"] is None for t in charts), toolbars
    # and in the browser: a wheel over the trend chart scrolls the page, the chart keeps its range
    chart = page.locator(".wb-chart-trend").first
    chart.scroll_into_view_if_needed()
    box = chart.bounding_box()
    ranges = """() => [...Bokeh.documents[0].all_models]
        .filter(m => m.type === 'Range1d' || m.type === 'DataRange1d').map(r => [r.start, r.end])"""
    start = page.evaluate(ranges)
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, 400)
    page.wait_for_timeout(500)
    assert page.evaluate(ranges) == start


def test_chat_scrolls_to_the_newest_answer_and_avatars_render(page: Any) -> None:
    page.get_by_text("Ask the assistant", exact=True).click()
    box = page.locator("textarea").first
    for question in ("revenue by category in 2023", "top 5 products by profit in 2024"):
        count = page.locator(".wb-answer").count()
        box.fill(question)
        box.press("Enter")
        page.wait_for_function(f"() => ({DEEP_QUERY_ALL})('.wb-answer').length > {count}", polling=250, timeout=180_000)
        page.wait_for_timeout(1500)  # let the feed finish its scroll
    visible = page.evaluate(
        f"""() => {{
            const answers = ({DEEP_QUERY_ALL})('.wb-answer');
            const r = answers[answers.length - 1].getBoundingClientRect();
            return {{top: r.top, bottom: r.bottom, height: window.innerHeight}};
        }}"""
    )
    assert visible["top"] < visible["height"] and visible["bottom"] > 0, visible  # the newest answer is in view
    aligned = page.evaluate(
        f"""() => {{
            const panes = ({DEEP_QUERY_ALL})('.wb-answer-table');
            const pane = panes[panes.length - 1];
            const row = (pane.shadowRoot || pane).querySelector('table tbody tr');
            return [...row.querySelectorAll('td')].map(td => getComputedStyle(td).textAlign);
        }}"""
    )
    assert aligned == ["left", "right"], aligned  # product names left, profit right
    avatars = page.evaluate(
        f"""() => ({DEEP_QUERY_ALL})('.avatar').filter(a => a.getBoundingClientRect().width > 0)
                .map(a => {{
                    const root = a.shadowRoot || a;
                    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
                    let text = '';
                    for (let n = walker.nextNode(); n; n = walker.nextNode())
                        if (!n.parentElement || n.parentElement.tagName !== 'STYLE') text += n.textContent;
                    return {{text: text.trim(), w: a.getBoundingClientRect().width}};
                }})"""
    )
    assert len(avatars) >= 4, avatars  # welcome, questions, answers
    for avatar in avatars:
        # a letter renders in every font; an emoji without a colour-emoji font is an empty box
        assert len(avatar["text"]) == 1 and avatar["text"].isascii() and avatar["text"].strip(), avatars


def test_no_request_leaves_the_machine(page: Any) -> None:
    """Runs last in this module: everything the tests above made the page load stayed on 127.0.0.1."""
    page.get_by_text("Overview", exact=True).click()
    page.wait_for_timeout(500)
    assert OUTSIDE == [], f"requests that left the machine: {sorted(set(OUTSIDE))}"
