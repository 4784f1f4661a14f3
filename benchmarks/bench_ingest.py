"""Benchmark: generate and ingest throughput (rows/s) and peak memory at 1M / 10M rows.

Each phase runs in a fresh subprocess; a sampler thread sums the RSS of that process and all
its children (Dask workers included) every 50 ms, so the peak is the whole tree's. Results go
to ``benchmarks/results/ingest-<rows>.json`` and a Markdown table ``ingest.md``.

    .venv/bin/python benchmarks/bench_ingest.py --rows 1000000 [--rows 10000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from benchmarks.scale.proc import tree_rss

RESULTS = Path(__file__).resolve().parent / "results"

GENERATE = "from workbench.lake.generate import generate; import sys; generate(int(sys.argv[1]), sys.argv[2], seed=42)"
INGEST = (
    "from workbench.lake.ingest import ingest; import sys, json; r = ingest(sys.argv[1], sys.argv[2]);"
    " print(json.dumps(r.to_dict()))"
)


LOADS: list[float] = []


def run_measured(code: str, *args: str, env: dict[str, str]) -> tuple[float, int, str, float]:
    """Run ``python -c code args``; return (seconds, peak tree RSS bytes, stdout, CPU seconds).

    CPU seconds (user + system of the child tree) are reported too because this machine is
    shared: wall time under contention says more about the neighbours than about the code.
    The 1-minute load average is sampled during the run (``LOADS``) for the same reason.
    """
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, env=env, text=True)
    ps = psutil.Process(proc.pid)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            try:
                peak = max(peak, tree_rss(ps))
            except psutil.Error:
                pass
            LOADS.append(os.getloadavg()[0])
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    if proc.returncode:
        raise SystemExit(f"benchmark step failed ({proc.returncode}): {code}")
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return seconds, peak, out, cpu


def bench(rows: int, workdir: Path) -> dict[str, Any]:
    landing, lake = workdir / "landing", workdir / "lake"
    env = {**os.environ, "WORKBENCH_HOME": str(workdir / "home"), "WORKBENCH_PII_KEY": "bench-key"}
    load = os.getloadavg()[0]
    LOADS.clear()
    gen_s, gen_peak, _, gen_cpu = run_measured(GENERATE, str(rows), str(landing), env=env)
    landing_bytes = sum(p.stat().st_size for p in landing.iterdir())
    ing_s, ing_peak, out, ing_cpu = run_measured(INGEST, str(landing), str(lake), env=env)
    report = json.loads(out.strip().splitlines()[-1])
    sales = report["tables"]["sales"]
    phases = report.get("phases", {})
    # the ingest proper: stage + dedupe + write + commit (+ dimensions), without interpreter
    # start-up, imports and the post-ingest hook (rollups, catalog, cache: other modules)
    core = [v for k, v in phases.items() if k != "after_ingest"]
    core_wall = sum(v["wall_s"] for v in core)
    core_cpu = sum(v["cpu_s"] for v in core)
    again_s, _, _, _ = run_measured(INGEST, str(landing), str(lake), env=env)
    return {
        "rows": rows,
        "landing_mb": round(landing_bytes / 2**20, 1),
        "generate_s": round(gen_s, 2),
        "generate_rows_per_s": round(rows / gen_s),
        "generate_peak_rss_mb": round(gen_peak / 2**20),
        "generate_cpu_s": round(gen_cpu, 2),
        "ingest_s": round(ing_s, 2),
        "ingest_rows_per_s": round(rows / ing_s),
        "ingest_peak_rss_mb": round(ing_peak / 2**20),
        "ingest_cpu_s": round(ing_cpu, 2),
        "ingest_rows_per_cpu_s": round(rows / ing_cpu),
        "load_avg_at_start": round(load, 1),
        "load_avg_mean": round(sum(LOADS) / max(1, len(LOADS)), 1),
        "load_avg_max": round(max(LOADS, default=0.0), 1),
        "ingest_core_s": round(core_wall, 2),
        "ingest_core_cpu_s": round(core_cpu, 2),
        "ingest_core_rows_per_s": round(rows / core_wall) if core_wall else None,
        "ingest_core_rows_per_cpu_s": round(rows / core_cpu) if core_cpu else None,
        "ingest_phases": phases,
        "ingest_inner_s": report["seconds"],
        "sales_rows_written": sales["rows_written"],
        "sales_dropped": sales["dropped"],
        "sales_data_files": sales["data_files_written"],
        "reingest_noop_s": round(again_s, 2),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_markdown() -> None:
    rows = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("ingest-*.json"))]
    rows.sort(key=lambda r: r["rows"])
    lines = [
        "# Ingest benchmark (benchmarks/bench_ingest.py)",
        "",
        "Wall time of fresh subprocesses (imports included); peak = max summed RSS of the process tree.",
        "",
        "CPU = user+system seconds of the process tree. The machine (2 cores) is shared with other",
        "engineers: load = 1-minute load average, mean / max while the benchmark ran. At load L the",
        "benchmark gets roughly 2/L of the machine, so wall times say more about the neighbours than",
        "about the code; rows per CPU-second say what the code costs (x2 = rows/s on 2 idle cores).",
        "",
        "| rows | landing CSV | generate | gen CPU | gen peak | ingest | ingest CPU | ingest rows/s (wall / per CPU-s)"
        " | ingest peak | files | re-ingest | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        load = f"{r['load_avg_mean']} / {r['load_avg_max']}" if "load_avg_mean" in r else r["load_avg_at_start"]
        lines.append(
            f"| {r['rows']:,} | {r['landing_mb']} MB | {r['generate_s']} s | {r['generate_cpu_s']} s |"
            f" {r['generate_peak_rss_mb']} MB | {r['ingest_s']} s | {r['ingest_cpu_s']} s |"
            f" {r['ingest_rows_per_s']:,} / {r['ingest_rows_per_cpu_s']:,} |"
            f" {r['ingest_peak_rss_mb']} MB | {r['sales_data_files']} | {r['reingest_noop_s']} s |"
            f" {load} |"
        )
    phased = [r for r in rows if r.get("ingest_phases")]
    if phased:
        names = list(dict.fromkeys(k for r in phased for k in r["ingest_phases"]))
        lines += [
            "",
            "Ingest proper (report phases: no interpreter start-up, no imports, no post-ingest hook),",
            "and CPU-seconds per phase (process CPU, all threads):",
            "",
            "| rows | core wall | core CPU | core rows/s (wall / per CPU-s) | "
            + " | ".join(f"{n} CPU" for n in names)
            + " |",
            "|---|---|---|---|" + "---|" * len(names),
        ]
        for r in phased:
            ph = r["ingest_phases"]
            lines.append(
                f"| {r['rows']:,} | {r['ingest_core_s']} s | {r['ingest_core_cpu_s']} s |"
                f" {r['ingest_core_rows_per_s']:,} / {r['ingest_core_rows_per_cpu_s']:,} | "
                + " | ".join(f"{ph[n]['cpu_s']} s" if n in ph else "-" for n in names)
                + " |"
            )
    notes = RESULTS / "ingest-notes.md"
    if notes.exists():
        lines += ["", notes.read_text().rstrip()]
    (RESULTS / "ingest.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, action="append", help="row counts (repeatable); default 1M")
    parser.add_argument("--keep", help="work folder to keep (default: a temporary one, removed)")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    for rows in args.rows or [1_000_000]:
        workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-ingest-"))
        try:
            result = bench(rows, workdir)
        finally:
            if not args.keep:
                shutil.rmtree(workdir, ignore_errors=True)
        (RESULTS / f"ingest-{rows}.json").write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result))
    write_markdown()


if __name__ == "__main__":
    main()
