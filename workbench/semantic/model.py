"""The semantic model: metrics, dimensions, joins and synonyms, loaded from YAML.

The model sits between language and SQL: planners speak in its names, the compiler turns
them into SQL. A user points the workbench at their own tables by writing a file of the same
shape as ``retail.yaml`` (setting ``semantic_model``); nothing else hard-codes table names.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import sqlglot
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlglot import exp

from workbench.errors import ConfigError, unknown_name

DEFAULT_MODEL = Path(__file__).with_name("retail.yaml")
#: file in the workbench home naming the model chosen with ``workbench model use``
ACTIVE_FILE = "active_model"


class TableDef(BaseModel):
    alias: str
    key: str | None = None
    partitions: list[str] = Field(default_factory=list)


class JoinDef(BaseModel):
    """``left`` reaches ``right`` on ``left.column = right.right_column`` (``on`` in YAML 1.1 is a boolean).

    ``right_column`` defaults to ``column``: most stars share the key's name; TPC-style schemas
    prefix every column with its table (``l_orderkey`` -> ``o_orderkey``) and need both names.
    """

    model_config = ConfigDict(extra="forbid")

    left: str
    right: str
    column: str
    right_column: str | None = None

    @property
    def on(self) -> str:
        return self.column

    @property
    def key(self) -> str:
        """The column of ``right`` that ``column`` references."""
        return self.right_column or self.column


class TimeDef(BaseModel):
    """Columns of the fact table that hold the date and its partition parts."""

    date: str = "date"
    year: str = "year"
    month: str = "month"


def is_additive(expression: exp.Expression) -> bool:
    """Whether the sum of this aggregate over groups is its value over their union.

    SUM and COUNT are; AVG, COUNT(DISTINCT), MIN/MAX and ratios are not (revenue per customer
    by region does not add up to revenue per customer). Totals and shares of a total are only
    meaningful for an additive metric.
    """
    node = expression.unalias() if isinstance(expression, exp.Alias) else expression
    if isinstance(node, exp.Sum):
        return True
    return isinstance(node, exp.Count) and not isinstance(node.this, exp.Distinct)


class MetricDef(BaseModel):
    """An aggregate expression (``sql``) over ``table``; or growth of another metric."""

    model_config = ConfigDict(extra="forbid")

    name: str = ""
    sql: str | None = None
    table: str | None = None
    growth_of: str | None = None
    format: Literal["number", "currency", "percent", "count", "fraction"] = "number"
    description: str = ""
    synonyms: list[str] = Field(default_factory=list)

    @property
    def additive(self) -> bool:
        """SUM or COUNT: its values over groups add up to its value over all of them."""
        tree = self._tree()
        return tree is not None and is_additive(tree)

    @property
    def counts(self) -> bool:
        """A COUNT (distinct too): "how many ..." is answered by it, and it reads as a total."""
        return isinstance(self._tree(), exp.Count)

    @property
    def counts_distinct(self) -> bool:
        """COUNT(DISTINCT key): members of an entity (customers who bought), not rows."""
        tree = self._tree()
        return isinstance(tree, exp.Count) and tree.find(exp.Distinct) is not None

    def _tree(self) -> exp.Expression | None:
        if not self.sql:
            return None
        try:
            return sqlglot.parse_one(self.sql, read="duckdb")
        except (sqlglot.errors.ParseError, sqlglot.errors.TokenError):
            return None

    @model_validator(mode="after")
    def _has_definition(self) -> MetricDef:
        if not self.sql and not self.growth_of:
            raise ValueError("a metric needs `sql` or `growth_of`")
        return self


class DimensionDef(BaseModel):
    """A column (or a per-row expression) of ``table`` to group or filter by."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = ""
    table: str | None = None
    column: str | None = None
    sql: str | None = None
    #: same meaning available on other tables: {table: column}
    also: dict[str, str] = Field(default_factory=dict)
    #: dimensions always grouped alongside this one (month needs year)
    with_: list[str] = Field(default_factory=list, alias="with")
    kind: Literal["category", "time", "number", "date"] = "category"
    unit: Literal["fraction"] | None = None
    vocabulary: bool = False
    synonyms: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _has_definition(self) -> DimensionDef:
        if not self.column and not self.sql:
            raise ValueError("a dimension needs `column` or `sql`")
        return self

    @property
    def derived(self) -> bool:
        return self.sql is not None


class SemanticModel(BaseModel):
    """Metrics, dimensions and joins over one fact table and its dimension tables."""

    name: str = "model"
    fact: str
    tables: dict[str, TableDef]
    joins: list[JoinDef] = Field(default_factory=list)
    time: TimeDef = TimeDef()
    metrics: dict[str, MetricDef]
    dimensions: dict[str, DimensionDef]

    @model_validator(mode="after")
    def _link(self) -> SemanticModel:
        if self.fact not in self.tables:
            raise ValueError(f"fact table {self.fact!r} is not listed under `tables`")
        for name, m in self.metrics.items():
            m.name = name
            m.table = m.table or self.fact
            if m.table not in self.tables:
                raise ValueError(f"metric {name!r}: unknown table {m.table!r}")
            if m.growth_of and m.growth_of not in self.metrics:
                raise ValueError(f"metric {name!r}: growth_of names unknown metric {m.growth_of!r}")
        for name, d in self.dimensions.items():
            d.name = name
            d.table = d.table or self.fact
            if d.table not in self.tables:
                raise ValueError(f"dimension {name!r}: unknown table {d.table!r}")
        for j in self.joins:
            for t in (j.left, j.right):
                if t not in self.tables:
                    raise ValueError(f"join {j.left}->{j.right}: unknown table {t!r}")
        return self

    # --- lookups -------------------------------------------------------------------------
    def on_file(self, metric: str) -> bool:
        """A metric over a table other than the facts ("customers on file"): it has no period."""
        m = self.metrics.get(metric)
        return m is not None and m.table != self.fact

    def metric(self, name: str) -> MetricDef:
        found = self.metrics.get(name) or self.metrics.get(self._by_synonym(name, self.metrics) or "")
        if found is None:
            raise unknown_name("metric", name, list(self.metrics))
        return found

    def dimension(self, name: str) -> DimensionDef:
        found = self.dimensions.get(name) or self.dimensions.get(self._by_synonym(name, self.dimensions) or "")
        if found is None:
            raise unknown_name("dimension", name, list(self.dimensions))
        return found

    def join_for(self, table: str) -> JoinDef:
        for j in self.joins:
            if j.left == self.fact and j.right == table:
                return j
        raise ConfigError(f"no join from {self.fact!r} to {table!r} in the semantic model", "add one under `joins`")

    def column_on(self, dim: DimensionDef, table: str) -> str | None:
        """The column holding ``dim`` on ``table`` (its own table or one listed in ``also``)."""
        if dim.table == table:
            return dim.column
        return dim.also.get(table)

    @staticmethod
    def _by_synonym(name: str, pool: dict[str, Any]) -> str | None:
        wanted = name.strip().lower().replace("_", " ")
        for key, item in pool.items():
            if key.replace("_", " ") == wanted or wanted in (s.lower() for s in item.synonyms):
                return str(key)
        return None

    # --- loading -------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> SemanticModel:
        """Read and validate a model file; errors say which entry is wrong."""
        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text())
        except FileNotFoundError as e:
            raise ConfigError(f"semantic model file {path} does not exist", "fix the `semantic_model` setting") from e
        except yaml.YAMLError as e:
            raise ConfigError(f"semantic model {path} is not valid YAML: {e}", "fix the YAML syntax") from e
        try:
            return cls.model_validate(raw)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(
                f"semantic model {path} is invalid at {where}: {first['msg']}",
                "compare with workbench/semantic/retail.yaml",
            ) from e


@lru_cache(maxsize=8)
def _load_cached(path: str) -> SemanticModel:
    return SemanticModel.load(path)


def load_model(path: str | Path | None = None, settings: Any = None) -> SemanticModel:
    """The model at ``path``, else the ``semantic_model`` setting, else the active one, else retail."""
    if path is None and settings is not None:
        path = getattr(settings, "semantic_model", None)
    if path is None and settings is not None:
        path = active_model_path(settings)
    return _load_cached(str(Path(path or DEFAULT_MODEL).resolve()))


# --- the active model (``workbench model use``) ------------------------------------------------------
def active_model_path(settings: Any) -> str | None:
    """The model chosen with ``workbench model use`` (a path stored in the workbench home), if any."""
    home = getattr(settings, "home", None)  # partial settings objects (tests, embedding apps) have none
    if home is None:
        return None
    marker = Path(home).expanduser() / ACTIVE_FILE  # not home_path, which creates the folder
    try:
        text = marker.read_text().strip()
    except OSError:
        return None
    return text or None


def use_model(path: str | Path, settings: Any, known_tables: set[str] | None = None) -> SemanticModel:
    """Validate ``path`` (and that its tables exist) and make it the active model."""
    resolved = Path(path).expanduser().resolve()
    model = SemanticModel.load(resolved)
    if known_tables is not None:
        missing = sorted(set(model.tables) - known_tables)
        if missing:
            raise ConfigError(
                f"the model names table {missing[0]!r}, which is neither a lake table nor registered",
                "register it first (`workbench register`) or fix `tables:` in the model",
            )
    settings.home_path.mkdir(parents=True, exist_ok=True)
    (settings.home_path / ACTIVE_FILE).write_text(str(resolved) + "\n")
    _load_cached.cache_clear()
    return model


def reset_model(settings: Any) -> None:
    """Back to the ``semantic_model`` setting or the packaged retail model."""
    (settings.home_path / ACTIVE_FILE).unlink(missing_ok=True)
    _load_cached.cache_clear()
