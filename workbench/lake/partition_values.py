"""Comparing partition values with filter values: one coercion for pruning and estimates.

Delta stores partition values as text (``"2024"``, ``"North"``); SQL literals and filter
values arrive as numbers, strings or dates. Both the query pruner (``workbench.sql.pruning``)
and the catalog's scan estimates (``workbench.catalog.estimate``) compare the two, and must
agree, or an estimate would count files the pruner skips.
"""

from __future__ import annotations

import datetime as dt
from typing import Any


def coerce_like(value: Any, like: Any) -> Any:
    """``value`` brought to the type of ``like`` when it can be; unchanged otherwise.

    Dates become ISO text (how Delta writes them); a boolean or missing ``like`` gives no
    type to follow; text that is not a number stays text (the comparison then keeps the file).
    """
    if isinstance(value, (dt.date, dt.datetime)):
        value = value.isoformat()
    if isinstance(like, bool) or like is None:
        return value
    if isinstance(like, (int, float)) and not isinstance(value, (int, float)):
        try:
            return float(value)
        except (TypeError, ValueError):
            return value
    if isinstance(like, str) and not isinstance(value, str):
        return str(value)
    return value
