"""Trust commands: ``forget`` (erase a customer everywhere), ``freshness``; and the watch loop.

``workbench ingest --watch DIR`` is an option of the lake's ``ingest`` command; its loop and
printing live here (:func:`run_watch`) so the lake command only dispatches.
"""

from __future__ import annotations

import click

from workbench.cli.output import handles_errors, json_option, to_json


@click.command("forget")
@click.option("--customer", "customer_id", required=True, help="customer_id whose rows and traces to erase")
@click.option("--lake", default=None, help="lake URL (folder or s3://bucket/prefix); default settings.lake")
@click.option("--user", default=None, help="who asks (recorded in the audit log)")
@click.option("--no-summaries", is_flag=True, help="purge summaries that mention the customer, do not rebuild them")
@click.option("--verify", is_flag=True, help="afterwards, scan every Parquet file of the lake for the customer")
@json_option
@click.pass_context
@handles_errors
def forget_cmd(
    ctx: click.Context,
    customer_id: str,
    lake: str | None,
    user: str | None,
    no_summaries: bool,
    verify: bool,
    as_json: bool,
) -> None:
    """Delete a customer's rows from every table and rollup, purge caches and summaries, vacuum."""
    from workbench.errors import DataError
    from workbench.lake.storage import Lake
    from workbench.security.pii import files_mentioning, forget, token

    the_lake = Lake(lake or (ctx.obj or {}).get("lake"))
    report = forget(customer_id, the_lake, user=user, rebuild_summaries=not no_summaries)
    body = report.to_dict()
    if verify:
        hits = files_mentioning(
            the_lake, [customer_id.strip(), token(customer_id.strip(), the_lake.settings.pii_key_bytes())]
        )
        body["verify"] = {"files_with_traces": hits}
    if as_json:
        click.echo(to_json(body))
    else:
        click.echo(report.to_text())
        if verify:
            click.echo(
                "verify: "
                + (
                    "no trace in any Parquet file"
                    if not body["verify"]["files_with_traces"]
                    else f"traces left in {body['verify']['files_with_traces']}"
                )
            )
    if verify and body["verify"]["files_with_traces"]:
        raise DataError("traces of the customer remain after forget", "re-run `workbench forget`; report a bug")


@click.command("freshness")
@click.option("--lake", default=None, help="lake URL (folder or s3://bucket/prefix); default settings.lake")
@json_option
@click.pass_context
@handles_errors
def freshness_cmd(ctx: click.Context, lake: str | None, as_json: bool) -> None:
    """Age of the newest ingested data, overall and per table (from the Delta log)."""
    from workbench.lake.watch import freshness

    report = freshness(lake or (ctx.obj or {}).get("lake"))
    if as_json:
        click.echo(to_json(report))
        return
    if report["age_s"] is None:
        click.echo(f"no ingested data in {report['lake']}")
        return
    click.echo(f"lake {report['lake']}: newest ingest {report['last_ingest_at']} ({_age(report['age_s'])} ago)")
    for name, t in report["tables"].items():
        age = _age(t["age_s"]) if t["age_s"] is not None else "never"
        latest = f", data up to {t['latest_date']}" if t.get("latest_date") else ""
        click.echo(f"  {name:<12} version {t['version']:>4}, last ingest {age} ago{latest}")


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def run_watch(landing: str, lake: str | None, interval: float, once: bool, as_json: bool) -> None:
    """The ``ingest --watch`` loop: print one line (or JSON object) per batch; Ctrl-C stops cleanly."""
    from workbench.lake.watch import watch

    def on_batch(report: dict) -> None:
        if as_json:
            click.echo(to_json(report))
        else:
            files = sum(len(t.get("files", [])) for t in report.get("tables", {}).values())
            rows = report.get("rows_written", 0)
            click.echo(f"ingested {files} files, {rows:,} rows (batch {str(report.get('batch_id', ''))[:8]})")

    def on_error(err: Exception) -> None:
        click.secho(f"batch failed, will retry: {err}", fg="yellow", err=True)

    if not as_json and not once:
        click.echo(f"watching {landing} every {interval:g} s (Ctrl-C to stop)", err=True)
    try:
        state = watch(landing, lake, interval_s=interval, once=once, on_batch=on_batch, on_error=on_error)
    except KeyboardInterrupt:
        return
    if once and state.batches == 0:
        click.echo(to_json({"batches": 0, "rows": 0}) if as_json else "no new landing files")


def _api_command() -> click.Command:
    from workbench.cli.api_cmds import api_cmd

    return api_cmd


#: ``api`` is listed here so one COMMAND_MODULES entry registers every trust/serving command
COMMANDS: list[click.Command] = [forget_cmd, freshness_cmd, _api_command()]
