"""Robust extraction of structured output from LLM text.

Models wrap JSON in markdown fences, add prose before or after it, or answer with SQL in a
fence. These helpers find the payload without trusting the shape of the reply; they never
evaluate anything.
"""

from __future__ import annotations

import json
import re
from typing import Any

from workbench.errors import PlanningError

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n?(.*?)```", re.DOTALL)


def _fences(text: str) -> list[tuple[str, str]]:
    return [(m.group(1).lower(), m.group(2).strip()) for m in _FENCE.finditer(text)]


def _balanced_objects(text: str) -> list[str]:
    """Every top-level ``{...}`` span, respecting strings, in order of appearance."""
    spans: list[str] = []
    depth = 0
    start = -1
    in_str = False
    escape = False
    for i, ch in enumerate(text):
        if in_str:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"' and depth > 0:
            in_str = True
        elif ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                spans.append(text[start : i + 1])
    return spans


def extract_json(text: str) -> dict[str, Any]:
    """The first JSON object in ``text`` (fenced or bare, with prose around it)."""
    candidates: list[str] = []
    for lang, body in _fences(text):
        if lang in ("", "json", "jsonc", "javascript", "js"):
            candidates.append(body)
    candidates.append(text.strip())
    for chunk in list(candidates):
        candidates.extend(_balanced_objects(chunk))
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    raise PlanningError(
        "the language model did not return a JSON object",
        "the reply is sent back to the model for repair; rephrase the question if this persists",
        reply=text[:500],
    )


def extract_sql(text: str) -> str | None:
    """SQL from a ```sql fence or a reply that starts with SELECT/WITH; None when there is none."""
    for lang, body in _fences(text):
        if lang in ("sql", "postgresql", "duckdb") or (lang == "" and _looks_like_sql(body)):
            return body.strip().rstrip(";").strip()
    stripped = text.strip()
    if _looks_like_sql(stripped):
        return stripped.rstrip(";").strip()
    return None


def _looks_like_sql(text: str) -> bool:
    return bool(re.match(r"(?is)^\s*(select|with)\b", text))
