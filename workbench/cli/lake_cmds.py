"""Lake commands: generate, ingest, tables, columns."""

from __future__ import annotations

import datetime as dt

import click

from workbench.cli.output import handles_errors, json_option, to_json


def _lake_url(ctx: click.Context, lake: str | None) -> str | None:
    return lake or (ctx.obj or {}).get("lake")


@click.command("generate")
@click.option("--rows", type=int, required=True, help="raw sales rows to generate (dirt included)")
@click.option("--out", default=None, help="landing folder or s3:// prefix (default: settings.landing)")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
@click.option("--chunk-rows", type=int, default=1_000_000, show_default=True, help="sales rows per file")
@click.option("--overwrite", is_flag=True, help="replace the files an earlier generate wrote in --out")
@click.option(
    "--period",
    default=None,
    metavar="FIRST..LAST",
    help="only this period's share of the ROWS-row dataset, e.g. 2024-01-01..2024-03-31 (one batch of arrivals)",
)
@json_option
@handles_errors
def generate_cmd(
    rows: int,
    out: str | None,
    seed: int,
    fmt: str,
    chunk_rows: int,
    overwrite: bool,
    period: str | None,
    as_json: bool,
) -> None:
    """Write landing files (sales, products, stores, customers) of the reference retail dataset.

    Refuses a folder that is not empty (the next ingest would mix datasets) unless --overwrite.
    """
    from workbench.config import get_settings
    from workbench.lake.generate import generate

    settings = get_settings()
    result = generate(
        rows,
        out or settings.landing,
        seed=seed,
        fmt=fmt,  # type: ignore[arg-type]
        chunk_rows=chunk_rows,
        workers=max(1, settings.n_workers),
        progress=not as_json,
        overwrite=overwrite,
        period=_period(period),
    )
    if as_json:
        click.echo(to_json({"out": result.out, "rows": result.rows, "files": result.files}))
    else:
        n_files = sum(len(v) for v in result.files.values())
        click.echo(f"wrote {n_files} files to {result.out}: " + ", ".join(f"{k} {v:,}" for k, v in result.rows.items()))


def _period(text: str | None) -> tuple[dt.date, dt.date] | None:
    if text is None:
        return None
    first, _, last = text.partition("..")
    try:
        return dt.date.fromisoformat(first.strip()), dt.date.fromisoformat(last.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r} is not FIRST..LAST (ISO dates, e.g. 2024-01-01..2024-03-31)") from None


@click.command("ingest")
@click.argument("landing", required=False)
@click.option("--lake", default=None, help="lake URL (folder or s3://bucket/prefix); default settings.lake")
@click.option("--watch", "watch_dir", default=None, help="poll this folder; ingest new files in micro-batches")
@click.option("--interval", type=float, default=10.0, show_default=True, help="--watch: seconds between polls")
@click.option("--once", is_flag=True, help="--watch: ingest what is there now and exit")
@json_option
@click.pass_context
@handles_errors
def ingest_cmd(
    ctx: click.Context,
    landing: str | None,
    lake: str | None,
    watch_dir: str | None,
    interval: float,
    once: bool,
    as_json: bool,
) -> None:
    """Clean, dedupe and commit landing files into the lake (atomic, idempotent)."""
    from workbench.lake.ingest import ingest

    if watch_dir or not landing:
        from workbench.cli.trust_cmds import run_watch

        if not watch_dir:
            raise click.UsageError("give a LANDING folder, or --watch DIR")
        return run_watch(watch_dir, _lake_url(ctx, lake), interval, once, as_json)

    from workbench.errors import WorkbenchError
    from workbench.observability.metrics import observe_ingest, observe_ingest_failure

    try:
        report = ingest(landing, _lake_url(ctx, lake), progress=not as_json)
    except WorkbenchError as e:
        observe_ingest_failure(e)
        raise
    observe_ingest(report)
    click.echo(to_json(report.to_dict()) if as_json else report.to_text())


@click.command("tables")
@click.option("--lake", default=None, help="lake URL (folder or s3://bucket/prefix); default settings.lake")
@json_option
@click.pass_context
@handles_errors
def tables_cmd(ctx: click.Context, lake: str | None, as_json: bool) -> None:
    """List the lake's tables: rows, partitions, files, size, Delta version (from the log only)."""
    from workbench.lake.storage import Lake
    from workbench.lake.tables import lake_tables

    the_lake = Lake(_lake_url(ctx, lake))
    stats = lake_tables(the_lake)
    if as_json:
        click.echo(to_json({"lake": the_lake.url, "tables": [t.to_dict() for t in stats]}))
        return
    if not stats:
        click.echo(f"no tables in {the_lake.url} (run `workbench ingest <landing>`)")
        return
    click.echo(f"{'table':<40} {'rows':>14} {'partitions':>10} {'files':>6} {'size':>10} {'version':>7}")
    for t in stats:
        click.echo(
            f"{t.name:<40} {t.rows:>14,} {t.partitions:>10,} {t.files:>6,} {_size(t.size_bytes):>10} {t.version:>7}"
        )


@click.command("columns")
@click.argument("table")
@click.option("--lake", default=None, help="lake URL (folder or s3://bucket/prefix); default settings.lake")
@json_option
@click.pass_context
@handles_errors
def columns_cmd(ctx: click.Context, table: str, lake: str | None, as_json: bool) -> None:
    """List TABLE's columns: name, type, partition column or not, meaning (read from the Delta log)."""
    from workbench.catalog.descriptions import COLUMN_DESCRIPTIONS
    from workbench.lake.delta import arrow_schema
    from workbench.lake.storage import Lake

    the_lake = Lake(_lake_url(ctx, lake))
    dt = the_lake.table(table)
    partitions = set(dt.metadata().partition_columns)
    meaning = COLUMN_DESCRIPTIONS.get(table, {})
    rows = [
        {"name": f.name, "type": str(f.type), "partition": f.name in partitions, "meaning": meaning.get(f.name, "")}
        for f in arrow_schema(dt)
    ]
    if as_json:
        click.echo(to_json({"table": table, "columns": rows}))
        return
    width = max(len(r["name"]) for r in rows) if rows else 6
    click.echo(f"{'column':<{width}}  {'type':<12} {'':<9}  meaning")
    for r in rows:
        flag = "partition" if r["partition"] else ""
        click.echo(f"{r['name']:<{width}}  {r['type']:<12} {flag:<9}  {r['meaning']}".rstrip())


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


COMMANDS: list[click.Command] = [generate_cmd, ingest_cmd, tables_cmd, columns_cmd]
