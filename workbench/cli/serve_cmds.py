"""``workbench serve``: the analyst dashboard (KPIs, charts, filters, assistant chat) over HTTP."""

from __future__ import annotations

import click

from workbench.cli.output import handles_errors


@click.command("serve")
@click.option(
    "--port", type=int, default=5006, show_default=True, envvar="WORKBENCH_PORT", help="TCP port (0 = any free port)"
)
@click.option(
    "--address",
    default="127.0.0.1",
    show_default=True,
    help="interface to bind (loopback by default; any other needs auth configured)",
)
@click.option("--show", is_flag=True, help="open the dashboard in a browser")
@click.option(
    "--allow-origin",
    "allow_origins",
    multiple=True,
    help="extra host:port allowed to open the websocket (e.g. behind a proxy); repeatable",
)
@click.pass_context
@handles_errors
def serve_cmd(ctx: click.Context, port: int, address: str, show: bool, allow_origins: tuple[str, ...]) -> None:
    """Serve the dashboard until interrupted (Ctrl-C); prints its URL once it listens.

    Extra routes (``/healthz``; ``/metrics`` when the metrics module is present) are served
    next to it.
    """
    from workbench.ui.dashboard import serve

    origins = [f"{address}:{port}", f"localhost:{port}", f"127.0.0.1:{port}", *allow_origins]
    serve(port=port, address=address, show=show, lake=(ctx.obj or {}).get("lake"), allow_origins=origins)


COMMANDS: list[click.Command] = [serve_cmd]
