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
from typing import TYPE_CHECKING, Any

from workbench.errors import WorkbenchError
from workbench.ui.answers import answer_panel

if TYPE_CHECKING:
    from workbench.runner import QueryRunner

log = logging.getLogger(__name__)

ASSISTANT_NAME = "Assistant"
USER_NAME = "You"

#: avatars are letters, drawn by CSS: an emoji avatar shows as an empty box on machines
#: without a colour-emoji font (a locked-down desktop, a server's headless browser)
AVATARS = {ASSISTANT_NAME: "A", USER_NAME: "Y", "error": "!"}
AVATAR_CSS = """
.avatar {border-radius: 50%; background: #1f6feb; color: #fff; font-weight: 600; font-size: 16px;
         display: flex; align-items: center; justify-content: center; font-family: system-ui, sans-serif}
"""

#: the chat's buttons as inline SVG: Panel's default icon font comes from a public CDN
_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24" viewBox="0 0 24 24" fill="none" '
    'stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">{}</svg>'
)
BUTTON_ICONS = {
    "send": _SVG.format(
        '<path d="M10 14l11 -11"/>'
        '<path d="M21 3l-6.5 18a.55 .55 0 0 1 -1 0l-3.5 -7l-7 -3.5a.55 .55 0 0 1 0 -1l18 -6.5"/>'
    ),
    "stop": _SVG.format('<rect x="6" y="6" width="12" height="12" rx="1"/>'),
    "rerun": _SVG.format(
        '<path d="M4 12v-3a3 3 0 0 1 3 -3h13m-3 -3l3 3l-3 3"/><path d="M20 12v3a3 3 0 0 1 -3 3h-13m3 3l-3 -3l3 -3"/>'
    ),
    "undo": _SVG.format('<path d="M9 14l-4 -4l4 -4"/><path d="M5 10h11a4 4 0 1 1 0 8h-1"/>'),
    "clear": _SVG.format(
        '<path d="M4 7h16"/><path d="M10 11v6"/><path d="M14 11v6"/>'
        '<path d="M5 7l1 12a2 2 0 0 0 2 2h8a2 2 0 0 0 2 -2l1 -12"/><path d="M9 7v-3a1 1 0 0 1 1 -1h4a1 1 0 0 1 1 1v3"/>'
    ),
}
#: each message's edit toggle (off / on), also inline SVG
EDIT_ICONS = (
    _SVG.format('<path d="M4 20h4l10.5 -10.5a2.828 2.828 0 1 0 -4 -4l-10.5 10.5v4"/><path d="M13.5 6.5l4 4"/>'),
    _SVG.format('<path d="M18 6l-12 12"/><path d="M6 6l12 12"/>'),
)
#: far beyond any answer's height: every new message scrolls the chat to it
AUTO_SCROLL_PX = 1_000_000

WELCOME = (
    "Ask about the sales data in plain language, e.g. *revenue by region in 2024*, "
    "*top 5 categories by profit last year*, or *monthly revenue in 2023*. "
    "Follow-ups (*and in the East?*) refine the previous question."
)


#: every message: letter avatar styling; no reaction icons (another icon font from a CDN)
MESSAGE_PARAMS: dict[str, Any] = {"show_reaction_icons": False, "reaction_icons": {}, "stylesheets": [AVATAR_CSS]}


def ask_answer(wb: QueryRunner, question: str, session: str | None = None, user: str | None = None) -> Any:
    """Ask the assistant; callers get an Answer (failures included), never an exception."""
    from workbench.assistant import ask

    return ask(wb, question, session=session, user=user)


def error_text(err: BaseException) -> str:
    """The message an analyst sees for a failure: what went wrong and what to do."""
    if isinstance(err, WorkbenchError):
        return f"I could not answer this: {err.message}" + (f"\n\nHint: {err.hint}" if err.hint else "")
    return f"Something went wrong while answering ({type(err).__name__}: {err}). Please try rephrasing the question."


#: when to bring the newest answer into view: after the browser has laid it out (its table and
#: chart arrive after the message itself), and once more for a slow chart
SCROLL_AFTER_MS = (400, 1500)


def show_newest_answer(chat: Any) -> None:
    """Scroll the conversation to the top of the newest message once it is on the page.

    Panel's own auto-scroll runs when the message is added, before its table and chart have
    their height, so a long answer ended up below the fold. Scheduled on the session's
    document (under its lock); outside a served session there is nothing to scroll.
    """
    import panel as pn

    doc = pn.state.curdoc
    if doc is None or getattr(doc, "session_context", None) is None:
        return
    feed = getattr(chat, "_chat_log", None)  # the scrolling column of the ChatFeed
    if feed is None:
        return

    def scroll() -> None:
        if feed.objects:
            feed.scroll_to(len(feed.objects) - 1)

    for delay in SCROLL_AFTER_MS:
        doc.add_timeout_callback(scroll, delay)


def _options() -> dict[str, Any]:
    """The chat's look: letter avatars, inline-SVG buttons, scroll to each new message."""
    import panel as pn

    return {
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
        "user": USER_NAME,
        "avatar": AVATARS[USER_NAME],
        "callback_avatar": AVATARS[ASSISTANT_NAME],
        "auto_scroll_limit": AUTO_SCROLL_PX,
        "button_properties": {name: {"icon": svg} for name, svg in BUTTON_ICONS.items()},
        "message_params": dict(MESSAGE_PARAMS),
        "placeholder_params": dict(MESSAGE_PARAMS),
    }


def _classes() -> tuple[type, type]:
    """``ChatInterface`` and ``ChatMessage`` whose every icon is inline SVG.

    Why: since Panel 1.9 each message carries an edit toggle drawn from the Tabler icon font,
    which Bokeh fetches from cdn.jsdelivr.net as soon as the message renders (visible or not):
    a request that leaves the machine and fails on an offline network. The message's icons
    get inline SVG right after construction, before any model exists; the feed builds every
    message (typed, streamed, placeholder) from its ``_message_type``.
    """
    import panel as pn

    class ChatMessage(pn.chat.ChatMessage):
        def __init__(self, object: Any = None, **params: Any) -> None:
            super().__init__(object, **params)
            self.edit_icon.param.update(icon=EDIT_ICONS[0], active_icon=EDIT_ICONS[1])

    class ChatInterface(pn.chat.ChatInterface):
        _message_type = ChatMessage

    return ChatInterface, ChatMessage


def chat_interface(wb: QueryRunner, user: str | None = None, session: str | None = None, **params: Any) -> Any:
    """A ``pn.chat.ChatInterface`` whose callback asks the assistant over ``wb``.

    ``session`` keeps follow-ups; by default each chat panel gets its own conversation id.
    """
    import panel as pn

    interface_class, message_class = _classes()
    conversation = session or f"ui-{uuid.uuid4().hex[:12]}"

    async def callback(contents: Any, sender: str, instance: Any) -> Any:
        question = str(contents).strip()
        if not question:
            return None
        try:
            answer = await asyncio.to_thread(ask_answer, wb, question, conversation, user)
        except Exception as err:
            log.exception("assistant failed on %r", question)
            show_newest_answer(instance)
            return message_class(
                pn.pane.Alert(error_text(err), alert_type="danger", css_classes=["wb-answer-error"]),
                user=ASSISTANT_NAME,
                avatar=AVATARS["error"],
                **MESSAGE_PARAMS,
            )
        show_newest_answer(instance)
        return message_class(
            answer_panel(answer), user=ASSISTANT_NAME, avatar=AVATARS[ASSISTANT_NAME], **MESSAGE_PARAMS
        )

    options = {**_options(), "callback": callback}
    options.update(params)
    chat = interface_class(**options)
    chat.send(WELCOME, user=ASSISTANT_NAME, avatar=AVATARS[ASSISTANT_NAME], respond=False, **MESSAGE_PARAMS)
    return chat
