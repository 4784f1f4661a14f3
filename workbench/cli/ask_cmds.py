"""``workbench ask``: a question in plain language, answered with numbers, SQL and sources."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from workbench.cli.output import handles_errors, json_option, to_json
from workbench.errors import PlanningError, QueryRefused, exit_code_for

if TYPE_CHECKING:
    from workbench.assistant.answer import Answer


@click.command("ask")
@click.argument("question")
@click.option("--session", "session", default=None, help="conversation id: follow-ups refine the previous question")
@click.option("--user", default=None, help="evaluate under this user's access policy (audited as such)")
@json_option
@click.pass_context
@handles_errors
def ask_cmd(ctx: click.Context, question: str, session: str | None, user: str | None, as_json: bool) -> None:
    """Answer QUESTION about the lake (e.g. "revenue by region in 2024")."""
    from workbench.assistant import ask
    from workbench.auth.local import evaluate_as
    from workbench.session import Workbench

    wb = Workbench.open(lake=(ctx.obj or {}).get("lake"))
    try:
        evaluate_as(wb.settings, user, "ask", question)
        answer = ask(wb, question, session=session, user=user)
    finally:
        wb.close()
    if as_json:
        click.echo(to_json(answer.to_dict()))
    else:
        _print(answer)
    if not answer.ok:
        default = QueryRefused if answer.status == "refused" else PlanningError
        sys.exit(exit_code_for((answer.error or {}).get("type"), default))  # the codes of raised errors


def _print(a: Answer) -> None:
    import pandas as pd

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
