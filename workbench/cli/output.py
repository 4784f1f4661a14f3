"""Printing results and errors the same way for every command (text or ``--json``)."""

from __future__ import annotations

import functools
import json
import math
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from workbench.errors import WorkbenchError

F = TypeVar("F", bound=Callable[..., Any])


def to_json(obj: Any) -> str:
    """JSON for the terminal: binary float noise (599475.8500000001) trimmed to 12 significant digits.

    12 digits keep every cent of a trillion; ``--output`` files keep full precision.
    """
    return json.dumps(_tidy(obj), default=_default, ensure_ascii=False)


def tidy_float(value: float) -> float:
    """``value`` without binary noise: 12431455.390000004 -> 12431455.39 (finite values only)."""
    return float(f"{value:.12g}") if math.isfinite(value) else value


def _tidy(obj: Any) -> Any:
    if isinstance(obj, float):
        return tidy_float(obj)
    if isinstance(obj, dict):
        return {k: _tidy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_tidy(v) for v in obj]
    return obj


def number_format(values: Any) -> Callable[[float], str]:
    """One format for a column of floats: cents and thousands separators when any reaches 1
    (money, counts), else 4 decimals (rates, shares), so a column's decimal points line up."""
    finite = [abs(v) for v in values if isinstance(v, float) and math.isfinite(v)]
    spec = ",.2f" if finite and max(finite) >= 1 else ".4f"
    return lambda v: format(v, spec) if isinstance(v, float) and math.isfinite(v) else str(v)


def table_text(df: Any, rows: int) -> str:
    """The first ``rows`` of ``df`` as aligned text: numbers right-aligned and rounded, text left-aligned."""
    head = df.head(rows)
    columns = []
    for name in head.columns:
        values = head[name].tolist()
        kind = head[name].dtype.kind
        fmt = number_format(values) if kind == "f" else (_date_format(values) if kind == "M" else str)
        cells = ["" if _missing(v) else fmt(v) for v in values]
        width = max([len(str(name)), *map(len, cells)])
        align = str.rjust if kind in "iuf" else str.ljust
        columns.append([align(str(name), width), *(align(c, width) for c in cells)])
    return "\n".join("  ".join(line).rstrip() for line in zip(*columns, strict=True))


def _date_format(values: Any) -> Callable[[Any], str]:
    """Dates without a meaningless 00:00:00 when every value of the column is a midnight."""
    dated = all(_missing(v) or (v.hour, v.minute, v.second, v.microsecond) == (0, 0, 0, 0) for v in values)
    return (lambda v: v.strftime("%Y-%m-%d")) if dated else (lambda v: v.isoformat(sep=" "))


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or str(value) in ("NaT", "<NA>")


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
