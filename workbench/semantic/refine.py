"""An LLM drafts names, synonyms, descriptions and extra metrics on top of the profiled draft.

Why on top and validated: the profiled draft is right about mechanics (grain, keys, joins,
what may be summed); a language model is better at the words people use ("revenue" for
``ss_net_paid``) and at metrics with a business meaning (margin = profit / sales). It may
add words freely, but it may not change what a metric computes, and every metric it
proposes must survive three checks before it enters the model: its SQL parses as one
aggregate over the fact's columns, the model still validates with it, and the compiled query
runs against the data (through the read-only SQL path) and returns one number. A rejected
proposal is reported with why; an unreachable or confused endpoint leaves the draft as it was.
"""

from __future__ import annotations

import copy
import json
import math
import re
from typing import Any

import sqlglot
from pydantic import ValidationError
from sqlglot import exp

from workbench.assistant.llm.client import LLMClient
from workbench.assistant.llm.parsing import extract_json
from workbench.errors import WorkbenchError
from workbench.semantic.compiler import compile_query
from workbench.semantic.model import SemanticModel
from workbench.semantic.query import SemanticQuery

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_FORMATS = ("number", "currency", "percent", "count", "fraction")
#: longest synonym or description taken from the model (longer text is not a phrase)
MAX_PHRASE = 60
MAX_DESCRIPTION = 200

PROMPT = """You name the parts of a semantic model for business questions over a user's tables.
Below, as JSON: the fact table's columns (type, sample values), the drafted metrics (name, SQL) and
dimensions (name, column). Answer with one JSON object only:
{"metrics": {"<existing metric>": {"description": "...", "synonyms": ["..."]}},
 "dimensions": {"<existing dimension>": {"synonyms": ["..."]}},
 "new_metrics": {"<snake_case_name>": {"sql": "<one aggregate over the fact's columns>",
   "format": "number|currency|percent|count|fraction", "description": "...", "synonyms": ["..."]}}}
Synonyms are short phrases people say. Never rename or redefine existing entries."""


def refine(model: dict[str, Any], profiles: dict[str, dict[str, Any]], wb: Any, client: LLMClient) -> dict[str, Any]:
    """The draft ``model`` (a :func:`~workbench.semantic.draft.draft_model` dict) with the LLM's words and
    validated metrics merged in; ``_why`` says what was taken and what was rejected."""
    out = copy.deepcopy(model)
    try:
        reply = client.chat(
            [{"role": "system", "content": PROMPT}, {"role": "user", "content": _context(model, profiles)}],
            model=client.settings.llm_model or "",
            json_mode=True,
        )
        proposal = extract_json(reply.text)
    except (WorkbenchError, ValueError) as e:
        out.setdefault("_notes", []).append(f"language model not used: {e}")
        return out
    taken = _merge_words(out, proposal)
    added, rejected = _add_metrics(out, proposal.get("new_metrics"), wb)
    why = out.setdefault("_why", [])
    why.append(f"language model: {taken} synonyms/descriptions added, {len(added)} metrics added")
    why += [f"language model metric {n}: kept ({sql})" for n, sql in added]
    why += [f"language model metric {n}: rejected ({reason})" for n, reason in rejected]
    return out


def _context(model: dict[str, Any], profiles: dict[str, dict[str, Any]]) -> str:
    fact = profiles[model["fact"]]
    cols = [
        {"name": c["name"], "type": c["type"], "sample": (c.get("values") or c.get("sample") or [])[:5]}
        for c in fact["columns"]
    ]
    body = {
        "fact": model["fact"],
        "columns": cols,
        "metrics": {n: m.get("sql") for n, m in model["metrics"].items()},
        "dimensions": {n: d.get("column") or d.get("sql") for n, d in model["dimensions"].items()},
    }
    return json.dumps(body, default=str)


def _phrases(raw: Any, taken: set[str]) -> list[str]:
    """Short, new, plain phrases from ``raw`` (anything else the model sent is dropped)."""
    out = []
    for s in raw if isinstance(raw, list) else []:
        text = str(s).strip().lower()
        if text and len(text) <= MAX_PHRASE and re.fullmatch(r"[\w\s'&/-]+", text) and text not in taken:
            out.append(text)
            taken.add(text)
    return out


def _merge_words(model: dict[str, Any], proposal: dict[str, Any]) -> int:
    """Synonyms (never clashing with another entry's name or synonym) and metric descriptions."""
    taken = {n.replace("_", " ") for n in (*model["metrics"], *model["dimensions"])}
    taken |= {s.lower() for part in ("metrics", "dimensions") for e in model[part].values() for s in e["synonyms"]}
    count = 0
    for part in ("metrics", "dimensions"):
        given = proposal.get(part)
        for name, words in (given if isinstance(given, dict) else {}).items():
            if name not in model[part] or not isinstance(words, dict):
                continue
            new = _phrases(words.get("synonyms"), taken)
            model[part][name]["synonyms"] += new
            count += len(new)
            text = words.get("description")
            if part == "metrics" and isinstance(text, str) and text.strip():
                model[part][name]["description"] = text.strip()[:MAX_DESCRIPTION]
                count += 1
    return count


def _add_metrics(model: dict[str, Any], proposed: Any, wb: Any) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    added: list[tuple[str, str]] = []
    rejected: list[tuple[str, str]] = []
    for name, spec in (proposed if isinstance(proposed, dict) else {}).items():
        reason = check_metric(model, str(name), spec, wb)
        if reason:
            rejected.append((str(name), reason))
            continue
        taken = {s.lower() for e in model["metrics"].values() for s in e["synonyms"]}
        model["metrics"][name] = {
            "sql": spec["sql"],
            "format": spec.get("format") if spec.get("format") in _FORMATS else "number",
            "description": str(spec.get("description", ""))[:MAX_DESCRIPTION],
            "synonyms": _phrases(spec.get("synonyms"), taken | {name.replace("_", " ")}) or [name.replace("_", " ")],
        }
        added.append((str(name), spec["sql"]))
    return added, rejected


def check_metric(model: dict[str, Any], name: str, spec: Any, wb: Any) -> str | None:
    """Why the proposed metric cannot enter the model (``None``: it compiled, ran and gave a number)."""
    if not _NAME.match(name) or name in model["metrics"] or name in model["dimensions"]:
        return "not a new snake_case name"
    if not isinstance(spec, dict) or not isinstance(spec.get("sql"), str):
        return "no SQL"
    try:
        parsed = sqlglot.parse_one(spec["sql"], read="duckdb")
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError) as e:
        return f"SQL does not parse: {str(e).splitlines()[0]}"
    if not isinstance(parsed, exp.Expression) or parsed.find(exp.AggFunc) is None or parsed.find(exp.Select):
        return "not one aggregate expression"
    trial = {k: v for k, v in model.items() if not k.startswith("_")}
    trial["metrics"] = {**trial["metrics"], name: {"sql": spec["sql"]}}
    try:
        semantic = SemanticModel.model_validate(trial)
        sql = compile_query(SemanticQuery(metrics=[name]), semantic).sql
        value = wb.sql(sql).df.iloc[0, 0]
    except (ValidationError, WorkbenchError, IndexError) as e:
        return f"does not run: {str(e).splitlines()[0]}"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return f"did not give a number (got {value!r})"
    return None if math.isfinite(number) else f"did not give a number (got {value!r})"
