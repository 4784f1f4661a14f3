"""The assistant as a LangGraph graph: retrieve -> plan -> validate -> execute -> explain.

Failures are data, not crashes (STYLE.md): a validation or execution error goes back to the
planner as a structured error (``{"stage", "type", "message", "hint"}``) for at most
``settings.repair_attempts`` repairs, then the graph ends with a clear failure. A refusal (an
out-of-model question, a request to change data, a statement that is not a read) ends the
graph at once: nothing runs. When the LLM endpoint times out or fails after its retries, the
offline planner answers and the answer says so.

Dependencies (the workbench, the semantic model, the planners, the summary index) live on
:class:`Assistant`; the graph state holds only what one question needs.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import warnings
import weakref
from collections.abc import Callable
from typing import Any, TypedDict

import sqlglot
from sqlglot import exp

from workbench.assistant.answer import Answer, chart_spec
from workbench.assistant.intent import change_verb
from workbench.assistant.interpret import interpret
from workbench.assistant.llm.client import Usage
from workbench.assistant.memory import SessionStore, answer_to_pending, looks_like_follow_up, resolve_follow_up
from workbench.assistant.narrative import cited_sources, describe_result, unsupported_numbers
from workbench.assistant.planners.base import Plan, PlanContext, Planner
from workbench.assistant.planners.coverage import require, require_sql
from workbench.assistant.planners.lexicon import Lexicon
from workbench.assistant.retrieval.index import Source, SummaryIndex
from workbench.errors import (
    ERROR_KEYS,
    DataError,
    PlanningError,
    QueryFailed,
    QueryRefused,
    QueryTimeout,
    ServiceUnavailable,
    WorkbenchError,
    error_body,
)
from workbench.observability.recording import record_answer
from workbench.runner import QueryRunner
from workbench.security.policies import policy_for_user
from workbench.semantic.compiler import compile_query
from workbench.semantic.model import SemanticModel, is_additive, load_model

log = logging.getLogger(__name__)

#: summaries retrieved per question
TOP_K = 4


class AssistantState(TypedDict, total=False):
    question: str
    #: the question actually planned: a short reply to a clarifying question completes the pending one
    asked: str
    session: str | None
    user: str | None
    history: list[dict[str, Any]]
    sources: list[Source]
    planned: Plan | None
    sql: str | None
    columns_kind: dict[str, str]
    result: Any
    errors: list[dict[str, Any]]
    attempts: int
    retry: bool
    fell_back: bool
    notes: list[str]
    status: str
    failure: dict[str, Any] | None
    timings: dict[str, float]
    answer: Answer


def _error(stage: str, err: Exception) -> dict[str, Any]:
    """An error as data for the repair loop: the one error shape plus the stage that failed."""
    return {"stage": stage, **error_body(err)}


def _public(failure: dict[str, Any]) -> dict[str, Any]:
    """The answer's error in the one JSON shape: the stage moves under ``details``."""
    body = {k: v for k, v in failure.items() if k in ERROR_KEYS}
    details = {**failure.get("details", {}), **({"stage": failure["stage"]} if "stage" in failure else {})}
    if details:
        body["details"] = details
    return body


def _timed(name: str, fn: Callable[[AssistantState], dict[str, Any]]) -> Callable[[AssistantState], dict[str, Any]]:
    def node(state: AssistantState) -> dict[str, Any]:
        start = time.perf_counter()
        update = fn(state)
        timings = dict(state.get("timings") or {})
        timings[name] = timings.get(name, 0.0) + (time.perf_counter() - start) * 1000
        update["timings"] = timings
        return update

    return node


#: the assistant's graph: each step and the one that follows it (None: the end). From a
#: branching step the state decides: the next step, back to "plan" (LLM repair) or "finish".
ENTRY = "retrieve"
EDGES: dict[str, str | None] = {
    "retrieve": "plan",
    "plan": "validate",
    "validate": "execute",
    "execute": "explain",
    "explain": None,
    "finish": None,
}
BRANCHES = frozenset({"plan", "validate", "execute"})


class Assistant:
    """Answers questions about one workbench's lake."""

    def __init__(self, wb: QueryRunner, model: SemanticModel | None = None) -> None:
        self.wb = wb
        self.settings = wb.settings
        self.model = model or load_model(settings=self.settings)
        self.sessions = SessionStore(self.settings)
        self.usage = Usage()
        self._index: SummaryIndex | None = None
        self._vocabulary: dict[str, list[str]] | None = None
        self._latest: tuple[Any, dt.date | None] | None = None
        self._columns: dict[str, set[str]] = {}
        self._offline: Planner | None = None
        self._lexicon: Lexicon | None = None
        self._llm: Any = None
        self._graph: Any = None

    @property
    def graph(self) -> Any:
        """The compiled LangGraph graph (built on first use: importing LangGraph costs ~0.3 CPU-s)."""
        if self._graph is None:
            self._graph = self._build()
        return self._graph

    # --- resources ---------------------------------------------------------------------------
    def index(self) -> SummaryIndex | None:
        """The summary index, (re)built when missing or older than the fact table's Delta version.

        Ingest is expected to call ``build_summaries``; this keeps answers grounded in current
        data even when it did not (one rebuild per new version, then cached).
        """
        try:
            current = {"sales": self.wb.lake.version("sales")}
        except WorkbenchError as e:
            log.warning("retrieval unavailable: %s", e)
            return None
        if self._index is not None and self._index.sources and self._index.sources != current:
            self._index, self._vocabulary = None, None  # an ingest landed since they were loaded
        if self._index is None:
            from workbench.assistant.retrieval.summaries import build_summaries

            try:
                if not SummaryIndex.exists(self.wb.lake):
                    log.info("no summary index yet: building it once")
                    build_summaries(self.wb)
                try:
                    index = SummaryIndex.load(self.wb.lake)
                except DataError as e:
                    log.warning("%s: rebuilding", e)
                    build_summaries(self.wb)
                    index = SummaryIndex.load(self.wb.lake)
                if index.sources and index.sources != current:
                    log.info("summary index built from %s, lake is at %s: rebuilding", index.sources, current)
                    build_summaries(self.wb)
                    index = SummaryIndex.load(self.wb.lake)
                self._index = index
            except WorkbenchError as e:
                log.warning("retrieval unavailable: %s", e)
                return None
        return self._index

    def vocabulary(self) -> dict[str, list[str]]:
        """Known values of the low-cardinality dimensions (read from the lake once per version)."""
        if self._vocabulary is None:
            from workbench.semantic.vocabulary import load_vocabulary

            self._vocabulary = load_vocabulary(self.wb, self.model)
        return self._vocabulary

    def latest_date(self) -> dt.date | None:
        """The latest date in the fact table: relative dates resolve against it."""
        from workbench.semantic.vocabulary import latest_date

        try:
            version: Any = self.wb.lake.version(self.model.fact)
        except WorkbenchError:
            version = None
        if self._latest is None or self._latest[0] != version:
            try:
                self._latest = (version, latest_date(self.wb, self.model))
            except WorkbenchError as e:
                log.warning("cannot read the latest date: %s", e)
                self._latest = (version, None)
        return self._latest[1]

    def table_columns(self, table: str) -> set[str]:
        if table not in self._columns:
            dt_ = self.wb.lake.table(table)
            self._columns[table] = {f.name.lower() for f in dt_.schema().fields}
        return self._columns[table]

    def lexicon(self) -> Lexicon:
        """The model's words for the coverage check (rebuilt when the vocabulary is reloaded)."""
        vocabulary = self.vocabulary()
        if self._lexicon is None or self._lexicon.vocabulary != vocabulary:
            self._lexicon = Lexicon(self.model, vocabulary)
        return self._lexicon

    def offline(self) -> Planner:
        if self._offline is None:
            from workbench.assistant.planners.offline import OfflinePlanner

            self._offline = OfflinePlanner()
        return self._offline

    def llm(self) -> Any:
        if self._llm is None and self.settings.llm_configured:
            from workbench.assistant.planners.llm import LLMPlanner

            self._llm = LLMPlanner(self.settings)
        return self._llm

    # --- the graph ---------------------------------------------------------------------------
    def _build(self) -> Any:
        with warnings.catch_warnings():
            # langgraph's checkpoint module warns at import about a LangChain default we do not
            # use (no checkpointer); the user cannot act on it, so it must not reach stderr.
            # langchain_core adds its own "default" filter when imported: import it first so
            # ours goes in front of it.
            import langchain_core._api.deprecation  # noqa: F401

            warnings.filterwarnings("ignore", message=".*allowed_objects.*")
            from langgraph.graph import END, StateGraph

        # Any: LangGraph 1.x's add_node overloads do not accept a plain callable over a total=False TypedDict
        g: Any = StateGraph(AssistantState)
        for name, fn in self._nodes().items():
            g.add_node(name, fn)
        g.set_entry_point(ENTRY)
        for name, following in EDGES.items():
            if following is None:
                g.add_edge(name, END)
            elif name in BRANCHES:
                g.add_conditional_edges(name, self._after, {"next": following, "plan": "plan", "finish": "finish"})
            else:
                g.add_edge(name, following)
        return g.compile()

    def _nodes(self) -> dict[str, Callable[[AssistantState], dict[str, Any]]]:
        steps = (self.retrieve, self.plan, self.validate, self.execute, self.explain, self.finish)
        return {fn.__name__: _timed(fn.__name__, fn) for fn in steps}

    def _run_steps(self, state: AssistantState, limit: int) -> AssistantState:
        """The same graph (:data:`EDGES`, :data:`BRANCHES`) walked in process, without LangGraph.

        Why: an offline plan is deterministic and never loops back to a planner, and importing
        LangGraph (LangChain core, LangSmith) cost a third of a cold ``workbench ask``'s CPU
        (benchmarks/results/startup.md). With an LLM configured, LangGraph runs the graph.
        Updates replace keys, as LangGraph does for a state without reducers.
        """
        nodes = self._nodes()
        name: str | None = ENTRY
        for _ in range(limit):
            assert name is not None
            state = {**state, **nodes[name](state)}  # type: ignore[typeddict-item]
            following = EDGES[name]
            if following is None:
                return state
            name = (
                {"next": following, "plan": "plan", "finish": "finish"}[self._after(state)]
                if name in BRANCHES
                else following
            )
        raise PlanningError(f"the assistant did not finish within {limit} steps", "rephrase the question")

    def _after(self, state: AssistantState) -> str:
        if state.get("status"):
            return "finish"
        if state.get("retry"):
            return "plan"
        return "next"

    def _repair_or_fail(self, state: AssistantState, stage: str, err: Exception) -> dict[str, Any]:
        """Send the error back to the LLM planner, or end with it (offline plans are deterministic)."""
        errors = [*(state.get("errors") or []), _error(stage, err)]
        attempts = state.get("attempts", 0)
        plan = state.get("planned")
        repairable = (plan is None or plan.planner == "llm") and self.llm() is not None
        if repairable and attempts < self.settings.repair_attempts and not state.get("fell_back"):
            return {"errors": errors, "attempts": attempts + 1, "retry": True, "planned": None, "sql": None}
        terminal = isinstance(err, QueryRefused) and bool(getattr(err, "details", {}).get("terminal"))
        if repairable and not state.get("fell_back") and not terminal:
            # a model that cannot produce a valid plan (a small local one) is not the last word:
            # the offline planner answers, or declines, and the answer says so
            why = _error(stage, err)["message"]
            note = f"The language model's plan did not validate after {attempts} repair(s) ({why}); "
            note += "the offline planner answered instead."
            notes = [*(state.get("notes") or []), note]
            return {"errors": [], "retry": True, "fell_back": True, "planned": None, "sql": None, "notes": notes}
        return {"errors": errors, "retry": False, "status": "failed", "failure": _error(stage, err)}

    # --- nodes -------------------------------------------------------------------------------
    def retrieve(self, state: AssistantState) -> dict[str, Any]:
        index = self.index()
        if index is None:
            return {"sources": []}
        text = state["question"]
        history = state.get("history") or []
        if history and looks_like_follow_up(text):
            text = f"{history[-1].get('question', '')} {text}"
        hits = index.search(text, TOP_K * 10)
        allowed = self._source_filter(state.get("user"))
        return {"sources": [h for h in hits if allowed(h)][:TOP_K]}

    def _source_filter(self, user: str | None) -> Callable[[Source], bool]:
        """Summaries a user may read: a row-filtered user sees only summaries inside its filter.

        Summaries are computed over all rows; one that aggregates across a filtered column (a
        total over all regions) would leak other regions' figures, so it is dropped.
        """
        policy = policy_for_user(user, self.settings)
        if policy.all_access or not policy.row_filters:
            return lambda source: True
        filters = [(column, {str(v).lower() for v in values}) for column, values in policy.row_filters]

        def allowed(source: Source) -> bool:
            return all(
                column in source.meta and str(source.meta[column]).lower() in values for column, values in filters
            )

        return allowed

    def _context(self, state: AssistantState) -> PlanContext:
        return PlanContext(
            model=self.model,
            latest_date=self.latest_date(),
            vocabulary=self.vocabulary(),
            summaries=[s.text for s in state.get("sources") or []],
            history=state.get("history") or [],
            extra={"errors": state.get("errors") or []},
        )

    def plan(self, state: AssistantState) -> dict[str, Any]:
        question = state["question"]
        notes = list(state.get("notes") or [])
        base = {"retry": False, "notes": notes}
        if change_verb(question):
            err = QueryRefused(
                "the assistant only reads data: it cannot delete, change or create tables or rows",
                "ask a question about the data, e.g. 'revenue by region in 2024'",
            )
            return {**base, "status": "refused", "failure": _error("plan", err)}
        context = self._context(state)
        pending = answer_to_pending(question, state.get("history") or [])
        if pending is not None:
            question, context.extra["prefer_metric"] = pending
            base["asked"] = question
            notes.append(f"Your reply completes the question {question!r}.")
        llm = self.llm()
        if llm is not None and not state.get("fell_back"):
            try:
                plan = llm.plan(question, context)
                self.usage.add(llm.usage)
                llm.usage = Usage()
                return {**base, "planned": plan}
            except QueryRefused as e:
                # the model's refusal is not the last word: a small model refuses plain questions
                # (measured: 13 of 207 with Gemma 3 270M); the offline planner answers what it fully
                # understands and refuses what is outside the data itself
                self._collect(llm)
                notes.append(f"The language model declined ({e.message}); the offline planner answered instead.")
                base["fell_back"] = True
            except PlanningError as e:
                self._collect(llm)
                return self._repair_or_fail({**state, "planned": None}, "plan", e)
            except ServiceUnavailable as e:
                self._collect(llm)
                notes.append(f"The language model was unavailable ({e.message}); the offline planner answered instead.")
                base["fell_back"] = True
        follow = self._follow_up(state) if pending is None else None
        if follow is not None:
            return {**base, "planned": follow}
        try:
            plan = self.offline().plan(question, context)
        except QueryRefused as e:
            return {**base, "status": "refused", "failure": _error("plan", e)}
        except PlanningError as e:
            return {**base, "status": "failed", "failure": _error("plan", e)}
        return {**base, "planned": plan}

    def _collect(self, llm: Any) -> None:
        self.usage.add(llm.usage)
        llm.usage = Usage()

    def _follow_up(self, state: AssistantState) -> Plan | None:
        history = state.get("history") or []
        previous = next((h["semantic_query"] for h in reversed(history) if h.get("semantic_query")), None)
        if previous is None:
            return None
        from workbench.semantic.query import SemanticQuery

        edited = resolve_follow_up(
            state["question"], SemanticQuery.model_validate(previous), self.model, self.vocabulary()
        )
        if edited is None:
            return None
        return Plan(
            query=edited,
            period=edited.describe_period(),
            confidence=0.9,
            planner="memory",
            notes=["follow-up of the previous question in this session"],
        )

    def validate(self, state: AssistantState) -> dict[str, Any]:
        plan = state["planned"]
        assert plan is not None
        try:
            if plan.query is not None:
                # every part of the question must be in the plan, whichever planner made it
                compiled = compile_query(plan.query, self.model, self.vocabulary())
                asked = state.get("asked") or state["question"]
                require(asked, plan.query, self._context(state), self.lexicon())
                sql, kinds = compiled.sql, dict(compiled.columns)
            else:
                sql, kinds = str(plan.sql), {}
            self._check_sql(sql)
            if plan.query is None:  # SQL written by the model: the same check, on the statement
                require_sql(state.get("asked") or state["question"], sql, self._context(state), self.lexicon())
        except QueryRefused as e:
            if getattr(e, "details", {}).get("terminal"):
                return {"status": "refused", "failure": _error("validate", e)}
            return self._repair_or_fail(state, "validate", e)
        except PlanningError as e:  # a part of the question the plan dropped: show nothing
            return self._repair_or_fail(state, "validate", e)
        except (WorkbenchError, ValueError) as e:
            return self._repair_or_fail(state, "validate", e)
        return {"sql": sql, "columns_kind": kinds, "retry": False}

    def _check_sql(self, sql: str) -> None:
        """Read-only guard, then every column must exist in the tables read (no hallucinations)."""
        from workbench.sql.guard import check_sql

        try:
            tree = sqlglot.parse_one(sql, read="duckdb")
        except (sqlglot.errors.ParseError, sqlglot.errors.TokenError) as e:
            raise QueryRefused(f"the SQL does not parse: {str(e).splitlines()[0]}", "write one valid SELECT") from e
        if not isinstance(tree, exp.Query):
            raise QueryRefused(
                f"the assistant only runs read-only queries; refused a {tree.key.upper()} statement",
                "ask a question about the data instead",
                terminal=True,
            )
        guarded = check_sql(sql, self.wb.tables())
        known: set[str] = set()
        for table in guarded.tables:
            known |= self.table_columns(table)
        aliases = {a.alias.lower() for a in guarded.expression.find_all(exp.Alias) if a.alias}
        for cte in guarded.expression.find_all(exp.CTE):
            aliases |= {c.name.lower() for c in (cte.args.get("alias") or exp.TableAlias()).columns}
        for table_alias in guarded.expression.find_all(exp.TableAlias):
            aliases |= {c.name.lower() for c in table_alias.columns}
        unknown = sorted(
            {
                c.name
                for c in guarded.expression.find_all(exp.Column)
                if c.name and c.name.lower() not in known | aliases
            }
        )
        if unknown:
            from workbench.errors import unknown_name

            raise unknown_name("column", unknown[0], sorted(known))

    def execute(self, state: AssistantState) -> dict[str, Any]:
        sql = state.get("sql")
        assert sql is not None, "validate sets the SQL before execute"
        try:
            result = self.wb.sql(sql, user=state.get("user"))
        except (QueryTimeout, ServiceUnavailable, DataError) as e:
            return {"status": "failed", "failure": _error("execute", e)}
        except (QueryRefused, QueryFailed) as e:
            return self._repair_or_fail(state, "execute", e)
        return {"result": result, "retry": False}

    def _formats(self, columns: list[str], kinds: dict[str, str]) -> dict[str, str]:
        formats: dict[str, str] = {}
        for col in columns:
            # a comparison's two periods, a share's whole: formatted as their metric
            base = col.removesuffix("_current").removesuffix("_previous").removesuffix("_total")
            if col in self.model.metrics:
                formats[col] = self.model.metrics[col].format
            elif base != col and base in self.model.metrics:
                formats[col] = self.model.metrics[base].format
            elif kinds.get(col) in ("comparison", "share") or col.endswith(("_pct", "_share", "growth")):
                formats[col] = "percent"
            elif kinds.get(col) == "metric":
                formats[col] = "number"
        return formats

    def _additive(self, columns: list[str], sql: str | None, semantic: bool) -> frozenset[str]:
        """Result columns whose rows add up to a total: a metric defined as SUM or COUNT.

        From the semantic model's definitions for a semantic query, else from the outer SELECT of
        the SQL that ran; a column neither can vouch for gets no total.
        """
        out: set[str] = set()
        if semantic:
            for col in columns:
                base = col.removesuffix("_current").removesuffix("_previous")
                metric = self.model.metrics.get(col) or self.model.metrics.get(base)
                if metric is not None and metric.additive:
                    out.add(col)
            return frozenset(out)
        try:
            tree = sqlglot.parse_one(sql or "", read="duckdb")
        except (sqlglot.errors.ParseError, sqlglot.errors.TokenError):
            return frozenset()
        if isinstance(tree, exp.Select):
            out = {e.alias_or_name for e in tree.expressions if is_additive(e)}
        return frozenset(c for c in columns if c in out)

    def explain(self, state: AssistantState) -> dict[str, Any]:
        result = state["result"]
        plan = state["planned"]
        assert plan is not None
        df = result.df
        columns = [str(c) for c in df.columns]
        period = plan.query.describe_period() if plan.query is not None else plan.period
        sources = state.get("sources") or []
        notes = list(state.get("notes") or []) + [n for n in plan.notes if n.startswith("The ")]
        scope = period
        if plan.query is not None and plan.query.filters:
            scope += ", " + "; ".join(
                f"{f.dimension.replace('_', ' ')} {'not ' if f.op in ('!=', 'not in') else ''}"
                + ", ".join(map(str, f.values))
                for f in plan.query.filters
            )
        rank = ""
        if plan.query is not None and plan.query.order and plan.query.limit:
            rank = "highest" if plan.query.order[0].direction == "desc" else "lowest"
        formats = self._formats(columns, state.get("columns_kind") or {})
        cited = cited_sources(plan.query, sources)
        reading = interpret(plan.query, self.model) if plan.query is not None else _sql_reading(plan)
        summable = self._additive(columns, state.get("sql"), plan.query is not None)
        narrative = describe_result(df, formats, scope, cited, notes, rank=rank, additive=summable)
        narrative = self._llm_narrative(state, df, cited, reading, period, notes) or narrative
        answer = Answer(
            question=state["question"],
            answer=narrative,
            interpretation=reading,
            sql=state.get("sql"),
            semantic_query=plan.query.model_dump(mode="json", exclude_none=True) if plan.query else None,
            columns=columns,
            rows=result.rows,
            chart=chart_spec(columns, df, state["question"]),
            sources=cited + [s for s in sources if s not in cited],  # [n] in the narrative = n-th source
            route=result.route or result.engine,
            cached=bool(result.cached),
            period=period,
            planner=plan.planner,
            notes=notes + [n for n in plan.notes if n not in notes],
            session=state.get("session"),
        )
        return {"answer": answer, "status": ""}

    def _llm_narrative(
        self, state: AssistantState, df: Any, cited: list[Source], reading: str, period: str, notes: list[str]
    ) -> str | None:
        """The model's narrative when every number in it is in the result or a cited summary; else None.

        A weak model invents figures; the template (always computed) is shown instead and a note
        says so. Notes the template carries are appended so a caveat is never lost.
        """
        llm = self.llm()
        plan = state.get("planned")
        if llm is None or state.get("fell_back") or not (self.settings.llm_narrative and self.settings.llm_send_values):
            return None
        if plan is None or plan.query is None:  # custom SQL results are described by the template only
            return None
        from workbench.assistant.llm.narrate import write_narrative

        summaries = [s.text for s in cited]
        try:
            reply = write_narrative(
                llm.client, llm.choose_model(state["question"]), state["question"], reading, df, summaries
            )
        except WorkbenchError as e:
            log.info("LLM narrative unavailable (%s): the template is shown", e)
            return None
        self.usage.add(reply.usage)
        given = " ".join([state.get("asked") or state["question"], reading, period])
        bad = unsupported_numbers(reply.text, df, cited, given=given)
        if bad or not reply.text.strip():
            notes.append(
                f"The language model's narrative cited figures not in the result ({', '.join(bad[:3])}); "
                "the template narrative is shown."
            )
            return None
        text = " ".join(reply.text.split())
        return text + (" Note: " + " ".join(notes) if notes else "")

    def finish(self, state: AssistantState) -> dict[str, Any]:
        failure = state.get("failure") or {"type": "planning_error", "message": "no answer", "hint": ""}
        status = state.get("status") or "failed"
        clarify = (failure.get("details") or {}).get("clarify")
        if clarify:  # a question back, with its choices: the next short reply completes it
            text = f"{failure['message'][:1].upper()}{failure['message'][1:]} ({failure.get('hint', '')})"
            failure = {**failure, "hint": ""}
        elif status == "refused":
            text = f"I can't answer that: {failure['message']}."
        else:
            tried = state.get("attempts", 0)
            text = f"I could not answer this question: {failure['message']}."
            if tried:
                text += f" (after {tried} repair attempt{'s' if tried > 1 else ''})"
        if failure.get("hint"):
            text += f" Hint: {failure['hint']}"
        notes = list(state.get("notes") or [])
        if notes:
            text += " Note: " + " ".join(notes)
        sources = list(state.get("sources") or [])
        partly = clarify or (failure.get("details") or {}).get("not_understood")
        if status != "refused" and failure.get("type") == "planning_error" and sources and not partly:
            # grounded context still helps when the question could not become a query
            text += " Related facts: " + " ".join(f"[{i}] {s.text}" for i, s in enumerate(sources[:2], 1))
        answer = Answer(
            question=state["question"],
            answer=text,
            sources=list(state.get("sources") or []),
            status="refused" if status == "refused" else "failed",
            error=_public(failure),
            notes=notes,
            session=state.get("session"),
            planner=(state.get("planned").planner if state.get("planned") else ""),  # type: ignore[union-attr]
        )
        return {"answer": answer}

    # --- entry point -------------------------------------------------------------------------
    def ask(self, question: str, session: str | None = None, user: str | None = None) -> Answer:
        start = time.perf_counter()
        self.usage = Usage()
        history = self.sessions.history(session) if session else []
        state: AssistantState = {
            "question": question.strip(),
            "session": session,
            "user": user,
            "history": history,
            "errors": [],
            "attempts": 0,
            "notes": [],
            "timings": {},
        }
        limit = 12 + 4 * self.settings.repair_attempts
        if self.settings.llm_configured:
            final = self.graph.invoke(state, {"recursion_limit": limit})
        else:
            final = self._run_steps(state, limit)
        answer: Answer = final["answer"]
        answer.timings = dict(final.get("timings") or {})
        answer.timings["total"] = (time.perf_counter() - start) * 1000
        answer.tokens = self.usage.to_dict()
        answer.cost_usd = self.usage.cost_usd
        self.record(answer, user)
        clarify = ((answer.error or {}).get("details") or {}).get("clarify")
        if session and clarify:  # the next short reply may answer it (see answer_to_pending)
            self.sessions.append(
                session,
                {"question": final.get("asked") or answer.question, "pending": clarify, "at": _now()},
            )
        if session and answer.ok:
            self.sessions.append(
                session,
                {
                    "question": final.get("asked") or answer.question,
                    "semantic_query": answer.semantic_query,
                    "sql": answer.sql,
                    "period": answer.period,
                    "at": dt.datetime.now(dt.UTC).isoformat(),
                },
            )
        return answer

    def record(self, answer: Answer, user: str | None) -> None:
        """The assistant's record step: every question is audited and counted once, including
        ones refused before any SQL ran (the SQL it ran was recorded by the query pipeline)."""
        record_answer(self.settings, user or self.settings.user, answer, answer.timings["total"] / 1000)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _sql_reading(plan: Plan) -> str:
    """A SQL plan has no semantic query to read back: say so, and name its period."""
    return f"Custom SQL written by the {plan.planner or 'planner'} planner, {plan.period} (see the SQL)"


_assistants: weakref.WeakKeyDictionary[Any, Assistant] = weakref.WeakKeyDictionary()


def assistant_for(wb: QueryRunner) -> Assistant:
    """One Assistant per workbench (the semantic model, vocabulary and index are read once)."""
    try:
        found = _assistants.get(wb)
    except TypeError:
        found = None
    if found is None:
        found = Assistant(wb)
        try:
            _assistants[wb] = found
        except TypeError:
            pass
    return found


def forget_index(wb: QueryRunner) -> None:
    """Make the assistant of ``wb`` (if any) reload the summary index and vocabulary."""
    found = _assistants.get(wb)
    if found is not None:
        found._index = None
        found._vocabulary = None
