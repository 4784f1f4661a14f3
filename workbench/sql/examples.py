"""Example queries run on both engines with timings (``make demo`` calls :func:`run_examples`)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.session import Workbench

#: (title, SQL): every example sorted by what a reader scans first, so its rows read in order
EXAMPLES: list[tuple[str, str]] = [
    (
        "revenue by region, 2024",
        "SELECT region, SUM(revenue) AS revenue FROM sales WHERE year = 2024 GROUP BY region ORDER BY revenue DESC",
    ),
    (
        "monthly revenue, 2023",
        "SELECT month, SUM(revenue) AS revenue FROM sales WHERE year = 2023 GROUP BY month ORDER BY month",
    ),
    (
        "revenue by store type (join)",
        "SELECT st.store_type, SUM(s.revenue) AS revenue FROM sales s JOIN stores st ON s.store_id = st.store_id "
        "GROUP BY st.store_type ORDER BY revenue DESC",
    ),
    (
        "quarterly revenue, 2024",
        "SELECT (month - 1) // 3 + 1 AS quarter, SUM(revenue) AS revenue FROM sales WHERE year = 2024 "
        "GROUP BY quarter ORDER BY quarter",
    ),
    (
        "category rank by revenue (window function)",
        "SELECT category, RANK() OVER (ORDER BY SUM(revenue) DESC) AS rnk FROM sales GROUP BY category ORDER BY rnk",
    ),
]


def run_examples(wb: Workbench, engines: tuple[str, ...] = ("duckdb", "dask")) -> list[dict[str, Any]]:
    """One row per (example, engine): rows, elapsed ms, files/bytes scanned, or the refusal."""
    out: list[dict[str, Any]] = []
    for title, sql in EXAMPLES:
        for engine in engines:
            start = time.perf_counter()
            row: dict[str, Any] = {"example": title, "engine": engine, "sql": sql}
            try:
                result = wb.sql(sql, engine=engine)
                row.update(
                    rows=len(result.rows),
                    elapsed_ms=result.elapsed_ms,
                    files_scanned=result.files_scanned,
                    bytes_scanned=result.bytes_scanned,
                    ok=True,
                )
            except WorkbenchError as e:
                row.update(ok=False, error=e.to_dict(), elapsed_ms=(time.perf_counter() - start) * 1000)
            out.append(row)
    return out
