"""Questions that ask to change data: refused before any planning, by every planner alike.

One pattern for the assistant graph and the offline planner (they had drifted apart: each
refused requests the other let through). It matches a change verb opening the question
("delete last year's rows") or followed closely by what it would change ("please wipe the
customers table"); the refusal names the verb.
"""

from __future__ import annotations

import re

_VERB = (
    r"(delete|drop|truncate|insert|update|alter|create|remove|erase|wipe|overwrite|modify|grant|revoke|rename"
    r"|purge|destroy|vacuum)"
)
_OBJECT = (
    r"(?:table|tables|data|database|rows?|records?|columns?|schema|everything|all|lake"
    r"|sales|customers|stores|products)"
)
CHANGES_DATA = re.compile(rf"^\W*(?:please )?{_VERB}\b|\b{_VERB}\b.{{0,40}}?\b{_OBJECT}\b", re.IGNORECASE)


def change_verb(text: str) -> str | None:
    """The change verb when ``text`` asks to change data, else None."""
    m = CHANGES_DATA.search(text)
    if m is None:
        return None
    return (m.group(1) or m.group(2)).lower()
