"""Process-wide Dask setup that must happen before any Dask dataframe is built.

``import dask_sql`` silently turns off pyarrow strings and switches the shuffle method; a
frame built before that import later fails inside dask-sql (DESIGN.md pitfalls). Calling
:func:`prepare_dask` first makes the configuration identical whether or not dask-sql is
loaded, and patches ``np.NaN`` which dask-sql 2024.5 still references.
"""

from __future__ import annotations

import numpy as np

_done = False


def prepare_dask(with_sql: bool = False) -> None:
    """Configure Dask once per process; ``with_sql`` also imports dask-sql up front."""
    global _done
    if not hasattr(np, "NaN"):
        np.NaN = np.nan  # type: ignore[misc,attr-defined]
    if with_sql:
        import dask_sql  # noqa: F401  (must precede frame creation)
    if _done:
        return
    import dask

    dask.config.set({"dataframe.convert-string": False, "dataframe.shuffle.method": "tasks"})
    _done = True
