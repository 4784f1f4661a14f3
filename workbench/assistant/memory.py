"""Conversation memory: the previous semantic query of each session, kept on disk.

Sessions live in ``<home>/sessions/<id>.json`` so ``workbench ask --session ID`` continues a
conversation across CLI invocations, and Python callers share the same store. A follow-up
("and in 2023?", "only Electronics", "break that down by channel") is resolved against the
previous :class:`SemanticQuery` by :func:`resolve_follow_up`: a deterministic edit of the
period, the filters or the dimensions, so it works with and without an LLM.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from workbench.config import Settings, get_settings
from workbench.errors import DataError
from workbench.semantic.model import SemanticModel
from workbench.semantic.query import Filter, SemanticQuery, TimeRange

_SESSION_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
#: turns kept per session (older ones are dropped)
MAX_TURNS = 20


class SessionStore:
    """JSON files, one per session, written atomically (write then rename)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.folder = self.settings.home_path / "sessions"

    def _path(self, session_id: str) -> Path:
        if not _SESSION_ID.match(session_id):
            raise DataError(f"invalid session id {session_id!r}", "use 1-64 letters, digits, '.', '_' or '-'")
        return self.folder / f"{session_id}.json"

    def history(self, session_id: str) -> list[dict[str, Any]]:
        path = self._path(session_id)
        if not path.exists():
            return []
        try:
            return list(json.loads(path.read_text()).get("turns", []))
        except ValueError:
            return []

    def last_query(self, session_id: str) -> SemanticQuery | None:
        for turn in reversed(self.history(session_id)):
            if turn.get("semantic_query"):
                return SemanticQuery.model_validate(turn["semantic_query"])
        return None

    def append(self, session_id: str, turn: dict[str, Any]) -> None:
        path = self._path(session_id)
        turns = [*self.history(session_id), turn][-MAX_TURNS:]
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"id": session_id, "turns": turns}, default=str))
        tmp.replace(path)

    def clear(self, session_id: str) -> None:
        self._path(session_id).unlink(missing_ok=True)


# --- follow-ups --------------------------------------------------------------------------------
_FOLLOW_UP_START = re.compile(
    r"^\s*(and|what about|how about|only|just|now|same|then|but|break (that|it|this) down|split|also|instead)\b",
    re.IGNORECASE,
)
_PRONOUN = re.compile(r"\b(that|this|those|it|them|same)\b", re.IGNORECASE)
_YEAR = re.compile(r"\b(19|20)\d{2}\b")
_QUARTER = re.compile(r"\bq([1-4])\b(?:\s*(?:of\s*)?((?:19|20)\d{2}))?", re.IGNORECASE)
_MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]
_MONTH = re.compile(r"\b(" + "|".join(_MONTHS) + r")\b(?:\s+((?:19|20)\d{2}))?", re.IGNORECASE)
_BY = re.compile(r"\b(?:by|per|for each|across)\s+([a-z][a-z _-]*?)\s*(?:[?.!]|$)", re.IGNORECASE)


def looks_like_follow_up(question: str) -> bool:
    """Short, elliptical questions that lean on the previous one."""
    words = question.split()
    return bool(_FOLLOW_UP_START.match(question)) or (len(words) <= 6 and bool(_PRONOUN.search(question)))


def _period(question: str, previous: TimeRange | None) -> TimeRange | None:
    q = _QUARTER.search(question)
    base_year = previous.year if previous is not None else None
    any_year = _YEAR.search(question)
    if q:
        year = int(q.group(2)) if q.group(2) else (int(any_year.group(0)) if any_year else base_year)
        return TimeRange(year=year, quarter=int(q.group(1))) if year else None
    m = _MONTH.search(question)
    if m:
        year = int(m.group(2)) if m.group(2) else base_year
        return TimeRange(year=year, month=_MONTHS.index(m.group(1).lower()) + 1) if year else None
    years = [int(y.group(0)) for y in _YEAR.finditer(question)]
    if len(years) == 1:
        if previous is not None and previous.year is not None and (previous.quarter or previous.month):
            return TimeRange(year=years[0], quarter=previous.quarter, month=previous.month)
        return TimeRange(year=years[0])
    if len(years) >= 2:
        return TimeRange(year=min(years), end_year=max(years))
    return None


def _values_in(question: str, vocabulary: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    low = f" {question.lower()} "
    for dim, values in vocabulary.items():
        for v in sorted(values, key=len, reverse=True):
            if re.search(rf"(?<![a-z0-9]){re.escape(str(v).lower())}(?![a-z0-9])", low):
                found.setdefault(dim, []).append(str(v))
    return found


def _dimension_named(text: str, model: SemanticModel) -> str | None:
    text = text.strip().lower()
    for name, d in model.dimensions.items():
        names = {name.replace("_", " "), name, *(s.lower() for s in d.synonyms)}
        if text in names:
            return name
    return None


def resolve_follow_up(
    question: str,
    previous: SemanticQuery,
    model: SemanticModel,
    vocabulary: Mapping[str, Sequence[str]],
) -> SemanticQuery | None:
    """``previous`` edited by ``question``; None when the question changes nothing we recognise."""
    if not looks_like_follow_up(question):
        return None
    q = previous.model_copy(deep=True)
    changed = False
    period = _period(question, previous.time_range)
    if period is not None:
        q.time_range = period
        q.filters = [f for f in q.filters if f.dimension not in ("year", "quarter", "month")]
        changed = True
    for dim, values in _values_in(question, vocabulary).items():
        q.filters = [f for f in q.filters if f.dimension != dim]
        q.filters.append(Filter(dimension=dim, op="in", values=list(values)))
        if dim in q.dimensions and len(values) == 1:
            q.dimensions.remove(dim)
        changed = True
    by = _BY.search(question)
    if by:
        named = _dimension_named(by.group(1), model)
        if named and named not in q.dimensions:
            q.dimensions.append(named)
            q.limit = None if q.limit == 1 else q.limit
            changed = True
    return q if changed else None


#: a reply longer than this is a new question, not an answer to a clarifying one
_SHORT_REPLY = 8


def answer_to_pending(reply: str, history: Sequence[Mapping[str, Any]]) -> tuple[str, str] | None:
    """(the pending question, the chosen metric) when ``reply`` picks a choice of the last clarifying turn.

    A clarification is a conversation turn: "how many customers in 2024?" -> "customers on
    file or customers who bought?" -> "on file" completes the first question. The choice is
    the one whose distinctive words (the ones the choices do not share) the reply uses.
    """
    if not history or not history[-1].get("pending"):
        return None
    words = set(re.findall(r"[a-z0-9]+", reply.lower()))
    if not words or len(words) > _SHORT_REPLY:
        return None
    choices: Mapping[str, str] = history[-1]["pending"].get("choices", {})
    labels = {label: set(re.findall(r"[a-z0-9]+", label.lower())) for label in choices}
    shared = set.intersection(*labels.values()) if labels else set()
    scored = sorted(((len(words & (toks - shared)), label) for label, toks in labels.items()), reverse=True)
    if not scored or scored[0][0] == 0 or (len(scored) > 1 and scored[1][0] == scored[0][0]):
        return None
    return str(history[-1]["question"]), choices[scored[0][1]]
