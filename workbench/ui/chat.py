"""The chat panel on the assistant, shared by the dashboard and the notebook ``assistant()`` widget.

The question runs in a worker thread (``asyncio.to_thread``) so the page stays live and the
"thinking" indicator shows while the assistant retrieves, plans and queries. Every failure
becomes a chat message with the error's message and hint; the traceback goes to the server
log only.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from workbench.errors import WorkbenchError
from workbench.ui.answers import answer_panel

log = logging.getLogger(__name__)

ASSISTANT_NAME = "Assistant"

WELCOME = (
    "Ask about the sales data in plain language, e.g. *revenue by region in 2024*, "
    "*top 5 categories by profit last year*, or *monthly revenue in 2023*. "
    "Follow-ups (*and in the East?*) refine the previous question."
)


def ask_answer(wb: Any, question: str, session: str | None = None, user: str | None = None) -> Any:
    """Ask the assistant; callers get an Answer (failures included), never an exception."""
    from workbench.assistant import ask

    return ask(wb, question, session=session, user=user)


def error_text(err: BaseException) -> str:
    """The message an analyst sees for a failure: what went wrong and what to do."""
    if isinstance(err, WorkbenchError):
        return f"I could not answer this: {err.message}" + (f"\n\nHint: {err.hint}" if err.hint else "")
    return f"Something went wrong while answering ({type(err).__name__}: {err}). Please try rephrasing the question."


def chat_interface(wb: Any, user: str | None = None, session: str | None = None, **params: Any) -> Any:
    """A ``pn.chat.ChatInterface`` whose callback asks the assistant over ``wb``.

    ``session`` keeps follow-ups; by default each chat panel gets its own conversation id.
    """
    import panel as pn

    conversation = session or f"ui-{uuid.uuid4().hex[:12]}"

    async def callback(contents: Any, sender: str, instance: Any) -> Any:
        question = str(contents).strip()
        if not question:
            return None
        try:
            answer = await asyncio.to_thread(ask_answer, wb, question, conversation, user)
        except Exception as err:
            log.exception("assistant failed on %r", question)
            return pn.chat.ChatMessage(
                pn.pane.Alert(error_text(err), alert_type="danger", css_classes=["wb-answer-error"]),
                user=ASSISTANT_NAME,
                avatar="⚠️",
            )
        return pn.chat.ChatMessage(answer_panel(answer), user=ASSISTANT_NAME, avatar="🤖")

    options: dict[str, Any] = {
        "callback": callback,
        "callback_user": ASSISTANT_NAME,
        "callback_exception": "summary",
        "placeholder_text": "Thinking: retrieving summaries, planning and querying…",
        "placeholder_threshold": 0.0,
        "show_rerun": False,
        "show_undo": False,
        "widgets": [pn.chat.ChatAreaInput(placeholder="Ask a question about sales…")],
        "sizing_mode": "stretch_both",
        "min_height": 480,
        "css_classes": ["wb-chat"],
    }
    options.update(params)
    chat = pn.chat.ChatInterface(**options)
    chat.send(WELCOME, user=ASSISTANT_NAME, avatar="🤖", respond=False)
    return chat
