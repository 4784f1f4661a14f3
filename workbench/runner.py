"""``QueryRunner``: what the assistant, the dashboard, the widgets and the HTTP API need of a session.

They depend on this small protocol, not on :class:`workbench.session.Workbench`, so each can be
given any object that runs SQL through the query pipeline (a pooled session, a test double
over a real lake). Kept free of heavy imports: it is imported by every surface.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from workbench.config import Settings
    from workbench.lake.storage import Lake
    from workbench.sql.result import QueryResult
    from workbench.sql.scan import Snapshot


@runtime_checkable
class QueryRunner(Protocol):
    """Runs read-only SQL over one lake for a user (guard, access policy, cache, engines)."""

    settings: Settings
    lake: Lake
    snapshot: Snapshot

    def sql(
        self,
        sql: str,
        engine: str = "auto",
        explain: bool = False,
        user: str | None = None,
        *,
        use_cache: bool = True,
        use_rollups: bool = True,
        question: str | None = None,
    ) -> QueryResult: ...

    def tables(self) -> set[str]:
        """Tables SQL may read."""
        ...
