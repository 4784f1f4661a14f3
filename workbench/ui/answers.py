"""How an assistant answer is shown: a Panel layout (chat, widgets) and static HTML (notebooks).

Both show the same parts in the same order (narrative, table, chart, SQL, sources,
route/latency) so an analyst reads an answer the same way everywhere. A refused or failed
answer shows only its message and hint: users never see a traceback.
"""

from __future__ import annotations

import html
import logging
from dataclasses import fields
from typing import Any

import pandas as pd

from workbench.assistant.answer import Answer
from workbench.ui.charts import render

log = logging.getLogger(__name__)

#: rows of an answer table shown inline (the full result stays on ``Answer.df``)
MAX_TABLE_ROWS = 50


def route_text(answer: Answer) -> str:
    """ "answered from a pre-computed monthly summary by region in 0.2 s" for the footer of an answer.

    Said for a person; the route name and step timings stay in ``Answer.to_dict()`` and the logs.
    """
    from workbench.ui.wording import answered

    text = answered(answer.route, answer.timings.get("total"), answer.cached)
    if answer.planner == "offline":
        text += " (question read by the offline parser)"
    elif answer.planner:
        text += f" (question read by the {answer.planner} planner)"
    return text


def column_alignment_css(df: pd.DataFrame) -> str:
    """Numbers right-aligned (digits line up), everything else left-aligned, header included.

    Panel's table style right-aligns every cell, which makes category names hard to read.
    """
    rules = ["table td, table th {text-align: left !important}"]
    for i, column in enumerate(df.columns, start=1):
        if pd.api.types.is_numeric_dtype(df[column]) and not pd.api.types.is_bool_dtype(df[column]):
            rules.append(f"table td:nth-child({i}), table th:nth-child({i}) {{text-align: right !important}}")
    return "\n".join(rules)


def sources_text(answer: Answer) -> str:
    return "\n".join(f"[{i}] {s.id}: {s.text}" for i, s in enumerate(answer.sources, 1))


def answer_panel(answer: Answer, chart_height: int = 260) -> Any:
    """A Panel layout of one answer (used as a chat message and by the notebook widgets)."""
    import panel as pn

    if not answer.ok:
        return pn.pane.Alert(
            answer.answer,
            alert_type="warning" if answer.status == "refused" else "danger",
            sizing_mode="stretch_width",
            css_classes=["wb-answer-error"],
        )
    parts: list[Any] = []
    if answer.interpretation:
        parts.append(
            pn.pane.Markdown(
                f"*Answered: {html.escape(answer.interpretation)}*",
                sizing_mode="stretch_width",
                css_classes=["wb-interpretation"],
            )
        )
    parts.append(pn.pane.Markdown(answer.answer, sizing_mode="stretch_width", css_classes=["wb-narrative"]))
    df = answer.df
    if not df.empty:
        parts.append(
            pn.pane.DataFrame(
                df.head(MAX_TABLE_ROWS),
                index=False,
                sizing_mode="stretch_width",
                max_height=240,
                float_format=_float,
                css_classes=["wb-answer-table"],
                stylesheets=[column_alignment_css(df)],
            )
        )
        if answer.chart and answer.chart.get("kind") != "table":
            try:
                parts.append(
                    pn.pane.HoloViews(render(answer.chart, df, height=chart_height), sizing_mode="stretch_width")
                )
            except Exception as e:  # a chart is optional: the table already holds the answer
                log.warning("chart not drawn: %s", e)
    if answer.sql:
        parts.append(
            pn.Card(
                pn.pane.Markdown(f"```sql\n{answer.sql}\n```", sizing_mode="stretch_width", css_classes=["wb-sql"]),
                title="SQL",
                collapsed=True,
                sizing_mode="stretch_width",
                css_classes=["wb-sql-card"],
            )
        )
    if answer.sources:
        parts.append(pn.pane.Markdown("**Sources**\n\n" + _md_list(answer), sizing_mode="stretch_width"))
    parts.append(pn.pane.Markdown(f"<small>{html.escape(route_text(answer))}</small>", css_classes=["wb-route"]))
    return pn.Column(*parts, sizing_mode="stretch_width", css_classes=["wb-answer"])


def answer_html(answer: Answer) -> str:
    """Static HTML of an answer (no JavaScript needed): narrative, table, chart, SQL, sources."""
    esc = html.escape
    out = [f"<div class='wb-answer'><p><b>{esc(answer.question)}</b></p>"]
    if answer.interpretation:
        out.append(f"<p class='wb-interpretation'><i>Answered: {esc(answer.interpretation)}</i></p>")
    out.append(f"<p>{esc(answer.answer)}</p>")
    if answer.ok:
        df = answer.df
        if not df.empty:
            out.append(df.head(MAX_TABLE_ROWS).to_html(index=False, float_format=_float, border=0))
            svg = _svg_chart(answer.chart, df)
            if svg:
                out.append(svg)
        if answer.sql:
            out.append(f"<details><summary>SQL</summary><pre><code>{esc(answer.sql)}</code></pre></details>")
        if answer.sources:
            items = "".join(f"<li><code>{esc(s.id)}</code>: {esc(s.text)}</li>" for s in answer.sources)
            out.append(f"<details><summary>Sources</summary><ol>{items}</ol></details>")
        out.append(f"<p><small>{esc(route_text(answer))}</small></p>")
    out.append("</div>")
    return "".join(out)


class NotebookAnswer(Answer):
    """An :class:`Answer` that renders as table + chart + SQL in a notebook cell.

    It *is* an Answer (same fields, ``.df`` for pandas work); only its display differs.
    """

    @classmethod
    def of(cls, answer: Answer) -> NotebookAnswer:
        return cls(**{f.name: getattr(answer, f.name) for f in fields(answer)})

    def view(self) -> Any:
        """The interactive Panel layout (needs ``pn.extension()`` in the notebook)."""
        return answer_panel(self)

    def _repr_html_(self) -> str:
        return answer_html(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {"text/html": answer_html(self), "text/markdown": self._repr_markdown_(), "text/plain": self.answer}


def _float(value: float) -> str:
    return f"{value:,.2f}"


def _md_list(answer: Answer) -> str:
    return "\n".join(f"{i}. `{s.id}`: {s.text}" for i, s in enumerate(answer.sources, 1))


def _svg_chart(spec: dict[str, Any] | None, df: pd.DataFrame) -> str | None:
    """A dependency-free SVG bar/line chart for static HTML: axes, ticks, labels and a title.

    Static HTML is what an executed notebook saves (no JavaScript runs when it is reopened or
    rendered on a code host), so the chart must carry its own axes and labels.
    """
    if not spec or spec.get("kind") not in ("bar", "line"):
        return None
    x, y = spec.get("x"), spec.get("y")
    if isinstance(y, list):
        y = y[0] if y else None
    if x not in df.columns or y not in df.columns or spec.get("by"):
        return None
    values = pd.to_numeric(df[y], errors="coerce").fillna(0.0).tolist()[:40]
    labels = [str(v) for v in df[x].tolist()[:40]]
    if not values:
        return None
    frame = _Frame(values)
    marks = _bars(frame, values, labels) if spec["kind"] == "bar" else _line(frame, values)
    title = html.escape(str(spec.get("title") or f"{y} by {x}"))
    return (
        f"<svg width='{_W}' height='{_H}' role='img' aria-label='{title}' font-family='sans-serif' font-size='11'>"
        f"<text x='{_LEFT}' y='14' font-size='13' font-weight='600'>{title}</text>"
        f"{_axes(frame, labels, str(x), str(y))}{''.join(marks)}</svg>"
    )


#: static chart geometry (pixels): size and the margins that hold the axes' ticks and labels
_W, _H, _LEFT, _RIGHT, _TOP, _BOTTOM = 600, 260, 64, 16, 28, 58


class _Frame:
    """Value -> pixel mapping of a static chart; zero is always on the axis (bars start there)."""

    def __init__(self, values: list[float]) -> None:
        self.low = min(0.0, min(values))
        self.high = max(0.0, max(values)) or 1.0
        self.n = len(values)
        self.step = (_W - _LEFT - _RIGHT) / self.n

    def y(self, v: float) -> float:
        return _TOP + (self.high - v) / (self.high - self.low) * (_H - _TOP - _BOTTOM)

    def x(self, i: int) -> float:
        return _LEFT + (i + 0.5) * self.step


def _axes(frame: _Frame, labels: list[str], x_name: str, y_name: str) -> str:
    """Both axes, five value ticks with gridlines, category labels (thinned to fit), axis titles."""
    esc = html.escape
    parts = [f"<line x1='{_LEFT}' y1='{_TOP}' x2='{_LEFT}' y2='{_H - _BOTTOM}' stroke='#555'/>"]
    for k in range(5):
        v = frame.low + (frame.high - frame.low) * k / 4
        py = frame.y(v)
        parts.append(f"<line x1='{_LEFT}' y1='{py:.1f}' x2='{_W - _RIGHT}' y2='{py:.1f}' stroke='#e5e5e5'/>")
        parts.append(f"<text x='{_LEFT - 6}' y='{py + 4:.1f}' text-anchor='end'>{_short(v)}</text>")
    zero = frame.y(0.0)
    parts.append(f"<line x1='{_LEFT}' y1='{zero:.1f}' x2='{_W - _RIGHT}' y2='{zero:.1f}' stroke='#555'/>")
    every = max(1, -(-frame.n * 60 // (_W - _LEFT - _RIGHT)))  # at most one label per 60 px
    for i in range(0, frame.n, every):
        text = esc(labels[i][:14])
        parts.append(f"<text x='{frame.x(i):.1f}' y='{_H - _BOTTOM + 16}' text-anchor='middle'>{text}</text>")
    parts.append(f"<text x='{(_LEFT + _W - _RIGHT) / 2:.0f}' y='{_H - 12}' text-anchor='middle'>{esc(x_name)}</text>")
    mid = (_TOP + _H - _BOTTOM) / 2
    parts.append(
        f"<text x='14' y='{mid:.0f}' text-anchor='middle' transform='rotate(-90 14 {mid:.0f})'>{esc(y_name)}</text>"
    )
    return "".join(parts)


def _bars(frame: _Frame, values: list[float], labels: list[str]) -> list[str]:
    width = max(frame.step - 4, 1)
    out = []
    for i, v in enumerate(values):
        top, bottom = sorted((frame.y(v), frame.y(0.0)))
        out.append(
            f"<rect x='{frame.x(i) - width / 2:.1f}' y='{top:.1f}' width='{width:.1f}' height='{bottom - top:.1f}' "
            f"fill='#30a2da'><title>{html.escape(labels[i])}: {v:,.2f}</title></rect>"
        )
    return out


def _line(frame: _Frame, values: list[float]) -> list[str]:
    pts = " ".join(f"{frame.x(i):.1f},{frame.y(v):.1f}" for i, v in enumerate(values))
    return [f"<polyline points='{pts}' fill='none' stroke='#30a2da' stroke-width='2'/>"]


def _short(v: float) -> str:
    """Tick text: 1.2k, 3.4M, 0.25 (the same style as the interactive charts' axes)."""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= size:
            return f"{v / size:.1f}".rstrip("0").rstrip(".") + suffix
    return f"{v:.2f}".rstrip("0").rstrip(".") if v else "0"
