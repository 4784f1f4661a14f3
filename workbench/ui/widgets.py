"""Notebook widgets: the assistant as a chat, an explorer over a table, rich answers.

In JupyterLab::

    import workbench.widgets as ww
    ww.assistant(lake="lake")          # chat widget on the assistant
    ww.explore("sales", lake="lake")   # filterable chart view
    a = ww.ask("revenue by region in 2024", lake="lake")
    a                                  # renders narrative + table + chart + SQL
    a.df.sort_values("revenue")        # the result as a pandas DataFrame

The widgets are Panel objects (``pn.extension()`` is called for you); answers are plain
:class:`~workbench.assistant.Answer` objects that also know how to display themselves.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pandas as pd

from workbench.errors import NotFoundError, unknown_name
from workbench.ui.answers import NotebookAnswer, answer_panel
from workbench.ui.charts import render

if TYPE_CHECKING:
    from workbench.runner import QueryRunner

#: what ``explore`` can chart per table: (metrics, group-by columns, filter columns)
EXPLORABLE: dict[str, dict[str, list[str]]] = {
    "sales": {
        "metrics": ["revenue", "profit", "transactions", "quantity"],
        "by": ["month", "year", "region", "category", "channel", "payment_method"],
        "filters": ["region", "category", "channel"],
    },
}

_lock = threading.Lock()
_connections: dict[str, Any] = {}


def connection(lake: str | None = None, wb: QueryRunner | None = None) -> Any:
    """The workbench session the widgets use (one per lake per kernel)."""
    if wb is not None:
        return wb
    import workbench

    key = lake or ""
    with _lock:
        if key not in _connections:
            _connections[key] = workbench.connect(lake)
        return _connections[key]


def _extension() -> None:
    import hvplot.pandas  # noqa: F401
    import panel as pn

    pn.extension(sizing_mode="stretch_width")


def ask(
    question: str, lake: str | None = None, wb: QueryRunner | None = None, session: str | None = None
) -> NotebookAnswer:
    """Ask the assistant; the Answer displays as table + chart + SQL and keeps ``.df`` for pandas."""
    from workbench.assistant import ask as _ask

    return NotebookAnswer.of(_ask(connection(lake, wb), question, session=session))


def show(answer: Any) -> Any:
    """The interactive Panel view of an answer (table, hvplot chart, collapsible SQL)."""
    _extension()
    return answer_panel(answer)


def dask_dashboard() -> Any:
    """The Dask dashboard's link: a browser tab, or the Dask sidebar of JupyterLab (dask-labextension).

    Connects to the configured cluster first (a local one by default), so the link is live.
    """
    import panel as pn

    from workbench.cluster import get_client
    from workbench.ui.dashboard import dask_link_html

    _extension()
    get_client()
    return pn.pane.HTML(dask_link_html(), css_classes=["wb-dask-link"])


def assistant(
    lake: str | None = None, wb: QueryRunner | None = None, user: str | None = None, height: int = 600
) -> Any:
    """A chat widget on the assistant (follow-ups stay in one conversation)."""
    from workbench.ui.chat import chat_interface

    _extension()
    return chat_interface(connection(lake, wb), user=user, height=height, sizing_mode="stretch_width")


def explore_sql(table: str, metric: str, by: str, filters: dict[str, list[str]] | None = None, limit: int = 50) -> str:
    """The rollup-friendly SQL behind one explorer view (plain GROUP BY, quoted literals)."""
    from sqlglot import exp

    spec = _spec(table)
    if metric not in spec["metrics"]:
        raise unknown_name("metric", metric, spec["metrics"])
    if by not in spec["by"]:
        raise unknown_name("column", by, spec["by"])
    groups = ["year", "month"] if by == "month" else [by]
    agg = exp.Count(this=exp.Star()) if metric == "transactions" else exp.Sum(this=exp.column(metric))
    select = exp.select(*[exp.column(g) for g in groups], exp.alias_(agg, metric)).from_(table)
    preds = []
    for col, values in (filters or {}).items():
        if col not in spec["filters"]:
            raise unknown_name("filter", col, spec["filters"])
        if values:
            preds.append(exp.In(this=exp.column(col), expressions=[exp.Literal.string(str(v)) for v in values]))
    if preds:
        select = select.where(exp.and_(*preds))
    select = select.group_by(*[exp.column(g) for g in groups])
    if by in ("month", "year"):
        select = select.order_by(*[exp.column(g) for g in groups])
    else:
        select = select.order_by(exp.Ordered(this=exp.column(metric), desc=True)).limit(limit)
    return select.sql(dialect="duckdb")


def explore_frame(
    wb: QueryRunner, table: str, metric: str, by: str, filters: dict[str, list[str]] | None = None
) -> pd.DataFrame:
    """Run :func:`explore_sql` through the workbench; months get a ``period`` date column."""
    df = wb.sql(explore_sql(table, metric, by, filters)).df
    if by == "month" and not df.empty:
        df = df.assign(period=pd.to_datetime({"year": df["year"], "month": df["month"], "day": 1}))
    return df


def explore(table: str = "sales", lake: str | None = None, wb: QueryRunner | None = None) -> Any:
    """A filterable chart view of ``table``: pick a metric, a breakdown and filters."""
    import panel as pn

    from workbench.ui.data import filter_options

    _extension()
    spec = _spec(table)
    conn = connection(lake, wb)
    options = filter_options(conn)
    metric = pn.widgets.Select(label="Metric", options=spec["metrics"], value=spec["metrics"][0])
    by = pn.widgets.Select(label="By", options=spec["by"], value=spec["by"][0])
    pickers = {
        col: pn.widgets.MultiChoice(label=col.capitalize(), options=options.values.get(col, []), value=[])
        for col in spec["filters"]
    }
    sql_view = pn.pane.Markdown("", sizing_mode="stretch_width")

    def view(metric_v: str, by_v: str, *chosen: list[str]) -> Any:
        filters = dict(zip(pickers, chosen, strict=True))
        try:
            df = explore_frame(conn, table, metric_v, by_v, filters)
        except Exception as err:  # shown in the cell, never a traceback
            from workbench.ui.chat import error_text

            return pn.pane.Alert(error_text(err), alert_type="danger")
        sql_view.object = f"```sql\n{explore_sql(table, metric_v, by_v, filters)}\n```"
        x = "period" if by_v == "month" else by_v
        kind = "line" if by_v in ("month", "year") else "barh"
        return pn.pane.HoloViews(
            render({"kind": kind, "x": x, "y": metric_v, "title": f"{metric_v} by {by_v}"}, df, height=320),
            sizing_mode="stretch_width",
            linked_axes=False,
        )

    chart = pn.bind(view, metric, by, *pickers.values())
    controls = pn.Row(metric, by, *pickers.values(), sizing_mode="stretch_width")
    return pn.Column(
        controls, pn.panel(chart), pn.Card(sql_view, title="SQL", collapsed=True), sizing_mode="stretch_width"
    )


def _spec(table: str) -> dict[str, list[str]]:
    if table not in EXPLORABLE:
        raise NotFoundError(
            f"no explorer for table {table!r}",
            f"explore one of: {', '.join(EXPLORABLE)} (or query it with workbench.connect().sql)",
        )
    return EXPLORABLE[table]


__all__ = ["ask", "assistant", "connection", "explore", "explore_frame", "explore_sql", "show"]
