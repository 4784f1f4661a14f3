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

RESULTS = Path(__file__).resolve().parent / "results"

GENERATE = "from workbench.lake.generate import generate; import sys; generate(int(sys.argv[1]), sys.argv[2], seed=42)"
INGEST = (
    "from workbench.lake.ingest import ingest; import sys, json; r = ingest(sys.argv[1], sys.argv[2]);"
    " print(json.dumps(r.to_dict()))"
)


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_measured(code: str, *args: str, env: dict[str, str]) -> tuple[float, int, str, float]:
    """Run ``python -c code args``; return (seconds, peak tree RSS bytes, stdout, CPU seconds).

    CPU seconds (user + system of the child tree) are reported too because this machine is
    shared: wall time under contention says more about the neighbours than about the code.
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
                peak = max(peak, _tree_rss(ps))
            except psutil.Error:
                pass
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
    gen_s, gen_peak, _, gen_cpu = run_measured(GENERATE, str(rows), str(landing), env=env)
    landing_bytes = sum(p.stat().st_size for p in landing.iterdir())
    ing_s, ing_peak, out, ing_cpu = run_measured(INGEST, str(landing), str(lake), env=env)
    report = json.loads(out.strip().splitlines()[-1])
    sales = report["tables"]["sales"]
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
        "CPU = user+system seconds of the process tree (the machine is shared; see load).",
        "",
        "| rows | landing CSV | generate | gen CPU | gen peak | ingest | ingest CPU | ingest rows/s (wall / per CPU-s)"
        " | ingest peak | files | re-ingest | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['rows']:,} | {r['landing_mb']} MB | {r['generate_s']} s | {r['generate_cpu_s']} s |"
            f" {r['generate_peak_rss_mb']} MB | {r['ingest_s']} s | {r['ingest_cpu_s']} s |"
            f" {r['ingest_rows_per_s']:,} / {r['ingest_rows_per_cpu_s']:,} |"
            f" {r['ingest_peak_rss_mb']} MB | {r['sales_data_files']} | {r['reingest_noop_s']} s |"
            f" {r['load_avg_at_start']} |"
        )
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
