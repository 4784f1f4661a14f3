"""Does a model answer? Probe questions generated from it, and graded question sets.

Why both: ``workbench model check`` must work on a model nobody wrote questions for (a user's
fresh draft), so it asks what the model itself says it can answer (each metric, each metric
by a category and by year, a metric filtered to one category value) and reports which
questions got an answer and with what SQL. A question set with reference SQL
(``{"id", "question", "sql", "compare"}`` per line) is graded three ways, because declining
is acceptable and a wrong number shown is not: *right*, *declined* (the assistant refused or
failed), *wrong* (an answer was shown and differs from the reference).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from workbench.assistant import ask
from workbench.assistant.eval import EvalCase, compare_results
from workbench.errors import WorkbenchError
from workbench.semantic.model import SemanticModel

#: probes per kind (metric alone, by category, by year, filtered): keeps a check to seconds
PROBES_PER_KIND = 4


@dataclass
class Outcome:
    """One question: ``right`` | ``declined`` | ``wrong`` (graded) or ``answered`` | ``declined`` (probe)."""

    id: str
    question: str
    outcome: str
    detail: str = ""
    sql: str | None = None


def probe_questions(model: SemanticModel, vocabulary: dict[str, list[Any]] | None = None) -> list[str]:
    """Plain questions the model's own names say it answers."""
    metrics = [m for m in model.metrics.values() if m.table == model.fact and m.synonyms][:PROBES_PER_KIND]
    cats = [d for d in model.dimensions.values() if d.kind == "category" and d.vocabulary][:PROBES_PER_KIND]
    out: list[str] = []
    for i, m in enumerate(metrics):
        phrase = m.synonyms[0]
        out.append(phrase)
        if cats:
            out.append(
                f"{phrase} by {cats[i % len(cats)].synonyms[0] if cats[i % len(cats)].synonyms else cats[0].name}"
            )
        if "year" in model.dimensions:
            out.append(f"{phrase} by year")
        values = (vocabulary or {}).get(cats[i % len(cats)].name) if cats else None
        if values:
            out.append(f"{phrase} for {values[0]}")
    return out


def run_probes(wb: Any, questions: list[str]) -> list[Outcome]:
    """Ask each probe; an answer with rows is ``answered``, anything else ``declined`` (with why)."""
    out = []
    for i, q in enumerate(questions, start=1):
        answer = ask(wb, q)
        if answer.ok and answer.rows:
            out.append(Outcome(f"p{i}", q, "answered", answer.period, answer.sql))
        else:
            why = (answer.error or {}).get("message", "") if answer.error else answer.status
            out.append(Outcome(f"p{i}", q, "declined", str(why), answer.sql))
    return out


def grade(wb: Any, cases: list[EvalCase], engine: str = "duckdb") -> list[Outcome]:
    """Ask every question of ``cases`` and grade the shown answer against its reference SQL."""
    out = []
    for case in cases:
        try:
            expected = wb.sql(case.sql, engine=engine).df
        except WorkbenchError as e:
            out.append(Outcome(case.id, case.question, "broken", f"reference SQL failed: {e}"))
            continue
        answer = ask(wb, case.question)
        if not answer.ok:
            why = (answer.error or {}).get("message", answer.status)
            out.append(Outcome(case.id, case.question, "declined", str(why), answer.sql))
            continue
        reason = compare_results(expected, answer.df, case.compare)
        out.append(Outcome(case.id, case.question, "wrong" if reason else "right", reason or "", answer.sql))
    return out


def summary(outcomes: list[Outcome]) -> dict[str, Any]:
    """Counts per outcome and every question's outcome (for JSON output and reports)."""
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.outcome] = counts.get(o.outcome, 0) + 1
    return {"total": len(outcomes), **counts, "questions": [asdict(o) for o in outcomes]}


def to_text(outcomes: list[Outcome]) -> str:
    """One line per question, then the counts."""
    lines = [f"{o.outcome:<9} {o.id:<6} {o.question}" + (f"  -- {o.detail}" if o.detail else "") for o in outcomes]
    counts = {k: v for k, v in summary(outcomes).items() if k not in ("questions", "total")}
    lines.append(f"{len(outcomes)} questions: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    return "\n".join(lines)
