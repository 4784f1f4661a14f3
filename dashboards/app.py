"""The analyst dashboard as a Panel app: ``panel serve dashboards/app.py``.

The page is built by :func:`workbench.ui.dashboard.build_dashboard`, the same factory
``workbench serve`` and the tests use; the lake comes from the configuration
(``WORKBENCH_LAKE`` / ``workbench.yaml``), e.g.
``WORKBENCH_LAKE=lake panel serve dashboards/app.py --address 127.0.0.1``.
"""

from __future__ import annotations

from workbench.ui.dashboard import app

app().servable(title="Retail Insights Workbench")
