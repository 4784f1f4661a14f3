"""Notebook widgets (``import workbench.widgets as ww``): re-exported from :mod:`workbench.ui.widgets`.

``ww.assistant()`` chat, ``ww.explore("sales")`` chart explorer, ``ww.ask(question)`` rich
answers with ``.df`` for pandas work, ``ww.dask_dashboard()`` the cluster's dashboard link.
"""

from __future__ import annotations

from workbench.ui.widgets import (
    ask,
    assistant,
    connection,
    dask_dashboard,
    explore,
    explore_frame,
    explore_sql,
    show,
)

__all__ = ["ask", "assistant", "connection", "dask_dashboard", "explore", "explore_frame", "explore_sql", "show"]
