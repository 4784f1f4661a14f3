"""How an assistant answer is shown: a Panel layout (chat, widgets) and static HTML (notebooks).

Both show the same parts in the same order (narrative, table, chart, SQL, sources,
route/latency) so an analyst reads an answer the same way everywhere. A refused or failed
answer shows only its message and hint: users never see a traceback.
"""

from __future__ import annotations

import html
from dataclasses import fields
from typing import Any

import pandas as pd

from workbench.assistant.answer import Answer
from workbench.ui.charts import render

#: rows of an answer table shown inline (the full result stays on ``Answer.df``)
MAX_TABLE_ROWS = 50


def route_text(answer: Answer) -> str:
    """ "route duckdb · 182 ms (plan 41 ms, execute 143 ms)" for the footer of an answer."""
    total = answer.timings.get("total")
    parts = [f"route {answer.route or '-'}"]
    if answer.cached:
        parts.append("cached")
    if total is not None:
        steps = ", ".join(f"{k} {v:.0f} ms" for k, v in answer.timings.items() if k != "total")
        parts.append(f"{total:.0f} ms" + (f" ({steps})" if steps else ""))
    if answer.planner:
        parts.append(f"planner {answer.planner}")
    return " · ".join(parts)


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
            )
        )
        if answer.chart and answer.chart.get("kind") != "table":
            try:
                parts.append(
                    pn.pane.HoloViews(render(answer.chart, df, height=chart_height), sizing_mode="stretch_width")
                )
            except Exception:  # a chart is optional: the table already holds the answer
                pass
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
    """A tiny dependency-free SVG bar/line sketch for static HTML (the Panel view is richer)."""
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
    width, height, pad = 560, 180, 24
    top = max(max(values), 0.0) or 1.0
    step = (width - 2 * pad) / len(values)
    shapes = []
    if spec["kind"] == "bar":
        for i, v in enumerate(values):
            h = max(v, 0.0) / top * (height - 2 * pad)
            shapes.append(
                f"<rect x='{pad + i * step + 2:.1f}' y='{height - pad - h:.1f}' width='{max(step - 4, 1):.1f}' "
                f"height='{h:.1f}' fill='#30a2da'><title>{html.escape(labels[i])}: {v:,.2f}</title></rect>"
            )
    else:
        pts = " ".join(
            f"{pad + (i + 0.5) * step:.1f},{height - pad - max(v, 0.0) / top * (height - 2 * pad):.1f}"
            for i, v in enumerate(values)
        )
        shapes.append(f"<polyline points='{pts}' fill='none' stroke='#30a2da' stroke-width='2'/>")
    title = html.escape(str(spec.get("title") or f"{y} by {x}"))
    return (
        f"<svg width='{width}' height='{height}' role='img' aria-label='{title}'>"
        f"<text x='{pad}' y='14' font-size='12'>{title}</text>{''.join(shapes)}</svg>"
    )
