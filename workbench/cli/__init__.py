"""The ``workbench`` command line.

Each command group lives in its own module under ``workbench/cli/`` and exposes a list
``COMMANDS``; this module only collects them. Heavy libraries are imported inside commands so
``workbench --help`` is instant.
"""

from __future__ import annotations

import importlib

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


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="workbench")
@click.option("--lake", envvar="WORKBENCH_LAKE", default=None, help="lake URL (folder or s3://bucket/prefix)")
@click.pass_context
def main(ctx: click.Context, lake: str | None) -> None:
    """Retail Insights Workbench: ask questions of large retail data."""
    ctx.ensure_object(dict)
    ctx.obj["lake"] = lake


for _name in COMMAND_MODULES:
    for _cmd in importlib.import_module(_name).COMMANDS:
        main.add_command(_cmd)
