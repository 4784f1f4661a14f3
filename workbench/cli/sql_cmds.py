"""``workbench sql``: one read-only SELECT over the lake, on DuckDB or dask-sql.

The terminal gets a page (a few dozen rows, the row count, how to see more), never the
100,000 rows a ``SELECT *`` returns; ``--output FILE`` writes every row to a file and
``--json`` prints every row as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from workbench.cli.output import handles_errors, json_option, table_text, to_json

if TYPE_CHECKING:
    from workbench.sql.result import QueryResult

#: rows shown in the terminal unless --limit says otherwise
PAGE_ROWS = 50
#: rows an --output export may hold (the interactive row limit is lower: a terminal is no file)
EXPORT_ROW_LIMIT = 10_000_000
OUTPUT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".json": "json", ".jsonl": "jsonl"}


@click.command("sql")
@click.argument("query")
@click.option("--engine", type=click.Choice(["auto", "duckdb", "dask"]), default="auto", show_default=True)
@click.option("--explain", is_flag=True, help="print the engine's plan instead of rows (runs nothing)")
@click.option("--user", default=None, help="evaluate under this user's access policy (audited as such)")
@click.option("--limit", "page", type=click.IntRange(min=0), default=PAGE_ROWS, show_default=True, help="rows shown")
@click.option(
    "--output",
    "output",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help=f"write every row to FILE (.csv, .parquet, .json, .jsonl; up to {EXPORT_ROW_LIMIT:,} rows)",
)
@json_option
@click.pass_context
@handles_errors
def sql_cmd(
    ctx: click.Context,
    query: str,
    engine: str,
    explain: bool,
    user: str | None,
    page: int,
    output: str | None,
    as_json: bool,
) -> None:
    """Run QUERY (a single SELECT over sales, products, stores, customers)."""
    from workbench.auth.local import evaluate_as
    from workbench.session import Workbench

    fmt = output_format(output) if output else None
    lake = (ctx.obj or {}).get("lake")
    overrides = {"row_limit": EXPORT_ROW_LIMIT} if output and not explain else {}
    wb = Workbench.open(lake=lake, **overrides)
    try:
        evaluate_as(wb.settings, user, "sql", query)
        # an export with a raised row limit must not be answered from a capped cached result
        result = wb.sql(query, engine=engine, explain=explain, user=user, use_cache=not overrides)
    finally:
        wb.close()
    if output and fmt and not explain:
        write_output(result, output, fmt)
    if as_json:
        click.echo(to_json(result.to_dict()))
        return
    if explain:
        click.echo(result.explain or "")
    elif output:
        click.echo(f"wrote {len(result.df):,} rows to {output}" + _capped(result, wb.settings.row_limit))
    else:
        click.echo(table_text(result.df, page) if len(result.df) else "(no rows)")
        click.echo(_page_footer(result, page, wb.settings.row_limit))
    click.echo(_summary(result), err=True)


def output_format(path: str) -> str:
    """The file format --output writes, from the file name's extension."""
    from pathlib import Path

    from workbench.errors import ConfigError

    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise ConfigError(
            f"cannot tell the format of {path!r} from its extension",
            f"name the file with one of: {', '.join(OUTPUT_FORMATS)} (e.g. --output result.parquet)",
        )
    return OUTPUT_FORMATS[suffix]


def write_output(result: QueryResult, path: str, fmt: str) -> None:
    """Every row at full precision (display rounding is for the terminal only)."""
    df = result.df
    if fmt == "csv":
        df.to_csv(path, index=False)
    elif fmt == "parquet":
        df.to_parquet(path, index=False)
    else:
        df.to_json(path, orient="records", lines=fmt == "jsonl", date_format="iso", double_precision=15)


def _page_footer(result: QueryResult, page: int, row_limit: int) -> str:
    n = len(result.df)
    total = f"{n:,}+ rows (stopped at the row limit)" if result.truncated else f"{n:,} row{'s' if n != 1 else ''}"
    if n <= page:
        return f"({total})"
    return (
        f"({min(page, n):,} of {total} shown: --limit N shows more, "
        f"--output result.csv (or .parquet, .json) writes them all)"
    )


def _capped(result: QueryResult, row_limit: int) -> str:
    if not result.truncated:
        return ""
    return f" (stopped at {row_limit:,} rows: add a WHERE or GROUP BY, or raise WORKBENCH_ROW_LIMIT)"


def _summary(result: QueryResult) -> str:
    return (
        f"-- {result.engine} ({result.reason}); {result.elapsed_ms:.0f} ms; "
        f"{result.files_scanned} files, {result.bytes_scanned} bytes scanned"
        + ("; truncated" if result.truncated else "")
    )


COMMANDS = [sql_cmd]
