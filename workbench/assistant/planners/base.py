"""The planner interface: question in, :class:`Plan` out.

Every planner (the offline parser, the LLM) returns the same :class:`Plan` so the assistant
graph validates, executes and explains answers the same way whichever planner produced them.
A plan carries a :class:`~workbench.semantic.query.SemanticQuery` whenever the semantic model
can express the question (one compiler, one set of metric definitions), and validated SQL only
for what the model cannot express.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, model_validator

from workbench.semantic.query import SemanticQuery

if TYPE_CHECKING:
    from workbench.semantic.model import SemanticModel


class Plan(BaseModel):
    """What to run for a question, and how sure the planner is."""

    query: SemanticQuery | None = None
    #: SQL over the lake tables, for questions the semantic model cannot express
    sql: str | None = None
    #: the period the answer covers, in words ("Q4 2023", "2024-10-01 .. 2024-12-31")
    period: str = "all data"
    confidence: float = Field(default=1.0, ge=0.0, le=1.0)
    notes: list[str] = Field(default_factory=list)
    #: name of the planner that produced it ("offline", "llm", ...)
    planner: str = ""

    @model_validator(mode="after")
    def _one_target(self) -> Plan:
        if (self.query is None) == (self.sql is None):
            raise ValueError("a plan holds exactly one of `query` or `sql`")
        return self


@dataclass
class PlanContext:
    """What a planner may consult besides the question.

    ``latest_date`` anchors relative dates ("last year", "this month") to the data, not the
    wall clock. ``vocabulary`` maps a dimension name to its known values (read from the lake,
    see :mod:`workbench.semantic.vocabulary`); ``summaries`` are retrieved text facts.
    """

    model: SemanticModel
    latest_date: dt.date | None = None
    vocabulary: Mapping[str, Sequence[str]] = field(default_factory=dict)
    summaries: Sequence[str] = field(default_factory=list)
    history: Sequence[Mapping[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


class Planner(ABC):
    """Turns a question into a :class:`Plan`, or raises PlanningError/QueryRefused."""

    name: str = "planner"

    @abstractmethod
    def plan(self, question: str, context: PlanContext) -> Plan:
        """Plan ``question``; raise :class:`~workbench.errors.PlanningError` when unsure."""
