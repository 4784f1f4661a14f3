"""``workbench cluster``: which Dask cluster this configuration uses, and its state."""

from __future__ import annotations

import click

from workbench.cli.output import handles_errors, json_option, to_json


@click.command("cluster")
@click.option("--no-connect", is_flag=True, help="only show the configured target; start nothing")
@json_option
@handles_errors
def cluster(no_connect: bool, as_json: bool) -> None:
    """Show the Dask cluster: kind (local/scheduler/gateway), address, workers, dashboard.

    Connecting starts a LocalCluster or a gateway cluster when that is what is configured;
    it is shut down again when the command exits.
    """
    from workbench.cluster import close_client, cluster_info

    try:
        info = cluster_info(connect=not no_connect)
    finally:
        close_client()
    if as_json:
        click.echo(to_json(info))
        return
    click.echo(f"kind:      {info['kind']}")
    click.echo(f"target:    {info['target']}")
    if not info["connected"]:
        click.echo("connected: no")
        return
    click.echo(f"address:   {info['address']}")
    click.echo(f"workers:   {info['workers']} ({info['threads']} threads, {info['memory_bytes'] / 2**30:.1f} GiB)")
    click.echo(f"dashboard: {info['dashboard'] or '-'}")


COMMANDS: list[click.Command] = [cluster]
