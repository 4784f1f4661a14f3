"""The ``workbench`` command line.

Each command group lives in its own module under ``workbench/cli/`` and exposes a list
``COMMANDS``; this module only collects them. Heavy libraries are imported inside commands so
``workbench --help`` is instant.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from typing import Any

import click

from workbench import __version__

#: modules contributing commands; each defines ``COMMANDS: list[click.Command]``
COMMAND_MODULES: list[str] = [
    "workbench.cli.lake_cmds",
    "workbench.cli.catalog_cmds",
    "workbench.cli.sql_cmds",
    "workbench.cli.ask_cmds",
    "workbench.cli.assistant_cmds",
    "workbench.cli.cluster_cmds",
    "workbench.cli.serve_cmds",
    "workbench.cli.trust_cmds",
    "workbench.cli.byod_cmds",
    "workbench.cli.rollup_cmds",
    "workbench.cli.auth_cmds",
]


class WorkbenchCLI(click.Group):
    """The command group, exiting without interpreter teardown when it is the process's entry point.

    Measured (benchmarks/bench_startup.py): after an offline ``workbench ask`` the interpreter
    spent ~0.35 CPU-s (a quarter of the run) tearing down pandas, pyarrow, SQLAlchemy and
    LangChain module state nobody needs once the answer is printed. Everything a clean exit
    guarantees is kept: non-daemon threads are joined, atexit handlers run (logging, catalog,
    coverage), and stdout/stderr are flushed. Called with explicit ``args`` (tests,
    ``CliRunner``, scripts embedding the CLI) it returns or raises as usual.
    """

    def main(self, args: Any = None, *rest: Any, **kwargs: Any) -> Any:
        if args is not None or not kwargs.get("standalone_mode", True) or os.environ.get("WORKBENCH_SLOW_EXIT"):
            return super().main(args, *rest, **kwargs)
        try:
            return super().main(args, *rest, **kwargs)
        except SystemExit as e:
            _exit_now(e.code)


def _exit_now(code: Any) -> None:
    """``sys.exit(code)`` minus the module teardown (see :class:`WorkbenchCLI`)."""
    import atexit

    status = code if isinstance(code, int) else (0 if code is None else 1)
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is not None:
        shutdown()  # join non-daemon threads, as the interpreter does before atexit
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            status = status or 1  # stdout closed early (e.g. piped into `head`): like Python's exit
    os._exit(status)


@click.group(cls=WorkbenchCLI, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="workbench")
@click.option("--lake", envvar="WORKBENCH_LAKE", default=None, help="lake URL (folder or s3://bucket/prefix)")
@click.pass_context
def main(ctx: click.Context, lake: str | None) -> None:
    """Retail Insights Workbench: ask questions of large retail data."""
    import warnings

    # a library's notice about its own future defaults is not the user's business
    warnings.filterwarnings("ignore", message=".*allowed_objects.*")
    ctx.ensure_object(dict)
    ctx.obj["lake"] = lake


for _name in COMMAND_MODULES:
    for _cmd in importlib.import_module(_name).COMMANDS:
        main.add_command(_cmd)
