"""Lake commands: generate, ingest, tables."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
