"""The assistant: questions in plain language in, grounded answers out.

``ask(wb, question, session=None, user=None) -> Answer`` is the Python entry point (the
workbench session exposes it as ``workbench.connect(lake).ask(...)``); the CLI's
``workbench ask`` and the dashboards call the same function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.assistant.answer import Answer

if TYPE_CHECKING:
    from workbench.assistant.retrieval.index import Source
    from workbench.runner import QueryRunner


def ask(wb: QueryRunner, question: str, session: str | None = None, user: str | None = None) -> Answer:
    """Answer ``question`` over ``wb``'s lake; ``session`` keeps follow-ups across calls.

    The assistant records the question itself (its last step), once.
    """
    from workbench.assistant.graph import assistant_for

    return assistant_for(wb).ask(question, session=session, user=user)


def build_summaries(wb: QueryRunner) -> int:
    """(Re)build the grounding summaries and their index; call after each ingest."""
    from workbench.assistant.graph import forget_index
    from workbench.assistant.retrieval.summaries import build_summaries as _build

    count = _build(wb)
    forget_index(wb)  # the next question loads the new index
    return count


__all__ = ["Answer", "Source", "ask", "build_summaries"]
