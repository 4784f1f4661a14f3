"""``workbench rollups``: list the rollups with their freshness, and (re)build them.

An ingest refreshes rollups by itself (``workbench.lake.hooks``); this command is for a
first build on an existing lake, after a configuration change, or after a commit the
refresh did not see (a stale rollup is never used by the router, only slower).
"""

from __future__ import annotations

from typing import Any

import click

from workbench.cli.output import handles_errors, json_option, to_json


@click.group("rollups")
def rollups_group() -> None:
    """Pre-aggregated tables over sales (see settings.rollups)."""


@rollups_group.command("list")
@json_option
@click.pass_context
@handles_errors
def list_cmd(ctx: click.Context, as_json: bool) -> None:
    """Each configured rollup, the sales version it was built from, and whether that is current."""
    from workbench.lake.storage import Lake
    from workbench.sql.rollups import configured, rollup_state

    lake = Lake((ctx.obj or {}).get("lake"))
    sales = lake.version("sales") if lake.exists("sales") else None
    rows: list[dict[str, Any]] = []
    for r in configured(lake.settings):
        state = rollup_state(lake, r) or {}
        base = state.get("base_version")
        if not state:
            why = "not built"
        elif state.get("definition") != r.definition():
            why = "definition changed"
        elif base != sales:
            why = f"built from sales@v{base}, sales is at v{sales}"
        else:
            why = ""
        rows.append(
            {
                "name": r.name,
                "table": r.table,
                "dimensions": list(r.dimensions),
                "built_from": base,
                "sales_version": sales,
                "fresh": not why,
                "stale_reason": why or None,
            }
        )
    if as_json:
        click.echo(to_json(rows))
        return
    for row in rows:
        status = f"fresh (sales@v{row['built_from']})" if row["fresh"] else f"STALE: {row['stale_reason']}"
        click.echo(f"{row['name']:<32} {status:<44} {', '.join(row['dimensions'])}")
    if any(not row["fresh"] for row in rows):
        click.echo("stale rollups are not used (queries read sales instead): run `workbench rollups build`")


@rollups_group.command("build")
@json_option
@click.pass_context
@handles_errors
def build_cmd(ctx: click.Context, as_json: bool) -> None:
    """Rebuild every configured rollup from the current sales version (one Delta commit each)."""
    from workbench.lake.storage import Lake
    from workbench.sql.rollups import build

    lake = Lake((ctx.obj or {}).get("lake"))
    builds = build(lake, lake.settings)
    if as_json:
        click.echo(to_json([b.to_dict() for b in builds]))
        return
    for b in builds:
        click.echo(f"{b.name:<32} {b.mode:<8} {b.rows:>10,} rows from sales@v{b.base_version} ({b.seconds:.1f} s)")


COMMANDS = [rollups_group]
