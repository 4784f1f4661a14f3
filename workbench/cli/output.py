"""Printing results and errors the same way for every command (text or ``--json``)."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from workbench.errors import WorkbenchError

F = TypeVar("F", bound=Callable[..., Any])


def to_json(obj: Any) -> str:
    return json.dumps(obj, default=_default, ensure_ascii=False)


def _default(value: Any) -> Any:
    import datetime as _dt
    import decimal

    import numpy as np

    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if np.isnan(value) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def emit_error(err: WorkbenchError, as_json: bool) -> None:
    """Print an error in the one JSON shape ``{"error": {type, message, hint}}`` or as text."""
    if as_json:
        click.echo(to_json({"error": err.to_dict()}))
    else:
        click.secho(f"error: {err.message}", fg="red", err=True)
        if err.hint:
            click.echo(f"hint: {err.hint}", err=True)


def handles_errors(func: F) -> F:
    """Turn WorkbenchErrors into the standard output and exit code (no tracebacks for users)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("as_json"))
        try:
            return func(*args, **kwargs)
        except WorkbenchError as err:
            emit_error(err, as_json)
            sys.exit(err.exit_code)
        except KeyboardInterrupt:
            emit_error(WorkbenchError("interrupted", "nothing was committed; re-run the command"), as_json)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


json_option = click.option("--json", "as_json", is_flag=True, help="print one JSON object instead of text")
