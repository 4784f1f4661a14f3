"""Catalog commands: ``catalog`` (tables and their stats), ``querylog``, ``audit``, ``cache``."""

from __future__ import annotations

import datetime as dt

import click

from workbench.cli.output import handles_errors, json_option, to_json
from workbench.errors import DataError


def _since(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as e:
        raise DataError(
            f"--since {value!r} is not an ISO date or time", "use e.g. 2024-06-01 or 2024-06-01T12:00"
        ) from e
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


@click.command("catalog")
@click.option("--sync", is_flag=True, help="record every lake table's current version first")
@click.option("--table", "table_name", default=None, help="show one table's columns and partitions")
@json_option
@click.pass_context
@handles_errors
def catalog_cmd(ctx: click.Context, sync: bool, table_name: str | None, as_json: bool) -> None:
    """Tables the catalog knows: kind, Delta version, rows, bytes, files, rollup freshness."""
    from workbench.catalog import open_catalog
    from workbench.config import get_settings

    settings = get_settings(lake=(ctx.obj or {}).get("lake"))
    catalog = open_catalog(settings)
    if sync:
        from workbench.lake.storage import Lake

        lake = Lake(settings=settings)
        for name in lake.tables() + lake.tables("rollups"):
            catalog.sync_table(lake, name)
    if table_name:
        info = catalog.table(table_name)
        parts = catalog.partitions(table_name)
        if as_json:
            click.echo(to_json({"table": info.to_dict(), "partitions": [p.to_dict() for p in parts]}))
            return
        click.echo(
            f"{info.name} ({info.kind}, v{info.delta_version}): {info.rows} rows, "
            f"{_human_bytes(info.bytes)}, {info.files} files, {len(parts)} partitions"
        )
        for col in info.columns:
            click.echo(f"  {col.name:<20} {col.type:<14} {col.description or ''}")
        return
    tables = catalog.tables()
    rollups = {r.name: r for r in catalog.rollups()}
    if as_json:
        click.echo(
            to_json({"tables": [t.to_dict() for t in tables], "rollups": [r.to_dict() for r in rollups.values()]})
        )
        return
    if not tables:
        click.echo("the catalog is empty (run an ingest, or `workbench catalog --sync`)")
        return
    click.echo(f"{'table':<40} {'kind':<7} {'ver':>5} {'rows':>12} {'bytes':>10} {'files':>6}  synced")
    for t in tables:
        synced = t.synced_at.strftime("%Y-%m-%d %H:%M") if t.synced_at else "-"
        click.echo(
            f"{t.name:<40} {t.kind:<7} {t.delta_version!s:>5} {t.rows!s:>12} {_human_bytes(t.bytes):>10} "
            f"{t.files!s:>6}  {synced}"
        )
    for r in rollups.values():
        built = r.built_at.strftime("%Y-%m-%d %H:%M") if r.built_at else "never"
        click.echo(f"rollup {r.name}: built from {r.base_table} v{r.built_from_version} at {built}")


@click.command("querylog")
@click.option("--user", default=None, help="only this user's queries")
@click.option("--since", default=None, help="only queries at or after this ISO time")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=0))
@json_option
@handles_errors
def querylog_cmd(user: str | None, since: str | None, limit: int, as_json: bool) -> None:
    """Recent queries: route, engine, rows, bytes scanned, latency, cache hits, errors."""
    from workbench.catalog import open_catalog

    entries = open_catalog().query_log(user=user, since=_since(since), limit=limit)
    if as_json:
        click.echo(to_json({"queries": [e.to_dict() for e in entries]}))
        return
    for e in entries:
        status = f"error: {e.error}" if e.error else f"{e.rows} rows"
        latency = f"{e.latency_ms:.1f} ms" if e.latency_ms is not None else "-"
        hit = " (cache)" if e.cache_hit else ""
        click.echo(f"{e.ts:%Y-%m-%d %H:%M:%S} {e.user} [{e.route or '-'}/{e.engine or '-'}{hit}] {latency} {status}")
        click.echo(f"    {e.question or e.normalized_sql or e.sql}")


@click.command("audit")
@click.option("--user", default=None, help="only this user's entries")
@click.option("--since", default=None, help="only entries at or after this ISO time")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=0))
@json_option
@handles_errors
def audit_cmd(user: str | None, since: str | None, limit: int, as_json: bool) -> None:
    """The append-only audit log: who asked what, under which policy, and the outcome."""
    from workbench.catalog import open_catalog

    entries = open_catalog().audit_entries(user=user, since=_since(since), limit=limit)
    if as_json:
        click.echo(to_json({"entries": [e.to_dict() for e in entries]}))
        return
    for e in entries:
        rows = f"{e.rows} rows" if e.rows is not None else "-"
        click.echo(f"{e.ts:%Y-%m-%d %H:%M:%S} {e.user} {e.outcome} policy={e.policy or '-'} {rows}")
        click.echo(f"    {e.question or e.sql or ''}")


@click.command("cache")
@click.option("--clear", is_flag=True, help="drop every cached result")
@json_option
@handles_errors
def cache_cmd(clear: bool, as_json: bool) -> None:
    """Result-cache statistics (backend, entries, size, availability)."""
    from workbench.cache import open_cache

    cache = open_cache()
    if clear:
        cache.clear()
    stats = cache.stats()
    if as_json:
        click.echo(to_json(stats.to_dict()))
        return
    state = "available" if stats.available else "UNAVAILABLE"
    click.echo(f"{stats.backend} cache ({state}): {stats.entries} entries, {_human_bytes(stats.bytes)}")


COMMANDS: list[click.Command] = [catalog_cmd, querylog_cmd, audit_cmd, cache_cmd]
