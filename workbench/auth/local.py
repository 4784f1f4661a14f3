"""The CLI is a local tool: ``--user`` evaluates under that user's policy, and says so in the audit log.

No credential is asked for (whoever runs the CLI can read the lake's files anyway), so the
audit log must not pass ``--user`` off as an authenticated identity: next to the router's
rows under the policy user, one row under the operating-system account (``os:<login>``)
records that it chose to evaluate as that user.
"""

from __future__ import annotations

import getpass
import json
import logging

from workbench.config import Settings

log = logging.getLogger(__name__)


def os_account() -> str:
    try:
        return f"os:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name (some containers)
        return "os:unknown"


def evaluate_as(settings: Settings, user: str | None, what: str, text: str) -> None:
    """Audit a CLI ``--user`` choice (``what`` is ``sql`` or ``ask``); nothing without ``--user``."""
    if not user:
        return
    from workbench.observability.recording import catalog_for

    question, sql = (text, None) if what == "ask" else (None, text)
    detail = json.dumps({"as_user": user, "surface": "cli", "authenticated": False})
    try:
        catalog_for(settings).audit(
            os_account(), "evaluate_as", route=f"cli:{what}", detail=detail, question=question, sql=sql
        )
    except Exception as e:  # the catalog spools while down; an audit write never fails the command
        log.warning("could not record --user in the audit log: %s", e)
