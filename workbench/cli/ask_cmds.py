"""``workbench ask``: a question in plain language, answered with numbers, SQL and sources."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from workbench.cli.output import handles_errors, json_option, to_json

if TYPE_CHECKING:
    from workbench.assistant.answer import Answer

#: exit codes of answers that are not "ok", by error type (the same codes as raised errors)
_EXIT = {
    "query_refused": 5,
    "access_denied": 5,
    "unsupported_query": 5,
    "not_found": 4,
    "query_failed": 6,
    "query_timeout": 6,
    "service_unavailable": 7,
    "planning_error": 8,
    "data_error": 3,
    "config_error": 2,
}


@click.command("ask")
@click.argument("question")
@click.option("--session", "session", default=None, help="conversation id: follow-ups refine the previous question")
@click.option("--user", default=None, help="identity whose access policies apply")
@json_option
@click.pass_context
@handles_errors
def ask_cmd(ctx: click.Context, question: str, session: str | None, user: str | None, as_json: bool) -> None:
    """Answer QUESTION about the lake (e.g. "revenue by region in 2024")."""
    from workbench.assistant import ask
    from workbench.session import Workbench

    wb = Workbench.open(lake=(ctx.obj or {}).get("lake"))
    try:
        answer = ask(wb, question, session=session, user=user)
    finally:
        wb.close()
    if as_json:
        click.echo(to_json(answer.to_dict()))
    else:
        _print(answer)
    if not answer.ok:
        code = _EXIT.get((answer.error or {}).get("type", ""), 8 if answer.status == "failed" else 5)
        sys.exit(code)


def _print(a: Answer) -> None:
    import pandas as pd

    if a.interpretation:
        click.secho(f"Answered: {a.interpretation}", bold=True)
    click.secho(a.answer, fg=None if a.ok else "red")
    if not a.ok:
        return
    if a.rows:
        with pd.option_context("display.max_rows", 25, "display.width", 120):
            df = a.df
            click.echo("")
            click.echo(df.head(25).to_string(index=False) + ("\n..." if len(df) > 25 else ""))
    click.echo("")
    click.echo(f"period: {a.period}")
    if a.sql:
        click.echo(f"sql: {a.sql}")
    for i, s in enumerate(a.sources, 1):
        click.echo(f"[{i}] {s.text}")
    t = a.timings
    click.echo(
        f"-- {a.planner} planner, route {a.route or '-'}, {t.get('total', 0):.0f} ms"
        f", {a.tokens.get('total', 0)} tokens, ${a.cost_usd:.4f}",
        err=True,
    )


COMMANDS = [ask_cmd]
