"""``workbench ask``: a question in plain language, answered with numbers, SQL and sources."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from workbench.cli.output import handles_errors, json_option, table_text, to_json
from workbench.errors import PlanningError, QueryRefused, exit_code_for

if TYPE_CHECKING:
    from workbench.assistant.answer import Answer


@click.command("ask")
@click.argument("question")
@click.option(
    "--session",
    "session",
    default=None,
    help="conversation id: follow-ups refine the previous question (default: one per working folder)",
)
@click.option("--no-session", is_flag=True, help="answer on its own, outside the folder's conversation")
@click.option("--user", default=None, help="evaluate under this user's access policy (audited as such)")
@json_option
@click.pass_context
@handles_errors
def ask_cmd(
    ctx: click.Context, question: str, session: str | None, no_session: bool, user: str | None, as_json: bool
) -> None:
    """Answer QUESTION about the lake (e.g. "revenue by region in 2024").

    Questions asked from the same folder form one conversation, so "and in 2023?" follows up
    the previous question as a person expects; --session names another, --no-session opts out.
    """
    from workbench.assistant import ask
    from workbench.auth.local import evaluate_as
    from workbench.session import Workbench

    if no_session:
        session = None
    elif session is None:
        session = folder_session()
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


def folder_session(folder: str | None = None) -> str:
    """The default conversation of a working folder: stable there, distinct between folders.

    Derived from the absolute path (not a fixed name) so a shared WORKBENCH_HOME does not mix
    the conversations of two projects.
    """
    import hashlib
    import os

    path = os.path.abspath(folder or os.getcwd())
    return "folder-" + hashlib.sha1(path.encode()).hexdigest()[:12]


def _print(a: Answer) -> None:
    if a.interpretation:
        click.secho(f"Answered: {a.interpretation}", bold=True)
    click.secho(a.answer, fg=None if a.ok else "red")
    if not a.ok:
        return
    if a.rows:
        df = a.df
        click.echo("")
        click.echo(table_text(df, 25) + (f"\n... ({len(df):,} rows; --json prints them all)" if len(df) > 25 else ""))
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
