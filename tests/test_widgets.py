"""Notebook widgets, answer rendering and chart specs (no browser, no notebook server)."""

from __future__ import annotations

import math
from typing import Any

import duckdb
import pandas as pd
import pytest

from workbench.assistant.answer import Answer
from workbench.errors import NotFoundError, QueryRefused
from workbench.ui.answers import NotebookAnswer, answer_html, answer_panel
from workbench.ui.charts import LiveChart, render
from workbench.ui.chat import error_text

FRAME = pd.DataFrame({"region": ["East", "West", "North"], "revenue": [3.0, 1.5, 2.0]})


@pytest.fixture(scope="module")
def wb(small_lake: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    import workbench

    session = workbench.connect(small_lake, home=str(tmp_path_factory.mktemp("wb_home")), pii_key="test-only-key")
    yield session
    session.close()


def _answer(**kw: Any) -> Answer:
    base: dict[str, Any] = {
        "question": "revenue by region",
        "answer": "East leads.",
        "sql": "SELECT region, SUM(revenue) AS revenue FROM sales GROUP BY region",
        "columns": ["region", "revenue"],
        "rows": [["East", 3.0], ["West", 1.5]],
        "chart": {"kind": "bar", "x": "region", "y": "revenue", "title": "revenue by region"},
        "route": "duckdb",
        "timings": {"plan": 5.0, "execute": 7.0, "total": 15.0},
    }
    base.update(kw)
    return Answer(**base)


@pytest.mark.parametrize(
    "spec, element",
    [
        ({"kind": "bar", "x": "region", "y": "revenue"}, "Bars"),
        ({"kind": "barh", "x": "region", "y": "revenue"}, "Bars"),
        ({"kind": "line", "x": "region", "y": "revenue"}, "Curve"),
        ({"kind": "table", "x": None, "y": "revenue"}, "Table"),
        ({"kind": "bar", "x": "no_such_column", "y": "revenue"}, "Table"),
        (None, "Table"),
    ],
)
def test_render_spec(spec: dict[str, Any] | None, element: str) -> None:
    assert type(render(spec, FRAME)).__name__ == element


def test_live_chart_updates_in_place_and_survives_empty_frames() -> None:
    live = LiveChart({"kind": "barh", "x": "region", "y": "revenue", "title": "t"}, FRAME)
    first = live.plot[()]
    live.update(FRAME.iloc[:1])
    assert len(live.plot[()].data) == 1
    live.update(FRAME.iloc[:0])
    assert type(live.plot[()]).__name__ == type(first).__name__ == "Bars"


def test_answer_html_has_narrative_table_chart_sql() -> None:
    page = answer_html(_answer())
    assert "East leads." in page and "<table" in page and "<svg" in page
    assert "<summary>SQL</summary>" in page and "SUM(revenue)" in page
    assert "answered by scanning the lake in 15 ms" in page


def test_the_interpretation_is_shown_with_every_answer() -> None:
    sentence = "Revenue by region, all data"
    answer = _answer(interpretation=sentence)
    assert f"Answered: {sentence}" in answer_html(answer)
    assert sentence in NotebookAnswer.of(answer)._repr_markdown_()
    panel = answer_panel(answer)
    shown = [p for p in panel.objects if "wb-interpretation" in getattr(p, "css_classes", [])]
    assert len(shown) == 1 and sentence in shown[0].object
    assert panel.objects[0] is shown[0], "the interpretation comes before the narrative"


def test_failed_answer_shows_message_not_traceback() -> None:
    failed = _answer(status="failed", answer="I could not answer this question: no such metric. Hint: try revenue")
    assert "Traceback" not in answer_html(failed)
    assert type(answer_panel(failed)).__name__ == "Alert"
    text = error_text(QueryRefused("only SELECT is allowed", "ask a question instead"))
    assert "only SELECT is allowed" in text and "Hint: ask a question instead" in text


def test_notebook_answer_is_an_answer_with_rich_display() -> None:
    nb = NotebookAnswer.of(_answer())
    assert isinstance(nb, Answer)
    assert nb.to_dict() == _answer().to_dict()
    bundle = nb._repr_mimebundle_()
    assert {"text/html", "text/markdown", "text/plain"} <= set(bundle)
    assert list(nb.df.columns) == ["region", "revenue"]


def test_explore_sql_is_quoted_and_checked() -> None:
    from workbench.ui.widgets import explore_sql

    sql = explore_sql("sales", "revenue", "month", {"region": ["O'Hare"]})
    assert "region IN ('O''Hare')" in sql and "GROUP BY year, month" in sql
    with pytest.raises(NotFoundError) as err:
        explore_sql("sales", "revenu", "region")
    assert "revenue" in str(err.value)
    with pytest.raises(NotFoundError):
        explore_sql("customers", "revenue", "region")


def test_widgets_ask_returns_rich_answer_matching_duckdb(wb: Any) -> None:
    import workbench.widgets as ww

    answer = ww.ask("revenue by region in 2024", wb=wb)
    assert isinstance(answer, NotebookAnswer) and answer.ok, answer.answer
    files = list(wb.lake.files("sales"))
    want = duckdb.sql(
        f"SELECT region, SUM(revenue) AS revenue FROM read_parquet({files!r}, hive_partitioning = true) "
        "WHERE year = 2024 GROUP BY region"
    ).df()
    got = answer.df.set_index("region")["revenue"]
    assert len(got) == len(want)
    for region, revenue in zip(want.region, want.revenue, strict=True):
        assert math.isclose(got[region], revenue, rel_tol=1e-9)
    assert "<table" in answer._repr_html_()


def test_explore_and_assistant_widgets_build(wb: Any) -> None:
    import workbench.widgets as ww
    from workbench.ui.widgets import explore_frame

    view = ww.explore("sales", wb=wb)
    assert type(view).__name__ == "Column"
    df = explore_frame(wb, "sales", "transactions", "channel", {"region": ["East"]})
    files = list(wb.lake.files("sales"))
    n = duckdb.sql(
        f"SELECT COUNT(*) FROM read_parquet({files!r}, hive_partitioning = true) WHERE region = 'East'"
    ).fetchall()
    assert int(df.transactions.sum()) == n[0][0]
    chat = ww.assistant(wb=wb)
    assert type(chat).__name__ == "ChatInterface"
    assert len(chat.objects) == 1  # the welcome message


def test_static_chart_keeps_axes_ticks_and_labels() -> None:
    """What an executed notebook saves (static HTML) carries its own axes, not just bars."""
    from workbench.ui.answers import _svg_chart

    df = pd.DataFrame({"month": range(1, 13), "revenue": [1000.0 * m for m in range(1, 13)]})
    svg = _svg_chart({"kind": "bar", "x": "month", "y": "revenue", "title": "Revenue by month"}, df)
    assert svg is not None
    assert ">month</text>" in svg and ">revenue</text>" in svg  # axis titles
    assert ">12k</text>" in svg and ">0</text>" in svg  # value ticks
    assert ">1</text>" in svg and ">11</text>" in svg  # category labels
    assert svg.count("<rect") == 12 and svg.count("<line") >= 7  # bars, axes and gridlines


def test_jupyterlab_gets_the_dask_extension_and_a_proxied_dashboard_link() -> None:
    """`make lab` points DASK_CONFIG at cluster/dask: dashboard links go through the Jupyter port."""
    import importlib.util
    import re
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    assert importlib.util.find_spec("dask_labextension") is not None
    lab = re.search(r"^lab:.*\n\t(.*)$", (repo / "Makefile").read_text(), re.M)
    assert lab and "DASK_CONFIG=$(CURDIR)/cluster/dask" in lab.group(1)
    probe = "from distributed.utils import format_dashboard_link as f; print(f('127.0.0.1', 8787))"
    env = {"DASK_CONFIG": str(repo / "cluster" / "dask"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "/proxy/8787/status"


def test_chat_answers_a_question_and_renames_its_buttons(wb: Any) -> None:
    """A sent question is answered in the chat (Panel renames Send/Undo after each message).

    Panel 1.5 with param 2.4 raised "Constant parameter 'name' cannot be modified" there and the
    question was never answered; the workbench carried a private-method override until Panel 1.9.
    """
    import time
    from concurrent.futures import ThreadPoolExecutor

    from workbench.ui.chat import ASSISTANT_NAME, chat_interface

    def converse() -> tuple[list[Any], list[Any]]:
        chat = chat_interface(wb)
        chat.widgets[0].value = "revenue by region in 2024"  # what pressing Enter in the input does
        deadline = time.monotonic() + 60
        while not (replies := [m for m in chat.objects if m.user == ASSISTANT_NAME][1:]):
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        return replies, [m.object for m in chat.objects if m.user != ASSISTANT_NAME]

    # on a thread of its own: a sync Playwright session earlier in the run (test_browser) leaves
    # the main thread marked as running an event loop that nothing runs any more, and Panel
    # schedules the chat's async callback on the running loop
    with ThreadPoolExecutor(1) as pool:
        replies, asked = pool.submit(converse).result()
    assert replies, "the assistant did not answer"
    assert "wb-answer-error" not in str(replies[-1].object.css_classes)
    assert asked == ["revenue by region in 2024"]
