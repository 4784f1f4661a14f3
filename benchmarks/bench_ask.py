"""Question -> answer latency of the assistant with the offline planner (issue 5 target).

DESIGN.md's target: an offline question -> answer for a rollup-eligible question at scale in
p50 < 1 s. Each question below is asked once in a fresh session (so nothing comes from the
conversation), first cold (no result cache) and then warm (the same question again, answered
from the cache); the answer's route shows which path answered. Results are written as JSON and
Markdown into ``benchmarks/results/``.

    python -m benchmarks.bench_ask --lake LAKE [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"

#: rollup-eligible questions (sums/counts by dimensions the rollups carry), all distinct
QUESTIONS = [
    "What was the total revenue in 2023?",
    "Show revenue by region for 2024",
    "Top 5 categories by profit in 2022",
    "Monthly revenue trend for 2023",
    "Which region had the highest revenue in Q4 2023?",
    "What is the profit margin by category?",
    "Clothing revenue in the South in 2022",
    "Compare revenue in North vs South for 2024",
    "Units sold by category in December 2023",
    "Total profit for the Mobile channel in 2023",
    "What share of revenue came from Online in 2024?",
    "Year over year revenue growth for Electronics in 2024",
    "Revenue by year",
    "Profit by region and year",
    "Revenue by category for the Central region in Q1 2024",
    "Which channel has the highest profit margin?",
]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(lake: str, rounds: int, questions: list[str] | None = None) -> dict[str, Any]:
    """Ask ``questions`` (default :data:`QUESTIONS`) cold then warm, ``rounds`` times."""
    import workbench

    wb = workbench.connect(lake=lake)
    sales_rows = int(wb.sql("SELECT COUNT(*) AS n FROM sales").df.iloc[0, 0])
    wb.ask("Revenue by year", session="warmup")  # imports, vocabulary, summary index: paid once
    rows: list[dict[str, Any]] = []
    for r in range(rounds):
        for i, question in enumerate(questions or QUESTIONS):
            for phase in ("cold", "warm"):
                if phase == "cold":
                    wb.router.local.clear()  # session results
                    wb.router.cache.clear()  # shared result cache
                start = time.perf_counter()
                answer = wb.ask(question, session=f"bench-{r}-{i}-{phase}")
                ms = (time.perf_counter() - start) * 1000
                rows.append(
                    {
                        "question": question,
                        "phase": phase,
                        "ms": round(ms, 1),
                        "route": answer.route,
                        "status": answer.status,
                    }
                )
    out: dict[str, Any] = {
        "what": "offline planner: question -> answer (plan, SQL through the router, narrative, sources)",
        "lake_sales_rows": sales_rows,
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "load_avg_1m": os.getloadavg()[0],
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "runs": rows,
        "summary": {},
    }
    for phase in ("cold", "warm"):
        answered = [x["ms"] for x in rows if x["phase"] == phase and x["status"] == "ok"]
        rollup = [x["ms"] for x in rows if x["phase"] == phase and str(x["route"]).startswith("rollup")]
        out["summary"][phase] = {
            "answered": len(answered),
            "p50_ms": round(statistics.median(answered), 1) if answered else None,
            "p95_ms": round(_pct(answered, 0.95), 1) if answered else None,
            "rollup_answers": len(rollup),
            "rollup_p50_ms": round(statistics.median(rollup), 1) if rollup else None,
        }
    wb.close()
    return out


def write(result: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"ask-{result['lake_sales_rows']}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1))
    lines = [
        f"# Assistant latency (offline planner), {result['lake_sales_rows']:,} sales rows",
        "",
        f"Measured {result['measured_at']} on {result['machine']} (shared; load average {result['load_avg_1m']:.1f}).",
        "Cold = result cache emptied before the question; warm = the same question again.",
        "",
        "| phase | answered | p50 ms | p95 ms | answered from a rollup | rollup p50 ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for phase, s in result["summary"].items():
        lines.append(
            f"| {phase} | {s['answered']} | {s['p50_ms']} | {s['p95_ms']} "
            f"| {s['rollup_answers']} | {s['rollup_p50_ms']} |"
        )
    lines += ["", "| question | phase | ms | route |", "|---|---|---:|---|"]
    lines += [f"| {x['question']} | {x['phase']} | {x['ms']} | {x['route']} |" for x in result["runs"]]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return stem.with_suffix(".md")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lake", required=True)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    path = write(run(args.lake, args.rounds))
    print(path.read_text())


if __name__ == "__main__":
    main()
