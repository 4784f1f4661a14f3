"""The measurements after the last batch: the seed's four queries, the dashboard, the assistant.

Every timing is taken the way ``benchmarks/run.py`` takes it (its helpers are reused, not
copied): plain DuckDB over the same Delta files in the same run as the baseline, paths
interleaved round by round, p50 after one warm-up, answers compared with the baseline's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from deltalake import DeltaTable

from benchmarks import bench_ask
from benchmarks import run as qrun
from workbench.lake.delta import add_actions

#: the seed's table (seed-architecture.md): share of the 100 GB dataset each row reads
SEED_ROWS: dict[str, tuple[str, float]] = {
    "simple_agg_1gb": ("1 GB simple aggregation (seed: < 0.5 s)", 0.01),
    "complex_join_10gb": ("10 GB complex join (seed: < 2 s)", 0.10),
    "multi_join_100gb": ("100 GB multi-table join (seed: < 5 s)", 1.0),
    "full_scan": ("1 TB full scan (seed: < 30 s); measured over the whole lake, 1 TB estimated below", 1.0),
}
SQL = {
    "simple_agg_1gb": (
        "SELECT category, SUM(revenue) AS revenue, SUM(quantity) AS units FROM sales WHERE {w} GROUP BY category"
    ),
    "complex_join_10gb": (
        "SELECT p.subcategory, st.store_type, s.channel, SUM(s.revenue) AS revenue, SUM(s.profit) AS profit, "
        "COUNT(*) AS n FROM sales s JOIN products p ON s.product_id = p.product_id "
        "JOIN stores st ON s.store_id = st.store_id WHERE {w} GROUP BY p.subcategory, st.store_type, s.channel"
    ),
    "multi_join_100gb": (
        "SELECT c.segment, c.loyalty_tier, p.category, st.store_type, SUM(s.revenue) AS revenue, "
        "SUM(s.profit) AS profit, COUNT(*) AS n FROM sales s JOIN products p ON s.product_id = p.product_id "
        "JOIN stores st ON s.store_id = st.store_id JOIN customers c ON s.customer_id = c.customer_id "
        "GROUP BY c.segment, c.loyalty_tier, p.category, st.store_type"
    ),
    "full_scan": (
        "SELECT COUNT(*) AS n, SUM(quantity) AS units, SUM(revenue) AS revenue, SUM(cost) AS cost, "
        "SUM(profit) AS profit, AVG(discount) AS avg_discount, MIN(date) AS first_date, MAX(date) AS last_date "
        "FROM sales"
    ),
}
#: questions no rollup can answer (payment methods, customer attributes): they run on the base table
BASE_QUESTIONS = [
    "Revenue by payment method in 2024",
    "Revenue by customer segment",
    "Profit by loyalty tier in 2023",
    "Revenue by payment method for the North region",
    "Revenue by customer segment in Q4 2023",
    "Which payment method had the highest revenue in 2022?",
]


def partition_rows(lake: Path) -> pd.DataFrame:
    """Rows per (year, month, region) partition of ``sales``, from the Delta log."""
    actions = add_actions(DeltaTable(str(lake / "sales"))).to_pandas()
    cols = {"partition.year": "year", "partition.month": "month", "partition.region": "region"}
    frame = actions.rename(columns=cols)[[*cols.values(), "num_records"]]
    return frame.astype({"year": int, "month": int}).groupby(["year", "month", "region"], as_index=False).sum()


def window(parts: pd.DataFrame, share: float, alias: str = "") -> tuple[str, float]:
    """Plain predicates (prunable, rollup-friendly) over the latest months reading about ``share`` of the rows.

    Candidates: the last k months of the last year, for the first r regions; the one whose
    share is closest (by ratio) to the target wins. Returns the predicate and its share.
    """
    if share >= 1.0:
        return "TRUE", 1.0
    total = parts["num_records"].sum()
    year = int(parts["year"].max())
    regions = sorted(parts["region"].unique())
    best: tuple[float, str, float] = (float("inf"), "TRUE", 1.0)
    for k in range(1, 13):
        months = parts[(parts["year"] == year) & (parts["month"] > 12 - k)]
        for r in range(1, len(regions) + 1):
            got = months[months["region"].isin(regions[:r])]["num_records"].sum() / total
            if got == 0:
                continue
            off = max(got / share, share / got)
            listed = ", ".join(f"'{x}'" for x in regions[:r])
            pred = f"{alias}year = {year} AND {alias}month BETWEEN {13 - k} AND 12"
            pred += f" AND {alias}region IN ({listed})" if r < len(regions) else ""
            if off < best[0]:
                best = (off, pred, float(got))
    return best[1], best[2]


def seed_queries(parts: pd.DataFrame) -> dict[str, dict[str, Any]]:
    out = {}
    for name, (row, share) in SEED_ROWS.items():
        pred, got = window(parts, share, "s." if " s " in SQL[name] or "sales s" in SQL[name] else "")
        out[name] = {"seed_row": row, "target_share": share, "share": round(got, 4), "sql": SQL[name].format(w=pred)}
    return out


def time_queries(
    wb: Any,
    base: Any,
    queries: dict[str, str],
    repeat: int,
    sampler: qrun.RssSampler,
    cache: str | None = None,
    dask: bool = False,
) -> dict[str, dict[str, Any]]:
    """Each query as routed, on the base table and on plain DuckDB (cache hits for ``cache``).

    ``dask``: also on the base table through the cluster engine (the session's Dask client), one round
    fewer than the others (it is the slow path on two cores).
    """

    def via(sql: str, **kw: Any) -> Callable[[], tuple[pd.DataFrame, str]]:
        def go() -> tuple[pd.DataFrame, str]:
            r = wb.sql(sql, user=qrun.USER, **kw)
            return r.df, r.route

        return go

    def plain(sql: str) -> qrun.Runner:
        return lambda: (base.execute(sql).df(), "plain duckdb")

    results: dict[str, dict[str, Any]] = {}
    for name, sql in queries.items():
        paths: dict[str, tuple[qrun.Runner, int]] = {
            "plain_duckdb": (plain(sql), repeat),
            "routed": (via(sql, use_cache=False), repeat),
            "base_table": (via(sql, use_cache=False, use_rollups=False), repeat),
        }
        if name == cache:
            paths["cache_hit"] = (via(sql), repeat * 3)
        if dask:
            paths["base_table_dask"] = (via(sql, use_cache=False, use_rollups=False, engine="dask"), max(1, repeat - 1))
        block = qrun.measure_block(paths, sampler)
        ref = block["plain_duckdb"]["_df"]
        for m in block.values():
            m["same_answer"] = qrun.same_answer(ref, m.pop("_df"))
            m["ratio_to_plain_duckdb"] = round(m["p50_ms"] / block["plain_duckdb"]["p50_ms"], 3)
        results[name] = block
        print(
            f"  {name}: " + ", ".join(f"{p} {m['p50_ms']:.1f} ms ({m['route']})" for p, m in block.items()), flush=True
        )
    return results


def dashboard_queries(wb: Any) -> dict[str, str]:
    """Every query a dashboard refresh runs: the default view (all dates) and a filtered one."""
    from workbench.ui.queries import FILTER_COLUMNS, Filters, bounds_query, values_query
    from workbench.ui.queries import dashboard_queries as views

    first, last = wb.sql(bounds_query().sql, user=qrun.USER).df.iloc[0]
    first, last = pd.Timestamp(first).date(), pd.Timestamp(last).date()
    quarter = dt.date(last.year, (last.month - 1) // 3 * 3 + 1, 1)
    filtered = Filters(start=quarter, end=last, region=("North",), category=("Electronics", "Clothing"))
    out = {bounds_query().name: bounds_query().sql}
    out |= {q.name: q.sql for q in (values_query(c) for c in FILTER_COLUMNS)}
    out |= {f"all:{q.name}": q.sql for q in views(Filters(start=first, end=last))}
    out |= {f"filtered:{q.name}": q.sql for q in views(filtered)}
    return out


def assistant(lake: Path, rounds: int) -> dict[str, Any]:
    """Offline question -> answer (``benchmarks/bench_ask.py``), rollup-eligible and base-table questions."""
    result = bench_ask.run(str(lake), rounds, questions=[*bench_ask.QUESTIONS, *BASE_QUESTIONS])
    runs = result["runs"]
    groups = {
        "rollup_eligible": [r for r in runs if r["question"] in bench_ask.QUESTIONS],
        "base_table": [r for r in runs if r["question"] in BASE_QUESTIONS],
    }
    summary: dict[str, Any] = {}
    for name, rows in groups.items():
        for phase in ("cold", "warm"):
            ms = [r["ms"] for r in rows if r["phase"] == phase and r["status"] == "ok"]
            summary[f"{name}:{phase}"] = {
                "asked": sum(1 for r in rows if r["phase"] == phase),
                "answered": len(ms),
                "p50_ms": round(qrun.percentile(ms, 0.5), 1) if ms else None,
                "p95_ms": round(qrun.percentile(ms, 0.95), 1) if ms else None,
                "routes": sorted({str(r["route"]).split(":")[0] for r in rows if r["phase"] == phase}),
            }
    return {"summary": summary, "runs": runs}
