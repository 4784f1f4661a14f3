"""The analyst dashboard: KPIs, charts and filters over the lake, plus the assistant chat.

``build_dashboard(wb)`` is the one factory: ``panel serve dashboards/app.py``, ``workbench
serve``, ``make demo`` (via :func:`serve`) and the tests all build the same app. Filters
drive every view through the workbench router (``Workbench.sql``) with rollup-friendly SQL
(:mod:`workbench.ui.queries`); queries run in a worker thread so the page stays live, and a
status line reports how long the refresh took and which route answered it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import errno
import html
import logging
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

import pandas as pd

from workbench.errors import ConfigError, WorkbenchError
from workbench.ui.charts import LiveChart
from workbench.ui.data import FilterOptions, NameLookup, ViewData, filter_options, load_view
from workbench.ui.queries import Filters

if TYPE_CHECKING:
    from workbench.runner import QueryRunner

log = logging.getLogger(__name__)

TITLE = "Retail Insights Workbench"

#: pixels of the chat panel (fits a 800 px high window under the header and the tabs)
CHAT_HEIGHT = 620

PRESETS = ("All data", "Last 12 months", "Last 3 months", "Year to date")

CSS = """
.wb-kpi {border: 1px solid #e3e3e3; border-radius: 8px; padding: 8px 12px; background: #fff; min-width: 0}
.wb-kpi-label {font-size: 0.8em; color: #666; text-transform: uppercase; letter-spacing: .04em}
.wb-kpi-value {font-size: 1.55em; font-weight: 600; margin: 2px 0}
.wb-kpi-change {font-size: 0.8em}
.wb-up {color: #1a7f37} .wb-down {color: #cf222e} .wb-flat {color: #666}
"""

_lock = threading.Lock()
_sessions: dict[str, Any] = {}
_options: weakref.WeakKeyDictionary[Any, dict[str | None, FilterOptions]] = weakref.WeakKeyDictionary()


def workbench_for(lake: str | None = None) -> Any:
    """One Workbench per lake for the whole server (browser sessions share its engines)."""
    import workbench

    key = lake or ""
    with _lock:
        if key not in _sessions:
            _sessions[key] = workbench.connect(lake)
        return _sessions[key]


def options_for(wb: QueryRunner, user: str | None = None) -> FilterOptions:
    """Filter choices of ``wb``'s lake that ``user`` may see, read once per server and user."""
    with _lock:
        found = _options.get(wb, {}).get(user)
    if found is None:
        found = filter_options(wb, user)
        with _lock:
            _options.setdefault(wb, {})[user] = found
    return found


class Dashboard:
    """One browser session's dashboard: filter widgets, KPI cards, charts and the chat."""

    def __init__(self, wb: QueryRunner, options: FilterOptions | None = None, user: str | None = None) -> None:
        import panel as pn

        self.wb = wb
        self.user = user
        self.options = options or options_for(wb, user)
        self.names = NameLookup(wb, user)
        self.data: ViewData | None = None
        self.refreshes = 0
        self.last_refresh_ms: float | None = None
        self._generation = 0
        self._quiet = False
        first, last = self.options.first_date, self.options.last_date
        values = self.options.values
        self.preset = pn.widgets.Select(label="Period", options=[*PRESETS, "Custom"], value="All data")
        self.start = pn.widgets.DatePicker(label="From", value=first, start=first, end=last)
        self.end = pn.widgets.DatePicker(label="To", value=last, start=first, end=last)
        self.region = pn.widgets.CheckButtonGroup(
            label="Region", options=values.get("region", []), value=[], color="primary", variant="outline"
        )
        self.category = pn.widgets.MultiChoice(
            label="Category", options=values.get("category", []), value=[], placeholder="all categories"
        )
        self.channel = pn.widgets.CheckButtonGroup(
            label="Channel", options=values.get("channel", []), value=[], color="primary", variant="outline"
        )
        self.reset = pn.widgets.Button(label="Clear filters", color="light")
        self.kpis = pn.pane.HTML("", sizing_mode="stretch_width", css_classes=["wb-kpis"], stylesheets=[CSS])
        self.status = pn.pane.HTML("", sizing_mode="stretch_width", css_classes=["wb-status"])
        self.dask_link = pn.pane.HTML(_dask_link_html(), css_classes=["wb-dask-link"])
        # linked_axes=False: each chart keeps its own ranges (revenue by month vs by region)
        self.trend, self.by_region, self.by_category, self.by_channel, self.top_products, self.top_stores = (
            pn.pane.HoloViews(
                None, sizing_mode="stretch_width", linked_axes=False, min_height=260, css_classes=[f"wb-chart-{name}"]
            )
            for name in ("trend", "region", "category", "channel", "products", "stores")
        )
        self._panes = {
            "trend": self.trend,
            "region": self.by_region,
            "category": self.by_category,
            "channel": self.by_channel,
            "products": self.top_products,
            "stores": self.top_stores,
        }
        self._live: dict[str, LiveChart] = {}
        self.error = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")
        self.preset.param.watch(self._on_preset, "value")
        for w in (self.start, self.end, self.region, self.category, self.channel):
            w.param.watch(self._on_filter, "value")
        self.reset.on_click(self._on_reset)
        self._chat: Any = None

    # --- state ---------------------------------------------------------------------------------
    def filters(self) -> Filters:
        """The current filter state (empty selections mean "all")."""
        return Filters(
            start=_date(self.start.value),
            end=_date(self.end.value),
            region=tuple(self.region.value or ()),
            category=tuple(self.category.value or ()),
            channel=tuple(self.channel.value or ()),
        )

    def preset_range(self, preset: str) -> tuple[dt.date | None, dt.date | None]:
        """Dates of a preset, relative to the latest date in the data (not the wall clock)."""
        first, last = self.options.first_date, self.options.last_date
        if last is None or preset == "All data":
            return first, last
        if preset == "Last 12 months":
            start = (pd.Timestamp(last) - pd.DateOffset(months=12) + pd.Timedelta(days=1)).date()
        elif preset == "Last 3 months":
            start = (pd.Timestamp(last) - pd.DateOffset(months=3) + pd.Timedelta(days=1)).date()
        else:
            start = dt.date(last.year, 1, 1)
        return max(start, first) if first else start, last

    # --- refresh -----------------------------------------------------------------------------------
    def refresh_sync(self) -> ViewData:
        """Load and show the views for the current filters (blocking; used at start-up and in tests)."""
        started = time.perf_counter()
        data = load_view(self.wb, self.filters(), names=self.names, user=self.user)
        self._show(data, started)
        return data

    async def refresh(self) -> None:
        """Load the views in a worker thread and show them unless a newer refresh started."""
        self._generation += 1
        generation = self._generation
        started = time.perf_counter()
        self.status.object = _status_html("Updating…", self.refreshes, busy=True)
        try:
            data = await asyncio.to_thread(load_view, self.wb, self.filters(), self.names, 10, self.user)
        except Exception as err:
            log.exception("dashboard refresh failed")
            if generation == self._generation:
                self._show_error(err)
            return
        if generation == self._generation:
            self._show(data, started)

    def _show(self, data: ViewData, started: float) -> None:
        """Update every view in one batch: one Bokeh model recompute, one websocket message."""
        import panel as pn

        doc = pn.state.curdoc
        frozen = doc.models.freeze() if doc is not None else contextlib.nullcontext()
        with pn.io.hold(), frozen:
            self._update(data)
        self.refreshes += 1
        self.last_refresh_ms = (time.perf_counter() - started) * 1000
        from workbench.ui.wording import refreshed

        answered = refreshed(data.routes.values(), len(data.routes), self.last_refresh_ms)
        text = f"{html.escape(data.filters.describe())} · {html.escape(answered)}"
        self.status.object = _status_html(text, self.refreshes)

    def _update(self, data: ViewData) -> None:
        self.data = data
        self.error.visible = False
        self.kpis.object = _kpi_html(data)
        self._chart("trend", data.trend, "line", "period", "Revenue by month", xlabel="month")
        self._chart("region", data.breakdown("region"), "barh", "region", "Revenue by region")
        self._chart("category", data.breakdown("category"), "barh", "category", "Revenue by category")
        self._chart("channel", data.breakdown("channel"), "barh", "channel", "Revenue by channel")
        self._chart("products", data.top_products, "barh", "name", "Top products by revenue")
        self._chart("stores", data.top_stores, "barh", "name", "Top stores by revenue")
        self.dask_link.object = _dask_link_html()

    def _show_error(self, err: BaseException) -> None:
        from workbench.ui.chat import error_text

        self.error.object = error_text(err)
        self.error.visible = True
        # a failed refresh is a finished one: the count moves, so a page (or a test) waiting for
        # the refresh sees the failure at once instead of waiting for a refresh that never comes
        self.refreshes += 1
        self.status.object = _status_html("Update failed", self.refreshes)

    def _chart(self, name: str, df: pd.DataFrame, kind: str, x: str, title: str, **opts: Any) -> None:
        """Create the chart on first use, then only send it new data (see LiveChart)."""
        if name in self._live:
            self._live[name].update(df)
            return
        live = LiveChart({"kind": kind, "x": x, "y": "revenue", "title": title}, df, height=260, **opts)
        self._live[name] = live
        self._panes[name].object = live.plot

    # --- events ------------------------------------------------------------------------------------
    def _schedule(self) -> None:
        """Start an async refresh on the session's event loop (never blocks the page)."""
        import panel as pn

        if pn.state.curdoc is None:  # no page to keep live (a script or test): refresh at once
            self.refresh_sync()
            return
        pn.state.execute(self.refresh)

    def _on_preset(self, event: Any) -> None:
        if event.new == "Custom" or self._quiet:
            return
        start, end = self.preset_range(event.new)
        self._quiet = True
        try:
            self.start.value, self.end.value = start, end
        finally:
            self._quiet = False
        self._schedule()

    def _on_filter(self, event: Any) -> None:
        if self._quiet:
            return
        if event.obj in (self.start, self.end) and self.preset.value != "Custom":
            self._quiet = True
            try:
                self.preset.value = "Custom"
            finally:
                self._quiet = False
        self._schedule()

    def _on_reset(self, _event: Any) -> None:
        self._quiet = True
        try:
            self.region.value, self.category.value, self.channel.value = [], [], []
            self.preset.value = "All data"
            self.start.value, self.end.value = self.preset_range("All data")
        finally:
            self._quiet = False
        self._schedule()

    # --- layout --------------------------------------------------------------------------------------
    def chat(self) -> Any:
        if self._chat is None:
            from workbench.ui.chat import chat_interface

            # a fixed height makes the conversation scroll inside the chat (to the newest
            # answer) instead of growing the page below the fold
            self._chat = chat_interface(self.wb, user=self.user, height=CHAT_HEIGHT, sizing_mode="stretch_width")
        return self._chat

    def sidebar(self) -> list[Any]:
        import panel as pn

        return [
            pn.pane.Markdown("### Filters"),
            self.preset,
            pn.Row(self.start, self.end, sizing_mode="stretch_width"),
            pn.pane.Markdown("Region", margin=(5, 10, 0, 10)),
            self.region,
            self.category,
            pn.pane.Markdown("Channel", margin=(5, 10, 0, 10)),
            self.channel,
            self.reset,
            pn.layout.Divider(),
            self.dask_link,
            pn.pane.Markdown(
                f"<small>lake: {html.escape(str(getattr(getattr(self.wb, 'lake', None), 'url', '')))}</small>"
            ),
        ]

    def overview(self) -> Any:
        import panel as pn

        return pn.Column(
            self.error,
            self.kpis,
            self.status,
            self.trend,
            pn.GridBox(
                self.by_region,
                self.by_channel,
                self.by_category,
                self.top_products,
                self.top_stores,
                ncols=2,
                sizing_mode="stretch_width",
            ),
            sizing_mode="stretch_width",
            css_classes=["wb-overview"],
        )

    def layout(self) -> Any:
        """The whole page as a Panel template (sidebar filters; Overview and Ask tabs)."""
        import panel as pn

        if self.data is None:
            self.refresh_sync()
        tabs = pn.Tabs(
            ("Overview", self.overview()),
            ("Ask the assistant", pn.Column(self.chat(), sizing_mode="stretch_width")),
            sizing_mode="stretch_width",
            dynamic=False,
        )
        template = pn.template.FastListTemplate(
            title=TITLE,
            design=offline_design(),
            font=SYSTEM_FONTS,
            # one root per area: Bokeh recomputes the document's models once per root
            sidebar=[pn.Column(*self.sidebar(), sizing_mode="stretch_width")],
            main=[tabs],
            sidebar_width=300,
            main_max_width="100%",
            theme_toggle=False,
            raw_css=[CSS],
            accent="#1f6feb",
        )
        return template


#: the page's fonts: the machine's own (the Fast design's default pulls Open Sans from Google)
SYSTEM_FONTS = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"


def offline_design() -> type:
    """Panel's Fast design without its web font: every asset of the page is served locally.

    Why: the page requested Open Sans from fonts.googleapis.com, which fails (slowly) on an
    offline or locked-down network and leaks a request outside the machine.
    """
    from panel.theme.fast import Fast

    resources = {k: v for k, v in Fast._resources.items() if k != "font"}
    # same class name: Panel finds the design's bundled files under the lower-cased name
    return type("Fast", (Fast,), {"_resources": {**resources, "font": {}}})


def build_dashboard(wb: QueryRunner | None = None, lake: str | None = None, user: str | None = None) -> Dashboard:
    """The dashboard over ``wb`` (or a shared workbench on ``lake``); call ``.layout()`` to show it."""
    import hvplot.pandas  # noqa: F401
    import panel as pn

    pn.extension(sizing_mode="stretch_width", notifications=False)
    return Dashboard(wb if wb is not None else workbench_for(lake), user=user)


def app(lake: str | None = None, signed_in: bool = False) -> Any:
    """A servable page (the Panel app of one browser session), as the signed-in viewer.

    With sign-in configured (``signed_in``) every query, the assistant and its retrieved
    summaries run under ``pn.state.user``'s policy; a session without a user gets nothing.
    """
    from workbench.auth.dashboard import end_at_expiry, viewer

    settings = workbench_for(lake).settings
    page = build_dashboard(lake=lake, user=viewer(settings, signed_in)).layout()
    if signed_in:
        end_at_expiry(page, settings)
    return page


def port_error(address: str, port: int, e: OSError) -> WorkbenchError:
    """A bind failure said for a person: which port, and how to pick another (no traceback)."""
    if e.errno == errno.EADDRINUSE:
        return ConfigError(
            f"port {port} on {address} is already in use (another dashboard or program listens there)",
            f"choose another port: `workbench serve --port {port + 1}` (or --port 0 for any free one; "
            f"`make demo PORT={port + 1}`), or stop the program using {port}",
        )
    return ConfigError(
        f"cannot listen on {address}:{port}: {e.strerror or e}",
        "check --address names an interface of this machine, or choose another port with --port",
    )


def serve(
    port: int = 5006,
    address: str = "127.0.0.1",
    show: bool = False,
    lake: str | None = None,
    allow_origins: list[str] | None = None,
    **kwargs: Any,
) -> None:
    """Serve the dashboard on ``address:port`` until interrupted, printing its URL first.

    Viewers sign in when ``settings.auth`` configures it (OIDC or the local users file);
    without it the server binds to loopback only and says so. Extra routes (``/healthz``,
    ``/metrics``, the API) come from :mod:`workbench.ui.routes`.
    """
    import hvplot.pandas  # noqa: F401  (import the plotting stack before the first session)
    import panel as pn

    from workbench.auth.binding import check_bind
    from workbench.auth.dashboard import dashboard_auth
    from workbench.config import get_settings
    from workbench.ui.routes import routes

    settings = get_settings(lake=lake) if lake else get_settings()
    auth = dashboard_auth(settings)
    print(check_bind("dashboard", address, bool(auth), settings.user), flush=True)
    wb = workbench_for(lake)
    # open the lake once, before the first browser connects (a wrong lake fails here, clearly)
    options_for(wb, wb.settings.user)
    origins = allow_origins or [f"{address}:{port}", f"localhost:{port}", f"127.0.0.1:{port}"]
    try:
        server = pn.serve(
            {"/": lambda: app(lake, signed_in=bool(auth))},
            port=port,
            address=address,
            show=False,
            threaded=False,
            start=False,
            title=TITLE,
            websocket_origin=origins,
            extra_patterns=routes(lake),
            **auth,
            **kwargs,
        )
    except OSError as e:
        raise port_error(address, port, e) from e
    server.start()
    url = f"http://{address}:{server.port}/"
    print(f"Dashboard: {url}", flush=True)
    if show:
        server.io_loop.add_callback(server.show, "/")
    try:
        server.io_loop.start()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def _date(value: Any) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return pd.Timestamp(value).date()


def _kpi_html(data: ViewData) -> str:
    cards = []
    for k in data.kpis:
        change = k.change_pct
        cls = "wb-flat" if not change else ("wb-up" if change > 0 else "wb-down")
        value = "" if k.value is None else repr(float(k.value))
        cards.append(
            f"<div class='wb-kpi' data-kpi='{k.name}' data-value='{value}'>"
            f"<div class='wb-kpi-label'>{html.escape(k.label)}</div>"
            f"<div class='wb-kpi-value'>{html.escape(k.text())}</div>"
            f"<div class='wb-kpi-change {cls}'>{html.escape(k.change_text())}</div></div>"
        )
    grid = "display:grid;grid-template-columns:repeat(5,minmax(0,1fr));gap:10px;width:100%"
    return f"<div class='wb-kpi-row' style='{grid}'>{''.join(cards)}</div>"


def _status_html(text: str, refreshes: int, busy: bool = False) -> str:
    return (
        f"<div class='wb-status-line' data-refresh='{refreshes}' data-busy='{str(busy).lower()}' "
        f"style='color:#666;font-size:0.85em'>{html.escape(text) if busy else text}</div>"
    )


def _dask_link_html() -> str:
    return dask_link_html()


def dask_link_html() -> str:
    """The Dask dashboard link, with where it also opens: JupyterLab's Dask sidebar.

    With ``make lab`` (cluster/dask/labextension.yaml) the link is a Jupyter server path
    (``/proxy/8787/status``) that dask-labextension's panels load through the Jupyter port.
    """
    try:
        from workbench.cluster import dashboard_link

        link = dashboard_link()
    except Exception as e:  # no link rather than no dashboard
        log.debug("no Dask dashboard link: %s", e)
        link = None
    if not link:
        return "<small>Dask dashboard: no cluster connected (queries run in-process)</small>"
    url = html.escape(link)
    return (
        f"<small><a href='{url}' target='_blank' rel='noopener'>Dask dashboard</a> "
        f"(<code>{url}</code>; in JupyterLab paste it into the Dask sidebar to dock its panels)</small>"
    )
