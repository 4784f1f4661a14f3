"""Evaluation harness: run a question set, compare answers with the reference SQL's results.

``workbench eval QUESTIONS.jsonl`` reports accuracy, every miss with the reason it missed, and
the latency from question to rows (plan + compile + run). Comparison is the way an analyst
would judge an answer: column names and extra columns do not matter (a planner may call the
margin ``profit_margin`` and add the year next to the month); values do, within a relative
tolerance, and row order only where the set says ``"compare": "ordered"``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from workbench.assistant.planners.base import Plan, PlanContext, Planner
from workbench.errors import DataError, NotFoundError, WorkbenchError

if TYPE_CHECKING:
    from workbench.semantic.model import SemanticModel
    from workbench.session import Workbench

REL_TOL = 0.005


def same_value(a: Any, b: Any, rel_tol: float = REL_TOL) -> bool:
    """Numbers within ``rel_tol`` (relative), anything else by its text."""
    na, nb = _number(a), _number(b)
    if na is not None and nb is not None:
        if math.isnan(na) or math.isnan(nb):
            return math.isnan(na) and math.isnan(nb)
        return abs(na - nb) <= rel_tol * max(abs(na), abs(nb)) or abs(na - nb) < 1e-9
    if _missing(a) or _missing(b):
        return _missing(a) and _missing(b)
    return _text(a) == _text(b)


def compare_results(expected: pd.DataFrame, actual: pd.DataFrame, mode: str, rel_tol: float = REL_TOL) -> str | None:
    """``None`` when ``actual`` answers like ``expected``; else why not."""
    if mode not in ("value", "set", "ordered"):
        return f"unknown compare mode {mode!r}"
    if expected.empty:
        return None if actual.empty else f"expected no rows, got {len(actual)}"
    if actual.empty:
        return "the answer has no rows"
    if mode == "value":
        want = expected.iloc[0, 0]
        row = list(actual.iloc[0])
        if any(same_value(want, got, rel_tol) for got in row):
            return None
        return f"expected {_show(want)}, got {', '.join(_show(v) for v in row)}"
    if len(expected) != len(actual):
        return f"expected {len(expected)} rows, got {len(actual)}"
    mapping = _map_columns(expected, actual, rel_tol)
    if mapping is None:
        return _column_reason(expected, actual, rel_tol)
    exp_rows = [tuple(r) for r in expected.itertuples(index=False, name=None)]
    act_rows = [tuple(r[j] for j in mapping) for r in actual.itertuples(index=False, name=None)]
    if mode == "ordered":
        for i, (e, a) in enumerate(zip(exp_rows, act_rows, strict=True)):
            if not all(same_value(x, y, rel_tol) for x, y in zip(e, a, strict=True)):
                return f"row {i + 1} differs: expected {_show_row(e)}, got {_show_row(a)}"
        return None

    def row_key(row: tuple[Any, ...]) -> tuple[tuple[int, Any], ...]:
        return tuple(_sort_key(v) for v in row)

    paired = zip(sorted(exp_rows, key=row_key), sorted(act_rows, key=row_key), strict=True)
    if all(all(same_value(x, y, rel_tol) for x, y in zip(e, a, strict=True)) for e, a in paired):
        return None
    unmatched = list(act_rows)
    for e in exp_rows:
        hit = next((a for a in unmatched if all(same_value(x, y, rel_tol) for x, y in zip(e, a, strict=True))), None)
        if hit is None:
            return f"expected row {_show_row(e)} is missing"
        unmatched.remove(hit)
    return None


def _map_columns(expected: pd.DataFrame, actual: pd.DataFrame, rel_tol: float) -> list[int] | None:
    """For each expected column, a distinct actual column holding the same multiset of values."""
    options: list[list[int]] = []
    for i in range(expected.shape[1]):
        want = expected.iloc[:, i].tolist()
        options.append([j for j in range(actual.shape[1]) if _same_multiset(want, actual.iloc[:, j].tolist(), rel_tol)])

    def assign(i: int, used: list[int]) -> list[int] | None:
        if i == len(options):
            return used
        for j in options[i]:
            if j not in used:
                found = assign(i + 1, [*used, j])
                if found is not None:
                    return found
        return None

    return assign(0, [])


def _same_multiset(a: list[Any], b: list[Any], rel_tol: float) -> bool:
    """Equal as multisets; sorted pairing, which tolerance matching of close numbers needs."""
    if len(a) != len(b):
        return False
    return all(
        same_value(x, y, rel_tol) for x, y in zip(sorted(a, key=_sort_key), sorted(b, key=_sort_key), strict=True)
    )


def _column_reason(expected: pd.DataFrame, actual: pd.DataFrame, rel_tol: float) -> str:
    for i, name in enumerate(expected.columns):
        want = expected.iloc[:, i].tolist()
        if not any(_same_multiset(want, actual.iloc[:, j].tolist(), rel_tol) for j in range(actual.shape[1])):
            sample = ", ".join(_show(v) for v in want[:3])
            return f"no column of the answer matches expected column {name!r} ({sample}, ...)"
    return "columns match one by one but not together"


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return float(v)
    try:
        import decimal

        import numpy as np

        if isinstance(v, (np.integer, np.floating, decimal.Decimal)):
            return float(v)
    except ImportError:  # pragma: no cover
        pass
    return None


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NaT


def _text(v: Any) -> str:
    if isinstance(v, dt.datetime):
        return v.date().isoformat() if v.time() == dt.time() else v.isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    return str(v).strip()


def _sort_key(v: Any) -> tuple[int, Any]:
    n = _number(v)
    return (0, n) if n is not None and not math.isnan(n) else (1, _text(v))


def _show(v: Any) -> str:
    n = _number(v)
    return f"{n:.6g}" if n is not None else repr(_text(v))


def _show_row(row: tuple[Any, ...]) -> str:
    return "(" + ", ".join(_show(v) for v in row) + ")"


# --- running a question set ------------------------------------------------------------------
@dataclass
class EvalCase:
    """One line of a question set: ``{"id", "question", "sql", "compare"}`` (+ ``"after"``).

    ``after`` makes it a follow-up: the question is asked after that one in the same session
    ("and in 2022?" after "revenue by region in 2023").
    """

    id: str
    question: str
    sql: str
    compare: str = "set"
    after: str | None = None


@dataclass
class CaseResult:
    """One question's outcome: ``right``, ``declined`` (nothing shown) or ``wrong`` (a wrong answer shown)."""

    id: str
    question: str
    ok: bool
    reason: str = ""
    outcome: str = "wrong"
    interpretation: str = ""
    #: who answered: "offline", "llm", "memory"; with an LLM configured "offline" means a fallback
    planner: str = ""
    period: str = ""
    confidence: float = 0.0
    sql: str | None = None
    latency_ms: float = 0.0
    rows: int = 0
    #: tokens the language model spent on this question (0: no model configured, or it never replied)
    model_tokens: int = 0


@dataclass
class EvalReport:
    """Accuracy, every miss with its reason, and planner-to-answer latency."""

    source: str
    results: list[CaseResult] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.results)

    @property
    def correct(self) -> int:
        return sum(r.ok for r in self.results)

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    @property
    def misses(self) -> list[CaseResult]:
        return [r for r in self.results if not r.ok]

    @property
    def declined(self) -> int:
        return sum(r.outcome == "declined" for r in self.results)

    @property
    def fallback(self) -> int:
        """Right answers the offline planner gave because the LLM's plan was not used."""
        return sum(r.outcome == "right" and r.planner == "offline" for r in self.results)

    @property
    def wrong(self) -> int:
        """Wrong answers shown: the one outcome that fails a run whatever the accuracy."""
        return sum(r.outcome == "wrong" for r in self.results)

    def latency_ms(self, q: float) -> float:
        values = sorted(r.latency_ms for r in self.results)
        if not values:
            return 0.0
        k = (len(values) - 1) * q
        lo, hi = math.floor(k), math.ceil(k)
        return values[lo] + (values[hi] - values[lo]) * (k - lo)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "total": self.total,
            "correct": self.correct,
            "accuracy": round(self.accuracy, 4),
            "right": self.correct,
            "declined": self.declined,
            "wrong": self.wrong,
            "fallback": self.fallback,
            "latency_ms": {"p50": round(self.latency_ms(0.5), 1), "p95": round(self.latency_ms(0.95), 1)},
            "misses": [asdict(r) for r in self.misses],
            "results": [asdict(r) for r in self.results],
        }

    def to_text(self) -> str:
        lines = [
            f"{self.source}: {self.correct}/{self.total} correct ({self.accuracy:.1%})",
            f"right {self.correct}, declined {self.declined}, wrong shown {self.wrong}"
            + (f" (offline fallback {self.fallback})" if any(r.planner == "llm" for r in self.results) else ""),
            f"latency (plan + compile + run): p50 {self.latency_ms(0.5):.0f} ms, p95 {self.latency_ms(0.95):.0f} ms",
        ]
        if self.misses:
            lines.append(f"misses ({len(self.misses)}):")
            for r in self.misses:
                lines.append(f"  {r.id} [{r.outcome}]: {r.question}")
                if r.interpretation:
                    lines.append(f"      answered: {r.interpretation}")
                lines.append(f"      reason: {r.reason}")
                if r.sql:
                    lines.append(f"      sql: {r.sql}")
        return "\n".join(lines)


def load_cases(path: str | Path) -> list[EvalCase]:
    """Read a JSONL question set; a malformed line names its line number."""
    path = Path(path)
    if not path.exists():
        raise NotFoundError(f"question set {path} does not exist", "give the path of a .jsonl file")
    cases: list[EvalCase] = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            cases.append(
                EvalCase(
                    id=str(raw.get("id", n)),
                    question=str(raw["question"]),
                    sql=str(raw["sql"]),
                    compare=str(raw.get("compare", "set")),
                    after=str(raw["after"]) if raw.get("after") else None,
                )
            )
        except (ValueError, KeyError, TypeError) as e:
            raise DataError(
                f"{path}:{n} is not a question: {e}",
                'each line needs {"id", "question", "sql", "compare": "value"|"set"|"ordered"}',
            ) from e
    return cases


class AssistantEvaluator:
    """Runs a question set through the whole assistant (plan, validate, repair, fall back, explain).

    Used with an LLM configured: the planner that answered is recorded, so a run reports right
    (by the model or by the offline fallback), declined and wrong shown, the way a user sees them.
    """

    def __init__(self, wb: Workbench, rel_tol: float = REL_TOL) -> None:
        self.wb = wb
        self.rel_tol = rel_tol

    def run(self, cases: list[EvalCase], source: str = "questions") -> EvalReport:
        report = EvalReport(source=source)
        for n, case in enumerate(cases):
            report.results.append(self.run_case(case, session=f"eval-{n}"))
        return report

    def run_case(self, case: EvalCase, session: str) -> CaseResult:
        from workbench.assistant.graph import assistant_for

        result = CaseResult(case.id, case.question, ok=False)
        expected = self.wb.sql(case.sql).df
        assistant = assistant_for(self.wb)
        if case.after:
            assistant.ask(case.after, session=session)
        start = time.perf_counter()
        answer = assistant.ask(case.question, session=session if case.after else None)
        result.latency_ms = (time.perf_counter() - start) * 1000
        result.planner, result.interpretation, result.sql = answer.planner, answer.interpretation, answer.sql
        result.model_tokens = int((answer.tokens or {}).get("total", 0) or 0)
        if not answer.ok:
            result.outcome, result.reason = "declined", answer.answer
            return result
        return grade(result, expected, pd.DataFrame(answer.rows, columns=answer.columns), case.compare, self.rel_tol)


class Evaluator:
    """Runs question sets against one workbench session with one planner."""

    def __init__(
        self,
        wb: Workbench,
        planner: Planner | None = None,
        model: SemanticModel | None = None,
        engine: str = "auto",
        rel_tol: float = REL_TOL,
    ) -> None:
        from workbench.assistant.planners.lexicon import Lexicon
        from workbench.assistant.planners.offline import OfflinePlanner
        from workbench.semantic.model import load_model
        from workbench.semantic.vocabulary import latest_date, load_vocabulary

        self.wb = wb
        self.planner = planner or OfflinePlanner()
        self.model = model or load_model(settings=wb.settings)
        self.engine = engine
        self.rel_tol = rel_tol
        self.context = PlanContext(
            model=self.model,
            latest_date=latest_date(wb, self.model),
            vocabulary=load_vocabulary(wb, self.model),
        )
        self.lexicon = Lexicon(self.model, self.context.vocabulary)

    def run(self, cases: list[EvalCase], source: str = "questions") -> EvalReport:
        report = EvalReport(source=source)
        for case in cases:
            report.results.append(self.run_case(case))
        return report

    def run_case(self, case: EvalCase) -> CaseResult:
        """Plan, check coverage (as the assistant's validate step does), run, compare."""
        result = CaseResult(case.id, case.question, ok=False)
        try:
            expected = self.wb.sql(case.sql, engine=self.engine).df
        except WorkbenchError as e:
            result.reason = f"reference SQL failed: {e}"
            return result
        start = time.perf_counter()
        try:
            result.sql = self._planned_sql(case, result)
        except WorkbenchError as e:  # nothing would be shown: an honest decline
            result.latency_ms = (time.perf_counter() - start) * 1000
            result.reason, result.outcome = f"{e.kind}: {e}", "declined"
            return result
        try:
            actual = self.wb.sql(str(result.sql), engine=self.engine).df
        except WorkbenchError as e:
            result.latency_ms = (time.perf_counter() - start) * 1000
            result.reason, result.outcome = f"{e.kind}: {e}", "declined"
            return result
        result.latency_ms = (time.perf_counter() - start) * 1000
        return grade(result, expected, actual, case.compare, self.rel_tol)

    def _follow_up(self, case: EvalCase) -> Plan | None:
        """The previous question's plan edited by this one, as the assistant's session memory does."""
        from workbench.assistant.memory import resolve_follow_up

        previous = self.planner.plan(str(case.after), self.context)
        if previous.query is None:
            return None
        edited = resolve_follow_up(case.question, previous.query, self.model, self.context.vocabulary)
        if edited is None:
            return None
        return Plan(query=edited, period=edited.describe_period(), planner="memory")

    def _planned_sql(self, case: EvalCase, result: CaseResult) -> str:
        from workbench.assistant.interpret import interpret
        from workbench.assistant.planners.coverage import require
        from workbench.semantic.compiler import compile_query

        plan = self._follow_up(case) if case.after else None
        plan = plan or self.planner.plan(case.question, self.context)
        result.period, result.confidence, result.planner = plan.period, plan.confidence, plan.planner
        if plan.query is None:
            return str(plan.sql)
        result.interpretation = interpret(plan.query, self.model)
        require(case.question, plan.query, self.context, self.lexicon)
        return compile_query(plan.query, self.model, self.context.vocabulary).sql


def run_eval(path: str | Path, wb: Workbench, planner: Planner | None = None, engine: str = "auto") -> EvalReport:
    """Evaluate the question set at ``path`` (see :class:`Evaluator`)."""
    return Evaluator(wb, planner=planner, engine=engine).run(load_cases(path), source=str(path))


def grade(result: CaseResult, expected: pd.DataFrame, actual: pd.DataFrame, compare: Any, rel_tol: float) -> CaseResult:
    """Right when ``actual`` matches the gold result, else wrong (the reason says where they differ)."""
    result.rows = len(actual)
    reason = compare_results(expected, actual, compare, rel_tol)
    result.ok = reason is None
    result.outcome = "right" if result.ok else "wrong"
    result.reason = reason or ""
    return result
