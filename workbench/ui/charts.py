"""Chart specs to hvplot objects: one renderer for the dashboard, the widgets and answers.

A spec is the small dict the assistant puts on an :class:`~workbench.assistant.Answer`
(``{"kind": "line"|"bar"|"table", "x", "y", "by"?, "title"}``) or that a dashboard view
declares. Keeping the rendering in one place means an answer looks the same in a notebook
cell, in the dashboard chat and in the dashboard's own charts.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

#: default chart height in pixels (charts stretch to the width of their container)
HEIGHT = 280

KINDS = ("line", "bar", "barh", "table")


def render(spec: dict[str, Any] | None, df: pd.DataFrame, height: int = HEIGHT, **opts: Any) -> Any:
    """An hvplot object for ``spec`` over ``df``; a table when the spec cannot be drawn.

    Unknown or missing columns fall back to a table rather than raising: a chart is a view of
    an answer, never a reason for the answer to fail.
    """
    import hvplot.pandas  # noqa: F401  (registers the .hvplot accessor)

    spec = dict(spec or {})
    kind = spec.get("kind") or "table"
    title = str(spec.get("title") or "")
    x = spec.get("x")
    y = spec.get("y")
    if isinstance(y, list):
        y = y[0] if len(y) == 1 else y
    by = spec.get("by")
    common: dict[str, Any] = {"title": title, "height": height, "responsive": True}
    if kind in ("line", "bar") and isinstance(y, str):
        common["yformatter"] = _numbers()
    elif kind == "barh":
        common["xformatter"] = _numbers()
    common.update(opts)
    if df.empty or kind not in KINDS or kind == "table" or not _has(df, x, y, by):
        return df.hvplot.table(title=title, height=height, responsive=True)
    frame = df
    if kind == "line":
        frame = df.sort_values([c for c in (by, x) if c]) if x in df.columns else df
        return _quiet(frame.hvplot.line(x=x, y=y, by=by, **common))
    if kind == "barh":
        key = y if isinstance(y, str) else (list(y or []) or [x])[0]
        frame = df.sort_values(key, ascending=True)
        return _quiet(frame.hvplot.barh(x=x, y=y, by=by, **common))
    return _quiet(frame.hvplot.bar(x=x, y=y, by=by, rot=30 if len(frame) > 6 else 0, **common))


def _numbers() -> Any:
    """Axis ticks as 1.2k / 3.4m rather than 1.2e+6 (Bokeh's numeral formatter)."""
    from bokeh.models import NumeralTickFormatter

    return NumeralTickFormatter(format="0.[0]a")


def _quiet(plot: Any) -> Any:
    """Zoom from the toolbar only: scrolling the page over a chart scrolls the page."""
    return plot.opts(toolbar="right", hooks=[no_wheel_zoom])


def no_wheel_zoom(plot: Any, element: Any) -> None:
    """HoloViews hook: no active scroll tool, toolbar shown on hover.

    Why: with wheel zoom active by default, scrolling down the dashboard zoomed every chart
    it passed under the pointer (into negative axes). Wheel zoom stays in the toolbar for
    whoever wants it.
    """
    toolbar = plot.state.toolbar
    toolbar.active_scroll = None
    toolbar.autohide = True


def _has(df: pd.DataFrame, *cols: Any) -> bool:
    for col in cols:
        if col is None:
            continue
        names = col if isinstance(col, list) else [col]
        if any(n not in df.columns for n in names):
            return False
    return True


class LiveChart:
    """A chart whose data changes in place (a HoloViews ``DynamicMap`` fed by a ``Pipe``).

    Why: replacing a Panel pane's plot rebuilds the whole Bokeh figure (and makes Bokeh
    re-walk every model of the page); sending new data through a pipe only patches the
    figure's data source, which is what keeps a filter change fast in the dashboard.
    The chart keeps its kind: an empty frame shows an empty chart, never a table.
    """

    def __init__(self, spec: dict[str, Any], df: pd.DataFrame, height: int = HEIGHT, **opts: Any) -> None:
        import holoviews as hv
        import holoviews.plotting.bokeh  # (the options below need the Bokeh backend loaded)

        self.spec = dict(spec)
        self.height = height
        self.opts = opts
        self.pipe = hv.streams.Pipe(data=df)
        self.plot = hv.DynamicMap(self._draw, streams=[self.pipe])

    def _draw(self, data: pd.DataFrame) -> Any:
        """A HoloViews element straight from the frame (3x cheaper than going through hvplot)."""
        import holoviews as hv

        x, y, kind = self.spec["x"], self.spec["y"], self.spec.get("kind")
        if data.empty:
            filler: Any = pd.Timestamp("2000-01-01") if kind == "line" else "(no data)"
            data = pd.DataFrame({x: [filler], y: [0.0]})
        opts: dict[str, Any] = {
            "title": str(self.spec.get("title") or ""),
            "height": self.height,
            "responsive": True,
            "toolbar": "right",
            "tools": ["hover"],
            "hooks": [no_wheel_zoom],
            "framewise": True,
            **self.opts,
        }
        if kind == "line":
            return hv.Curve(data.sort_values(x), kdims=[x], vdims=[y]).opts(yformatter=_numbers(), **opts)
        if kind == "barh":
            bars = hv.Bars(data.sort_values(y), kdims=[x], vdims=[y])
            return bars.opts(invert_axes=True, xformatter=_numbers(), **opts)
        return hv.Bars(data, kdims=[x], vdims=[y]).opts(yformatter=_numbers(), **opts)

    def update(self, df: pd.DataFrame) -> None:
        """Show ``df`` (same columns as the first frame)."""
        self.pipe.send(df)
