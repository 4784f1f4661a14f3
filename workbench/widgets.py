"""Notebook widgets (``import workbench.widgets as ww``): re-exported from :mod:`workbench.ui.widgets`.

``ww.assistant()`` chat, ``ww.explore("sales")`` chart explorer, ``ww.ask(question)`` rich
answers with ``.df`` for pandas work.
"""

from __future__ import annotations

from workbench.ui.widgets import ask, assistant, connection, explore, explore_frame, explore_sql, show

__all__ = ["ask", "assistant", "connection", "explore", "explore_frame", "explore_sql", "show"]
