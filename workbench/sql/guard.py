"""The read-only guard: only a single SELECT over known lake tables gets through.

Parser-based (sqlglot), never a regex or a first-keyword check (STYLE.md: vanna's
``.split()[0]`` check was bypassed). Three allowlists, each refusing with a message naming
the construct: the statement shape (one query: SELECT, CTEs, UNION/INTERSECT/EXCEPT), the
tables (lake tables and CTE names only; no file paths, table functions or system catalogs)
and the functions (scalar, aggregate and window functions that cannot reach files, the
network, settings or the environment). The engine adds a second layer (see engines/duckdb.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from workbench.errors import QueryRefused, did_you_mean

#: the lake tables SQL may read (names are a contract: retail-schema.md)
LAKE_TABLES: frozenset[str] = frozenset({"sales", "products", "stores", "customers"})

#: canonical names (sqlglot ``sql_name()`` or the raw name of an unknown function) allowed
ALLOWED_FUNCTIONS: frozenset[str] = frozenset(
    [
        "COUNT",
        "SUM",
        "AVG",
        "MIN",
        "MAX",
        "STDDEV",
        "STDDEV_POP",
        "STDDEV_SAMP",
        "VARIANCE",
        "VARIANCE_POP",
        "VAR_SAMP",
        "VAR_POP",
        "MEDIAN",
        "MODE",
        "PERCENTILE_CONT",
        "PERCENTILE_DISC",
        "QUANTILE_CONT",
        "QUANTILE_DISC",
        "APPROX_DISTINCT",
        "APPROX_QUANTILE",
        "COUNT_IF",
        "LOGICAL_AND",
        "LOGICAL_OR",
        "BOOL_AND",
        "BOOL_OR",
        "CORR",
        "COVAR_POP",
        "COVAR_SAMP",
        "ARG_MAX",
        "ARG_MIN",
        "ANY_VALUE",
        "FIRST",
        "LAST",
        "GROUP_CONCAT",
        "STRING_AGG",
        "LISTAGG",
        "GROUPING",
        "ROW_NUMBER",
        "RANK",
        "DENSE_RANK",
        "PERCENT_RANK",
        "CUME_DIST",
        "NTILE",
        "LAG",
        "LEAD",
        "FIRST_VALUE",
        "LAST_VALUE",
        "NTH_VALUE",
        "ROUND",
        "ABS",
        "CEIL",
        "FLOOR",
        "SIGN",
        "SQRT",
        "POWER",
        "EXP",
        "LN",
        "LOG",
        "LOG10",
        "LOG2",
        "MOD",
        "TRUNC",
        "GREATEST",
        "LEAST",
        "IS_NAN",
        "IS_INF",
        "AND",
        "OR",
        "XOR",
        "COALESCE",
        "NULLIF",
        "IFNULL",
        "IF",
        "CASE",
        "CAST",
        "TRY_CAST",
        "EXISTS",
        "UPPER",
        "LOWER",
        "LENGTH",
        "SUBSTRING",
        "CONCAT",
        "CONCAT_WS",
        "LEFT",
        "RIGHT",
        "REPLACE",
        "STARTS_WITH",
        "ENDS_WITH",
        "CONTAINS",
        "TRIM",
        "LTRIM",
        "RTRIM",
        "PAD",
        "LPAD",
        "RPAD",
        "STR_POSITION",
        "STRPOS",
        "INSTR",
        "POSITION",
        "REVERSE",
        "SPLIT_PART",
        "REGEXP_LIKE",
        "REGEXP_MATCHES",
        "REGEXP_REPLACE",
        "REGEXP_EXTRACT",
        "INITCAP",
        "YEAR",
        "MONTH",
        "DAY",
        "QUARTER",
        "WEEK",
        "WEEKOFYEAR",
        "DAY_OF_WEEK",
        "DAY_OF_MONTH",
        "DAY_OF_YEAR",
        "DAYOFWEEK_ISO",
        "ISODOW",
        "DAYNAME",
        "MONTHNAME",
        "WEEKDAY",
        "YEARWEEK",
        "DATE_PART",
        "EXTRACT",
        "DATEDIFF",
        "DATE_DIFF",
        "DATE_ADD",
        "DATE_SUB",
        "DATE_TRUNC",
        "TIMESTAMP_TRUNC",
        "DATE_TRUNC",
        "TIME_TO_STR",
        "STRFTIME",
        "STR_TO_TIME",
        "STRPTIME",
        "TO_DATE",
        "MAKE_DATE",
        "LAST_DAY",
        "TS_OR_DS_TO_DATE",
        "DATE",
        "CURRENT_DATE",
    ]
)

#: names whose mention deserves a specific message (system catalogs and settings)
_SYSTEM_PREFIXES = ("information_schema", "pg_catalog", "pg_", "sqlite_", "duckdb_", "pragma_", "temp", "system")

#: functions that read files, the network, settings or the environment: named in the refusal
_FILE_FUNCTIONS = {
    "READ_CSV",
    "READ_CSV_AUTO",
    "READ_PARQUET",
    "PARQUET_SCAN",
    "READ_JSON",
    "READ_JSON_AUTO",
    "READ_NDJSON",
    "READ_TEXT",
    "READ_BLOB",
    "GLOB",
    "DELTA_SCAN",
    "ICEBERG_SCAN",
    "SNIFF_CSV",
    "PARQUET_METADATA",
    "PARQUET_SCHEMA",
    "SQLITE_SCAN",
    "POSTGRES_SCAN",
    "READ_XLSX",
    "ST_READ",
}


@dataclass
class GuardedQuery:
    """A query that passed the guard: its syntax tree and the lake tables it reads."""

    sql: str
    expression: exp.Query
    tables: set[str] = field(default_factory=set)


def parse_one(sql: str) -> exp.Expression:
    """Parse exactly one DuckDB statement, or refuse with the parser's position."""
    if not sql or not sql.strip():
        raise QueryRefused("empty SQL", "write one SELECT statement")
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except (ParseError, TokenError) as e:
        raise QueryRefused(
            f"SQL could not be parsed: {_first_line(str(e))}",
            "only a single read-only SELECT over lake tables is accepted; check the syntax",
        ) from e
    if len(statements) != 1:
        raise QueryRefused(
            f"multiple statements ({len(statements)}) are not allowed",
            "send one SELECT statement at a time, without ';' separators",
        )
    return statements[0]


def check_sql(sql: str, tables: Iterable[str] = LAKE_TABLES) -> GuardedQuery:
    """Refuse anything but one read-only SELECT over ``tables``; return the parsed query."""
    return check_expression(parse_one(sql), sql, tables)


def check_expression(tree: exp.Expression, sql: str = "", tables: Iterable[str] = LAKE_TABLES) -> GuardedQuery:
    """The guard over an already parsed tree (the policy rewrite output is checked again here)."""
    known = {t.lower() for t in tables}
    if not isinstance(tree, (exp.Select, exp.SetOperation)):
        raise QueryRefused(
            f"{_statement_name(tree, sql)} statements are not allowed",
            "only read-only SELECT queries (with CTEs, UNION/INTERSECT/EXCEPT) are accepted",
        )
    cte_names = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    read: set[str] = set()
    for node in tree.walk():
        _check_node(node)
        if isinstance(node, exp.Table):
            name = _check_table(node, known, cte_names)
            if name in known:
                read.add(name)
        elif isinstance(node, exp.Func):
            _check_function(node)
    return GuardedQuery(sql=sql or tree.sql(dialect="duckdb"), expression=tree, tables=read)


_FORBIDDEN_NODES: dict[type[exp.Expression], str] = {
    exp.Into: "SELECT ... INTO",
    exp.Lock: "FOR UPDATE/SHARE locks",
    exp.Placeholder: "query parameters",
    exp.Parameter: "query parameters",
    exp.Command: "commands",
    exp.DDL: "DDL",
    exp.DML: "DML",
    exp.Copy: "COPY",
    exp.Set: "SET",
    exp.Pragma: "PRAGMA",
    exp.Use: "USE",
    exp.Attach: "ATTACH",
    exp.Detach: "DETACH",
}


def _check_node(node: exp.Expression) -> None:
    for kind, label in _FORBIDDEN_NODES.items():
        if isinstance(node, kind):
            raise QueryRefused(f"{label} is not allowed in a query", "only read-only SELECT queries are accepted")


def _check_table(table: exp.Table, known: set[str], cte_names: set[str]) -> str:
    if isinstance(table.this, exp.Func):
        fname = _function_name(table.this)
        what = "file-reading table function" if fname in _FILE_FUNCTIONS else "table function"
        raise QueryRefused(
            f"{what} {fname.lower()}(...) is not allowed", f"query the lake tables instead: {', '.join(sorted(known))}"
        )
    name = table.name
    qualified = ".".join(p for p in (table.catalog, table.db, name) if p)
    lowered = name.lower()
    if any(ch in name for ch in "/\\:*?") or lowered.endswith((".parquet", ".csv", ".json", ".txt", ".gz", ".db")):
        raise QueryRefused(
            f"file path {name!r} is not allowed as a table",
            f"query the lake tables instead: {', '.join(sorted(known))}",
        )
    if any(p.lower().startswith(_SYSTEM_PREFIXES) for p in (table.catalog, table.db, name) if p):
        raise QueryRefused(
            f"system table {qualified!r} is not allowed",
            f"only the lake tables can be queried: {', '.join(sorted(known))}",
        )
    if table.catalog or table.db:
        raise QueryRefused(
            f"qualified table name {qualified!r} is not allowed",
            f"use the bare lake table names: {', '.join(sorted(known))}",
        )
    if lowered in cte_names or lowered in known:
        return lowered
    hint = did_you_mean(name, sorted(known)) or f"known tables: {', '.join(sorted(known))}"
    raise QueryRefused(f"unknown table {name!r}", hint)


def _function_name(func: exp.Func) -> str:
    if isinstance(func, exp.Anonymous):
        return str(func.name).upper()
    return str(func.sql_name()).upper()


def _check_function(func: exp.Func) -> None:
    name = _function_name(func)
    if name in ALLOWED_FUNCTIONS:
        return
    if name in _FILE_FUNCTIONS:
        raise QueryRefused(f"file-reading function {name.lower()}() is not allowed", "query the lake tables instead")
    if name.startswith(("DUCKDB_", "PRAGMA_")) or name in {"CURRENT_SETTING", "GETENV", "VERSION"}:
        raise QueryRefused(
            f"system function {name.lower()}() is not allowed",
            "settings, environment and catalog functions are not available",
        )
    raise QueryRefused(
        f"function {name.lower()}() is not allowed",
        "use standard scalar, aggregate and window functions; "
        + (did_you_mean(name, ALLOWED_FUNCTIONS) or "see workbench.sql.guard.ALLOWED_FUNCTIONS"),
    )


def _statement_name(tree: exp.Expression, sql: str) -> str:
    """The keyword that opens the statement, from the tokenizer (for the refusal message)."""
    try:
        tokens = sqlglot.tokenize(sql, read="duckdb") if sql else []
    except sqlglot.errors.TokenError:  # the tree's own type names the statement instead
        tokens = []
    if tokens:
        return str(tokens[0].text).upper()
    return type(tree).__name__.upper()


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text
