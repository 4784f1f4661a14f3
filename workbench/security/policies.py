"""Access policies (``policies.yaml``): who may see which tables, columns and rows.

A policy is enforced by rewriting the query tree before any engine sees it, never by
filtering results afterwards: every reference to a real table, in any scope (subqueries,
CTE bodies, UNION branches, joins, lateral and derived tables), is replaced by a filtered
derived table ``(SELECT <allowed columns> FROM sales WHERE region IN ('North')) AS sales``.
Whatever shape the SQL takes, the only rows it can reach are the filtered ones, and the only
columns are the allowed ones (``SELECT *`` therefore expands to allowed columns only).

CTE names are renamed to private names first, so a CTE called ``sales`` can never be
confused with the real table: a reference that resolves to the CTE keeps pointing at
user-defined rows (themselves built from filtered tables), and a reference that resolves to
the real table is wrapped. Misjudging which is which can change an answer but never leak.

For restricted roles the rewrite also fails closed: unknown tables, table functions
(``read_parquet``, ``query_table``), non-SELECT statements (``SUMMARIZE``, ``PIVOT`` as a
statement) and tables that lack the filtered column are refused with :class:`AccessDenied`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlglot import exp

from workbench.config import Settings, get_settings
from workbench.errors import AccessDenied, ConfigError, unknown_name
from workbench.lake.schema import TABLES

#: columns of the reference retail tables (retail-schema.md), used when the caller has no catalog
RETAIL_SCHEMA: dict[str, list[str]] = {name: list(schema.names) for name, schema in TABLES.items()}

#: personal fields when policies.yaml does not list its own
DEFAULT_PERSONAL_FIELDS: dict[str, list[str]] = {"customers": ["customer_name", "email"]}

#: table functions that read no stored data and stay allowed for restricted roles
_SAFE_TABLE_FUNCTIONS = (exp.GenerateSeries, exp.Unnest)


# --- the YAML ------------------------------------------------------------------------------------


class RowFilter(BaseModel):
    """Rows of any table holding ``column`` are limited to ``values``."""

    model_config = ConfigDict(extra="forbid")
    column: str
    values: list[str | int | float] = Field(min_length=1)


class RoleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str = ""
    all_access: bool = Field(False, description="no rewriting at all (administrators)")
    row_filters: list[RowFilter] = []
    denied_tables: list[str] = []
    denied_columns: dict[str, list[str]] = {}
    personal_fields: bool = Field(False, description="may see the personal fields listed at the top level")
    unfiltered_tables: list[str] = Field(
        default_factory=lambda: ["products"],
        description="tables without the filtered column that may still be read (e.g. the product catalogue)",
    )


class UserSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: str
    name: str = ""


class PoliciesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    personal_fields: dict[str, list[str]] = Field(default_factory=lambda: dict(DEFAULT_PERSONAL_FIELDS))
    roles: dict[str, RoleSpec]
    users: dict[str, UserSpec]


# --- effective policy -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """Who is asking: from ``--user``, the dashboard login, or ``workbench.connect(user=...)``."""

    user: str
    role: str


@dataclass(frozen=True)
class Policy:
    """The effective rules for one identity, normalised (lower-case names) and hashable."""

    identity: Identity
    all_access: bool = False
    row_filters: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    denied_tables: frozenset[str] = frozenset()
    denied_columns: frozenset[tuple[str, str]] = frozenset()  # (table, column)
    unfiltered_tables: frozenset[str] = frozenset()

    @property
    def restricted(self) -> bool:
        return not self.all_access

    def rules(self) -> dict[str, Any]:
        """The rules as plain data (for fingerprints, audit records and ``--json``)."""
        return {
            "all_access": self.all_access,
            "row_filters": [[c, list(v)] for c, v in self.row_filters],
            "denied_tables": sorted(self.denied_tables),
            "denied_columns": sorted([t, c] for t, c in self.denied_columns),
            "unfiltered_tables": sorted(self.unfiltered_tables),
        }


def policy_fingerprint(policy: Policy) -> str:
    """A stable short hash of what a policy lets through, for result-cache keys.

    Two users with identical rules share cached results; any rule change gives a new key.
    """
    blob = json.dumps(policy.rules(), sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


ADMIN = Policy(Identity("admin", "admin"), all_access=True)


class PolicySet:
    """All users and roles of one policies file."""

    def __init__(self, spec: PoliciesFile, source: str = "<memory>") -> None:
        self.spec = spec
        self.source = source
        for user, u in spec.users.items():
            if u.role not in spec.roles:
                raise ConfigError(
                    f"user {user!r} in {source} has unknown role {u.role!r}",
                    f"define the role under `roles:`; known roles: {', '.join(sorted(spec.roles))}",
                )

    def identity(self, user: str) -> Identity:
        spec = self.spec.users.get(user)
        if spec is None:
            raise unknown_name("user", user, self.spec.users)
        return Identity(user, spec.role)

    def policy_for(self, user: str) -> Policy:
        """The effective policy of ``user``; unknown users raise NotFoundError with did-you-mean."""
        ident = self.identity(user)
        role = self.spec.roles[ident.role]
        if role.all_access:
            return Policy(ident, all_access=True)
        denied_cols = {(t.lower(), c.lower()) for t, cols in role.denied_columns.items() for c in cols}
        if not role.personal_fields:
            denied_cols |= {(t.lower(), c.lower()) for t, cols in self.spec.personal_fields.items() for c in cols}
        return Policy(
            identity=ident,
            row_filters=tuple((f.column.lower(), tuple(f.values)) for f in role.row_filters),
            denied_tables=frozenset(t.lower() for t in role.denied_tables),
            denied_columns=frozenset(denied_cols),
            unfiltered_tables=frozenset(t.lower() for t in role.unfiltered_tables),
        )


def load_policies(path: str | Path | None = None, settings: Settings | None = None) -> PolicySet | None:
    """Read and validate policies.yaml (``WORKBENCH_POLICIES`` or ./policies.yaml); None when absent."""
    if path is None:
        path = (settings or get_settings()).policies_path()
        if path is None:
            return None
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot read policies file {path}: {e}", "fix the YAML or WORKBENCH_POLICIES") from e
    try:
        spec = PoliciesFile.model_validate(raw or {})
    except ValidationError as e:
        raise ConfigError(f"invalid policies file {path}: {e}", "see policies.yaml at the repository root") from e
    return PolicySet(spec, str(path))


def policy_for_user(user: str | None = None, settings: Settings | None = None) -> Policy:
    """The policy of ``user`` (default ``settings.user``); everything is allowed without a policies file."""
    s = settings or get_settings()
    name = user or s.user
    policies = load_policies(settings=s)
    if policies is None:
        return Policy(Identity(name, "admin"), all_access=True)
    return policies.policy_for(name)


# --- the rewrite ------------------------------------------------------------------------------------


def is_rollup(name: str) -> bool:
    return name.startswith(("rollups/", "rollup_"))


def apply_policy(
    expr: exp.Expression,
    policy: Policy,
    schema: Mapping[str, Iterable[str]] | None = None,
) -> exp.Expression:
    """Return ``expr`` rewritten so it can only read what ``policy`` allows (a new tree).

    ``schema`` maps table names to their columns (default: the retail tables). A rollup
    missing from it is still filtered (the query then fails if it lacks the column: closed).
    """
    if policy.all_access:
        return expr
    if not isinstance(expr, exp.Query):
        raise AccessDenied(
            f"{type(expr).__name__.upper()} statements are not allowed under the {policy.identity.role!r} policy",
            "write a SELECT query",
        )
    tables = {k.lower(): [c.lower() for c in v] for k, v in (schema or RETAIL_SCHEMA).items()}
    tree = expr.copy()
    _rename_ctes(tree)
    real = [t for t in tree.find_all(exp.Table) if not t.meta.get("cte_ref")]
    _check_columns(tree, real, policy, tables)
    for table in real:
        _wrap_table(table, policy, tables)
    return tree


def apply_policy_sql(
    sql: str, policy: Policy, dialect: str = "duckdb", schema: Mapping[str, Iterable[str]] | None = None
) -> str:
    """Parse one statement, apply the policy and render it back in ``dialect``."""
    import sqlglot
    from sqlglot.errors import ParseError, TokenError

    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except (ParseError, TokenError) as e:
        raise AccessDenied(f"cannot parse the query: {e}", "fix the SQL syntax") from e
    if len(statements) != 1:
        raise AccessDenied("exactly one statement is allowed per query", "remove the extra statements")
    return str(apply_policy(statements[0], policy, schema).sql(dialect=dialect))


def _norm(name: str) -> str:
    return name.lower()


def _rename_ctes(tree: exp.Expression) -> None:
    """Give every CTE a private name and repoint the references that resolve to it.

    After this no CTE shares a name with a real table, so the wrapper's inner ``FROM sales``
    can only mean the real table.
    """
    counter = 0
    for with_ in list(tree.find_all(exp.With)):
        for cte in with_.expressions:
            counter += 1
            cte.meta["private_name"] = f"__wb_cte_{counter}_{_norm(cte.alias)}"[:60]
    for table in list(tree.find_all(exp.Table)):
        cte = _resolve_cte(table)
        if cte is not None:
            table.set("this", exp.to_identifier(cte.meta["private_name"]))
            if not table.args.get("alias"):
                table.set("alias", exp.TableAlias(this=exp.to_identifier(cte.alias_or_name)))
            table.meta["cte_ref"] = True
    for cte in tree.find_all(exp.CTE):
        alias = cte.args.get("alias")
        new_alias = exp.TableAlias(this=exp.to_identifier(cte.meta["private_name"]))
        if isinstance(alias, exp.TableAlias) and alias.columns:
            new_alias.set("columns", [c.copy() for c in alias.columns])
        cte.set("alias", new_alias)


def _resolve_cte(table: exp.Table) -> exp.CTE | None:
    """The CTE an unqualified table name refers to at its position, or None for a real table."""
    if table.args.get("db") or table.args.get("catalog") or not isinstance(table.this, exp.Identifier):
        return None
    name = _norm(table.name)
    child: exp.Expression = table
    node = table.parent
    while node is not None:
        if isinstance(node, exp.With):
            ctes = node.expressions
            idx = next((i for i, c in enumerate(ctes) if c is child), len(ctes))
            visible = ctes[: idx + 1] if node.args.get("recursive") else ctes[:idx]
            for cte in reversed(visible):
                if isinstance(cte, exp.CTE) and _norm(cte.alias) == name:
                    return cte
        else:
            with_ = node.args.get("with_")
            if isinstance(with_, exp.With) and child is not with_:
                for cte in with_.expressions:
                    if isinstance(cte, exp.CTE) and _norm(cte.alias) == name:
                        return cte
        child, node = node, node.parent
    return None


def _check_columns(tree: exp.Expression, real: list[exp.Table], policy: Policy, tables: dict[str, list[str]]) -> None:
    """Refuse by name any column the policy denies on a table the query reads (clear message)."""
    read = {_norm(t.name) for t in real if isinstance(t.this, exp.Identifier)}
    denied = {c: t for t, c in policy.denied_columns if t in read}
    if not denied:
        return
    for col in tree.find_all(exp.Column):
        name = _norm(col.name)
        if name in denied:
            raise AccessDenied(
                f"column {denied[name]}.{name} is not visible to role {policy.identity.role!r}",
                "remove it from the query; personal fields need a role with personal_fields: true",
            )


def _wrap_table(table: exp.Table, policy: Policy, tables: dict[str, list[str]]) -> None:
    role = policy.identity.role
    if not isinstance(table.this, exp.Identifier):
        if isinstance(table.this, _SAFE_TABLE_FUNCTIONS):
            return
        fn = table.this.sql() if isinstance(table.this, exp.Expression) else str(table.this)
        raise AccessDenied(
            f"table function {fn[:60]} is not allowed under role {role!r}",
            "query the lake tables by name (sales, products, stores, customers)",
        )
    name = _norm(table.name)
    if name in policy.denied_tables:
        raise AccessDenied(f"table {name!r} is not visible to role {role!r}", "ask an administrator for access")
    columns = tables.get(name)
    if columns is None and not is_rollup(name):
        raise AccessDenied(
            f"table {table.name!r} is not available to role {role!r}",
            f"tables you may query: {', '.join(sorted(t for t in tables if t not in policy.denied_tables))}",
        )
    conditions: list[exp.Expression] = []
    for column, values in policy.row_filters:
        if columns is not None and column not in columns:
            if name in policy.unfiltered_tables:
                continue
            raise AccessDenied(
                f"table {name!r} has no {column!r} column, so role {role!r} cannot read it",
                "query tables that carry the filtered column, or join through them",
            )
        conditions.append(exp.column(column, quoted=True).isin(*[exp.convert(v) for v in values]))
    projection: list[exp.Expression]
    if columns is None:
        projection = [exp.Star()]
    else:
        allowed = [c for c in columns if (name, c) not in policy.denied_columns]
        projection = [exp.column(c, quoted=True) for c in allowed]
    inner_table = exp.Table(
        this=table.this.copy(), db=_copy(table.args.get("db")), catalog=_copy(table.args.get("catalog"))
    )
    for arg in ("when", "version", "sample"):
        if table.args.get(arg) is not None:
            inner_table.set(arg, table.args[arg].copy())
    select = exp.select(*projection).from_(inner_table)
    if conditions:
        select = select.where(exp.and_(*conditions))
    alias = table.args.get("alias")
    alias_node = (
        alias.copy() if isinstance(alias, exp.TableAlias) else exp.TableAlias(this=exp.to_identifier(table.name))
    )
    wrapped = exp.Subquery(this=select, alias=alias_node)
    if table.args.get("pivots"):
        wrapped.set("pivots", [p.copy() for p in table.args["pivots"]])
    table.replace(wrapped)


def _copy(node: Any) -> Any:
    return node.copy() if isinstance(node, exp.Expression) else node
