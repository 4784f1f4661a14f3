"""``workbench register / unregister / registered / profile / model``: bring your own data."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from workbench.cli.output import handles_errors, json_option, to_json

if TYPE_CHECKING:
    from workbench.lake.storage import Lake


def _lake(ctx: click.Context) -> Lake:
    from workbench.lake.storage import Lake

    return Lake((ctx.obj or {}).get("lake"))


@click.command("register")
@click.argument("name")
@click.argument("url")
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv", "delta"]), default=None, help="default: guessed")
@click.option("--copy/--no-copy", default=None, help="ingest into the lake (default for CSV) or read in place")
@click.option("--partition-by", default="", help="comma-separated columns of a copy (year,month derive from a date)")
@click.option("--encoding", default="utf-8", show_default=True, help="text encoding of CSV files")
@click.option("--no-profile", is_flag=True, help="skip the column profile (run `workbench profile NAME` later)")
@json_option
@click.pass_context
@handles_errors
def register_cmd(
    ctx: click.Context,
    name: str,
    url: str,
    fmt: str | None,
    copy: bool | None,
    partition_by: str,
    encoding: str,
    no_profile: bool,
    as_json: bool,
) -> None:
    """Make the data at URL (folder, file or s3://...) queryable as table NAME."""
    from workbench.lake.register import register

    cols = [c.strip() for c in partition_by.split(",") if c.strip()]
    reg = register(
        name, url, fmt=fmt, copy=copy, partition_by=cols, encoding=encoding, lake=_lake(ctx), profile=not no_profile
    )
    if as_json:
        click.echo(to_json(reg.to_dict()))
        return
    how = "read in place (no copy)" if reg.mode == "in_place" else "copied into the lake"
    click.echo(f"registered {reg.name}: {reg.format}, {how}; {reg.files} files, {reg.rows} rows")
    if reg.partition_columns:
        click.echo(f"partitions: {', '.join(reg.partition_columns)}")
    for old, new in reg.details.get("renamed_columns", {}).items():
        click.echo(f"column {old!r} -> {new}")
    for note in reg.details.get("type_notes", []):
        click.echo(f"type: {note}")
    for warning in reg.details.get("column_warnings", []):
        click.echo(f"note: {warning}")
    quality = reg.details.get("quality")
    if quality:
        click.echo(
            f"quality: {quality['rows_read']} rows read, {quality['rows_written']} written, "
            f"{quality['trimmed_values']} values trimmed, {quality['blank_to_null']} blanks -> NULL"
        )


@click.command("unregister")
@click.argument("name")
@json_option
@click.pass_context
@handles_errors
def unregister_cmd(ctx: click.Context, name: str, as_json: bool) -> None:
    """Remove the registration of NAME (your files are never touched)."""
    from workbench.lake.register import unregister

    reg = unregister(name, lake=_lake(ctx))
    click.echo(to_json({"unregistered": reg.name}) if as_json else f"unregistered {reg.name} ({reg.origin_url})")


@click.command("registered")
@json_option
@click.pass_context
@handles_errors
def registered_cmd(ctx: click.Context, as_json: bool) -> None:
    """List registered tables with their origin."""
    from workbench.lake.register import registrations

    regs = registrations(lake=_lake(ctx))
    if as_json:
        click.echo(to_json({"tables": [r.to_dict() for r in regs]}))
        return
    if not regs:
        click.echo("no registered tables (run `workbench register NAME URL`)")
        return
    click.echo(f"{'table':<24} {'format':<8} {'mode':<9} {'rows':>10} {'files':>6}  origin")
    for r in regs:
        click.echo(f"{r.name:<24} {r.format:<8} {r.mode:<9} {r.rows or 0:>10,} {r.files:>6}  {r.origin_url}")


@click.command("profile")
@click.argument("name")
@json_option
@click.pass_context
@handles_errors
def profile_cmd(ctx: click.Context, name: str, as_json: bool) -> None:
    """Describe table NAME: column types, null rates, distinct counts, min/max, keys, joins."""
    from workbench.lake.profile import profile_table

    p = profile_table(_lake(ctx), name)
    if as_json:
        click.echo(to_json(p))
        return
    click.echo(f"{p['table']}: {p['rows']:,} rows, {p['files']} files; keys: {', '.join(p['candidate_keys']) or '-'}")
    for c in p["columns"]:
        values = f" values={c['values']}" if c.get("values") and len(c["values"]) <= 8 else ""
        click.echo(
            f"  {c['name']:<24} {c['type']:<12} nulls={c['null_rate']:.1%} distinct={c['distinct']} "
            f"min={c['min']} max={c['max']}{values}"
        )
    for j in p["joins"]:
        click.echo(f"  join {j['left']}.{j['left_column']} -> {j['right']}.{j['right_column']} ({j['overlap']:.0%})")


@click.group("model")
def model_group() -> None:
    """Semantic models for registered data: draft one, then activate it."""


@model_group.command("draft")
@click.argument("tables", nargs=-1)
@click.option("--name", default="draft", show_default=True)
@click.option("--explain", is_flag=True, help="only say what was inferred and why (grain, keys, time, joins)")
@click.option("--llm/--no-llm", "use_llm", default=None, help="words and metrics from the LLM (default: if configured)")
@click.pass_context
@handles_errors
def model_draft_cmd(
    ctx: click.Context, tables: tuple[str, ...], name: str, explain: bool, use_llm: bool | None
) -> None:
    """Print a draft model (YAML) for TABLES (default: every registered table), with the reasons
    for each inference as comments above it."""
    from workbench.lake.profile import load_profiles
    from workbench.semantic import draft

    lake = _lake(ctx.find_root())
    profiles = load_profiles(lake, list(tables) or None)
    model = draft.draft_model(profiles, name)
    if use_llm or (use_llm is None and lake.settings.llm_configured):
        model = _refined(model, profiles, lake)
    if explain:
        click.echo("\n".join(draft.explain(model)))
        return
    click.echo(draft.to_yaml(model, sorted(profiles)), nl=False)


def _refined(model: dict[str, Any], profiles: dict[str, Any], lake: Lake) -> dict[str, Any]:
    from workbench.assistant.llm.client import LLMClient
    from workbench.semantic.refine import refine
    from workbench.session import Workbench

    client = LLMClient(lake.settings)
    wb = Workbench(lake, lake.settings)
    try:
        return refine(model, profiles, wb, client)
    finally:
        wb.close()


@model_group.command("check")
@click.argument("questions", required=False)
@json_option
@click.pass_context
@handles_errors
def model_check_cmd(ctx: click.Context, questions: str | None, as_json: bool) -> None:
    """Ask probe questions generated from the active model (or grade QUESTIONS.jsonl) and report.

    Probes say answered/declined; a question set with reference SQL says right/declined/wrong."""
    from workbench.assistant.eval import load_cases
    from workbench.semantic import check
    from workbench.semantic.model import load_model
    from workbench.semantic.vocabulary import load_vocabulary
    from workbench.session import Workbench

    lake = _lake(ctx.find_root())
    wb = Workbench(lake, lake.settings)
    try:
        if questions:
            outcomes = check.grade(wb, load_cases(questions))
        else:
            model = load_model(settings=lake.settings)
            outcomes = check.run_probes(wb, check.probe_questions(model, load_vocabulary(wb, model)))
    finally:
        wb.close()
    click.echo(to_json(check.summary(outcomes)) if as_json else check.to_text(outcomes))


@model_group.command("use")
@click.argument("path", required=False)
@click.option("--reset", is_flag=True, help="go back to the configured/default model")
@click.pass_context
@handles_errors
def model_use_cmd(ctx: click.Context, path: str | None, reset: bool) -> None:
    """Make the model at PATH the one the assistant uses."""
    from workbench.config import get_settings
    from workbench.errors import ConfigError
    from workbench.lake.register import registered_names
    from workbench.lake.storage import Lake
    from workbench.semantic.draft import reset_model, use_model
    from workbench.sql.guard import LAKE_TABLES

    settings = get_settings()
    if reset:
        reset_model(settings)
        click.echo("using the configured model again")
        return
    if not path:
        raise ConfigError("no model file given", "workbench model use model.yaml (or --reset)")
    lake = Lake(((ctx.find_root().obj) or {}).get("lake"))
    model = use_model(path, settings, set(LAKE_TABLES) | registered_names(lake))
    click.echo(f"active model: {model.name} ({len(model.metrics)} metrics, {len(model.dimensions)} dimensions)")


COMMANDS: list[click.Command] = [register_cmd, unregister_cmd, registered_cmd, profile_cmd, model_group]
