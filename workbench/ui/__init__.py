"""Where analysts work: the Panel dashboard, notebook widgets, and the chart specs they share.

* :mod:`workbench.ui.dashboard`: ``build_dashboard()`` / ``serve()`` (``workbench serve``);
* :mod:`workbench.ui.widgets`: ``assistant()``, ``explore()``, ``ask()`` for JupyterLab;
* :mod:`workbench.ui.charts`: ``render(spec, df)`` turns a chart spec into an hvplot object;
* :mod:`workbench.ui.queries` / :mod:`workbench.ui.data`: the SQL and numbers behind the views.

Panel and hvplot are imported inside functions so ``import workbench`` stays cheap.
"""
