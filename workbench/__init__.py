"""Retail Insights Workbench: ask questions of large retail data in SQL or plain language.

``workbench.connect(lake=...)`` is the Python entry point; the CLI (``workbench ...``), the
notebook widgets and the Panel dashboard are built on the same objects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from workbench.session import Workbench


def connect(lake: str | None = None, **settings: Any) -> Workbench:
    """Open the workbench on a lake (default: the configured one) and return a session object.

    Imported lazily so ``import workbench`` stays cheap for the CLI and notebooks.
    """
    from workbench.session import Workbench

    return Workbench.open(lake=lake, **settings)


__all__ = ["__version__", "connect"]
