"""One interface for every SQL engine (ibis-style ``Backend``): capabilities, not names.

An engine is asked ``supports(tree)`` before it runs anything; ``None`` means yes, a string
is the reason why not (it names the construct). ``suits(tree, scans)`` says whether it is a good
place for the query, which only the automatic choice asks. ``workbench.sql.engine_choice`` and the query
pipeline choose by capability and estimated cost; nothing tests an engine's name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, cast

import pandas as pd
from sqlglot import exp

from workbench.sql.scan import TableScan

#: capability: ``prepare`` is a pure function of the tree, so a plan may keep its result
#: (an engine without it, e.g. one that registers a split plan in ``prepare``, is called each time)
PURE_PREPARE = "pure_prepare"


@dataclass(frozen=True)
class Limits:
    """Row and time limits applied to one query."""

    row_limit: int
    timeout_s: float


class Engine(ABC):
    """A place where guarded, pruned SQL runs and returns a pandas DataFrame."""

    #: stable identifier used in results and ``--engine``
    name: ClassVar[str]
    #: what the engine can do, e.g. {"window_functions", "scale_out"}
    capabilities: ClassVar[frozenset[str]] = frozenset()

    def supports(self, tree: exp.Expression) -> str | None:
        """``None`` if the engine answers ``tree`` correctly, else the reason naming the construct."""
        return None

    def suits(self, tree: exp.Expression, scans: dict[str, TableScan]) -> str | None:
        """``None`` if the engine is a good place for ``tree`` over ``scans``, else why not.

        Asked only when choosing an engine for ``--engine auto`` (``supports`` is about
        correctness and is asked always): an engine may run a query correctly and still be the
        wrong place for it, e.g. a cluster that would bring every row back to one process.
        """
        return None

    def prepare(self, tree: exp.Expression) -> exp.Expression:
        """Engine-specific rewrites of an accepted tree (default: unchanged)."""
        return tree

    @abstractmethod
    def execute(self, tree: exp.Expression, scans: dict[str, TableScan], limits: Limits) -> pd.DataFrame:
        """Run ``tree`` with each lake table bound to its pruned files."""

    @abstractmethod
    def explain(self, tree: exp.Expression, scans: dict[str, TableScan]) -> str:
        """The engine's plan for ``tree`` (text)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and clients."""


def with_row_limit(tree: exp.Expression, row_limit: int) -> exp.Expression:
    """Cap the rows a query returns at ``row_limit + 1`` (the extra row detects truncation)."""
    cap = row_limit + 1
    limit = tree.args.get("limit")
    if limit is not None:
        value = limit.expression if isinstance(limit, exp.Limit) else None
        if isinstance(value, exp.Literal) and value.is_int and int(value.this) <= cap:
            return tree
    if isinstance(tree, exp.Select) and limit is None:
        return tree.copy().limit(cap)
    query = cast(exp.Query, tree.copy())  # a SELECT or a set operation: both can be a subquery
    return exp.select("*").from_(query.subquery("_limited")).limit(cap)
