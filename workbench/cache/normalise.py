"""A canonical text for SQL, so equivalent spellings share one cache entry and one log group.

The text comes from sqlglot's tree, not from the input string: whitespace, comments, keyword and
unquoted-identifier case, ``AS`` being optional, the order of ``AND``-ed predicates and of
``IN`` lists, and the names chosen for table aliases all disappear. Nothing that can change a
result (select-list order, ORDER BY, LIMIT, literals) is touched.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers

from workbench.errors import QueryRefused

DIALECT = "duckdb"


def parse(sql: str | exp.Expression, dialect: str = DIALECT) -> exp.Expression:
    if isinstance(sql, exp.Expression):
        return sql.copy()
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except (ParseError, TokenError) as e:
        raise QueryRefused(f"cannot parse SQL: {e}", "check the SQL syntax") from e
    if tree is None:
        raise QueryRefused("empty SQL statement", "pass one SELECT statement")
    return tree


def _sort_conjuncts(tree: exp.Expression) -> exp.Expression:
    for node in list(tree.find_all(exp.And)):
        if isinstance(node.parent, exp.And):
            continue
        parts = sorted(node.flatten(), key=lambda e: e.sql())
        combined = exp.and_(*parts, copy=False)
        if node is tree:
            return combined
        node.replace(combined)
    return tree


def _sort_in_lists(tree: exp.Expression) -> None:
    for node in tree.find_all(exp.In):
        items = node.args.get("expressions")
        if items and all(isinstance(i, exp.Literal) for i in items):
            node.set("expressions", sorted(items, key=lambda e: (e.is_string, e.sql())))


def _canonical_aliases(tree: exp.Expression) -> None:
    """Rename table aliases to t0, t1, ... in order of appearance when that is unambiguous."""
    tables = [t for t in tree.find_all(exp.Table) if t.alias]
    aliases = [t.alias for t in tables]
    if not aliases or len(set(aliases)) != len(aliases):
        return
    names = {t.name for t in tree.find_all(exp.Table)}
    names |= {c.alias for c in tree.find_all(exp.CTE)} | {s.alias for s in tree.find_all(exp.Subquery) if s.alias}
    mapping = {a: f"t{i}" for i, a in enumerate(aliases)}
    if set(mapping.values()) & (names | set(aliases)) - set(mapping):
        return  # a canonical name would collide with a real name
    for table in tables:
        table.set("alias", exp.TableAlias(this=exp.to_identifier(mapping[table.alias])))
    for column in tree.find_all(exp.Column):
        if column.table in mapping:
            column.set("table", exp.to_identifier(mapping[column.table]))


def normalise_sql(sql: str | exp.Expression, dialect: str = DIALECT) -> str:
    """Canonical one-line SQL text of a statement (raises QueryRefused when it does not parse)."""
    tree = normalize_identifiers(parse(sql, dialect), dialect=dialect)
    _canonical_aliases(tree)
    _sort_in_lists(tree)
    tree = _sort_conjuncts(tree)
    return tree.sql(dialect=dialect, normalize=True, comments=False)


def referenced_tables(sql: str | exp.Expression, dialect: str = DIALECT) -> list[str]:
    """Lake tables a statement reads (CTE names excluded), for cache keys and invalidation."""
    tree = parse(sql, dialect)
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    out = set()
    for table in tree.find_all(exp.Table):
        name = table.name.lower()
        if not name or name in ctes:
            continue
        out.add(f"{table.db.lower()}/{name}" if table.db and table.db.lower() == "rollups" else name)
    return sorted(out)
