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

    assistant = assistant_for(wb)
    had_history = bool(session and assistant.sessions.history(session))
    answer = assistant.ask(question, session=session, user=user)
    if not had_history:
        _hint_follow_up(answer, question, session)
    return answer


def _hint_follow_up(answer: Answer, question: str, session: str | None) -> None:
    """A failed question that reads like a follow-up ("and in 2023?") gets told why it failed.

    Without an earlier question in the same session there is nothing to follow up on; the
    user's next step is to ask the full question first, in the same session.
    """
    from workbench.assistant.memory import looks_like_follow_up

    if answer.ok or not looks_like_follow_up(question):
        return
    where = "no session was given" if session is None else f"session {session!r} has no earlier question"
    hint = (
        "ask the full question first, then the follow-up in the same session "
        "(`workbench ask` keeps one per working folder; `--session ID` names one)"
    )
    answer.answer = f"I could not answer {question!r} on its own: it reads like a follow-up, but {where}. Hint: {hint}."
    answer.error = {**(answer.error or {}), "hint": hint}


def build_summaries(wb: QueryRunner) -> int:
    """(Re)build the grounding summaries and their index; call after each ingest."""
    from workbench.assistant.graph import forget_index
    from workbench.assistant.retrieval.summaries import build_summaries as _build

    count = _build(wb)
    forget_index(wb)  # the next question loads the new index
    return count


__all__ = ["Answer", "Source", "ask", "build_summaries"]
