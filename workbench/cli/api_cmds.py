"""``workbench api``: the HTTP API (/metrics, /healthz, /api/sql, /api/ask) without Panel."""

from __future__ import annotations

import click

from workbench.cli.output import handles_errors


@click.command("api")
@click.option("--port", type=int, default=8080, show_default=True, help="0 picks a free port")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="bind address (another than loopback needs auth configured)"
)
@click.option("--sessions", type=int, default=2, show_default=True, help="query sessions (concurrent queries)")
@click.option("--lake", default=None, help="lake URL (folder or s3://bucket/prefix); default settings.lake")
@click.pass_context
@handles_errors
def api_cmd(ctx: click.Context, port: int, host: str, sessions: int, lake: str | None) -> None:
    """Serve the workbench's HTTP API (the same handlers `workbench serve` mounts).

    Requests authenticate with `Authorization: Bearer <token>` (`workbench token create`, or an
    access token of the configured OIDC provider). With no authentication configured the API
    serves on loopback only, as the local user.
    """
    import asyncio
    import signal

    from workbench.auth.binding import check_bind
    from workbench.observability.http import make_app

    async def main() -> None:
        app = make_app(lake or (ctx.obj or {}).get("lake"), sessions=sessions)
        backend = app.settings["workbench_backend"]
        try:
            notice = check_bind("API", host, backend.auth.required, backend.settings.user)
        except Exception:
            backend.close()
            raise
        server = app.listen(port, address=host)
        bound = next(iter(server._sockets.values())).getsockname()[1]
        click.echo(notice, err=True)
        click.echo(f"workbench api listening on http://{host}:{bound}", err=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        server.stop()
        backend.close()

    asyncio.run(main())


COMMANDS: list[click.Command] = [api_cmd]
