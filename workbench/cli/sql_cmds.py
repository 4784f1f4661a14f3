"""``workbench sql``: one read-only SELECT over the lake, on DuckDB in process or on the Dask cluster."""

from __future__ import annotations

import click

from workbench.cli.output import handles_errors, json_option, to_json


@click.command("sql")
@click.argument("query")
@click.option("--engine", type=click.Choice(["auto", "duckdb", "dask"]), default="auto", show_default=True)
@click.option("--explain", is_flag=True, help="print the engine's plan instead of rows")
@click.option("--user", default=None, help="identity whose access policies apply")
@json_option
@click.pass_context
@handles_errors
def sql_cmd(ctx: click.Context, query: str, engine: str, explain: bool, user: str | None, as_json: bool) -> None:
    """Run QUERY (a single SELECT over sales, products, stores, customers)."""
    from workbench.session import Workbench

    lake = (ctx.obj or {}).get("lake")
    wb = Workbench.open(lake=lake)
    try:
        result = wb.sql(query, engine=engine, explain=explain, user=user)
    finally:
        wb.close()
    if as_json:
        click.echo(to_json(result.to_dict()))
        return
    if explain:
        click.echo(result.explain or "")
    else:
        import pandas as pd

        with pd.option_context("display.max_rows", 50, "display.width", 120):
            click.echo(result.df.to_string(index=False) if len(result.df) else "(no rows)")
    click.echo(
        f"-- {result.engine} ({result.reason}); {result.elapsed_ms:.0f} ms; "
        f"{result.files_scanned} files, {result.bytes_scanned} bytes scanned"
        + ("; truncated" if result.truncated else ""),
        err=True,
    )


COMMANDS = [sql_cmd]
