"""Assistant commands: ``workbench eval`` runs a question set and reports accuracy."""

from __future__ import annotations

import sys

import click

from workbench.cli.output import handles_errors, json_option, to_json


@click.command("eval")
@click.argument("questions", type=click.Path(dir_okay=False))
@click.option(
    "--engine", type=click.Choice(["auto", "duckdb", "dask"]), default="auto", show_default=True,
    help="engine for both the reference SQL and the planned query",
)  # fmt: skip
@click.option("--min-accuracy", type=float, default=0.0, help="exit with status 1 when accuracy is below this (0-1)")
@click.option(
    "--assistant", "through_assistant", is_flag=True,
    help="ask through the whole assistant (configured LLM, repairs, offline fallback), not the offline planner",
)  # fmt: skip
@json_option
@click.pass_context
@handles_errors
def eval_cmd(
    ctx: click.Context, questions: str, engine: str, min_accuracy: float, through_assistant: bool, as_json: bool
) -> None:
    """Answer every question of QUESTIONS (.jsonl) with the offline planner and check it
    against the line's reference SQL: right / declined / wrong shown, every miss with its
    reason, p50/p95 latency. A wrong answer shown fails the run (exit 1) whatever the accuracy."""
    from workbench.assistant.eval import AssistantEvaluator, load_cases, run_eval
    from workbench.session import Workbench

    with Workbench.open(lake=(ctx.obj or {}).get("lake")) as wb:
        if through_assistant:
            report = AssistantEvaluator(wb).run(load_cases(questions), source=questions)
        else:
            report = run_eval(questions, wb, engine=engine)
    click.echo(to_json(report.to_dict()) if as_json else report.to_text())
    if report.wrong or report.accuracy < min_accuracy:
        sys.exit(1)


COMMANDS: list[click.Command] = [eval_cmd]
