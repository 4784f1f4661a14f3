"""Cold start-up of the command line: ``workbench --help`` and an offline ``workbench ask``.

A new user's ``workbench ask`` took 3-4 s of wall time for ~1 s of work (issue 15): start-up
imports dominated. This measures what a user waits for, each run a fresh process, with the
result cache emptied before every ``ask`` so nothing is answered from a previous run. The lake
is small (generated and ingested once into a temporary folder) so imports, not data, dominate.

    python -m benchmarks.bench_startup [--rounds 5] [--label today|after] [--rows 20000]

Results are merged into ``benchmarks/results/startup.json`` under the label, and
``startup.md`` is rewritten from all labels, so "before" and "after" sit side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
#: the questions asked (each one once per round, a different one each time, cache emptied)
QUESTIONS = ["Top 5 categories by profit in 2022", "Revenue by region", "Units sold by channel in 2023"]


def _workbench(*args: str, cwd: Path, env: dict[str, str]) -> float:
    """Run ``workbench ARGS`` in a fresh interpreter; return its wall time in seconds."""
    cmd = [sys.executable, "-c", "import sys; from workbench.cli import main; sys.exit(main())", *args]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode not in (0,):
        raise RuntimeError(f"workbench {' '.join(args)} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return elapsed


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKBENCH_", "OPENAI_"))}
    env["WORKBENCH_LAKE"] = str(root / "lake")
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    env["PYTHONWARNINGS"] = "ignore"
    return env


def measure(rounds: int, rows: int) -> dict[str, Any]:
    """Build a small lake, then time ``--help`` and cold offline ``ask`` ``rounds`` times each."""
    root = Path(tempfile.mkdtemp(prefix="wb-startup-"))
    env = _env(root)
    try:
        _workbench("generate", "--rows", str(rows), "--out", str(root / "landing"), cwd=root, env=env)
        _workbench("ingest", str(root / "landing"), cwd=root, env=env)
        _workbench("ask", QUESTIONS[0], cwd=root, env=env)  # warm the OS file cache, build indexes
        helps, asks = [], []
        for i in range(rounds):
            helps.append(_workbench("--help", cwd=root, env=env))
            shutil.rmtree(root / ".workbench" / "cache.db", ignore_errors=True)
            (root / ".workbench" / "cache.db").unlink(missing_ok=True)
            asks.append(_workbench("ask", QUESTIONS[i % len(QUESTIONS)], cwd=root, env=env))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {
        "help_s": {"p50": statistics.median(helps), "min": min(helps), "runs": helps},
        "ask_s": {"p50": statistics.median(asks), "min": min(asks), "runs": asks},
        "rows": rows,
        "rounds": rounds,
        "load_avg": os.getloadavg()[0],
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write(label: str, result: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "startup.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[label] = result
    path.write_text(json.dumps(data, indent=2) + "\n")
    lines = [
        "# Cold start-up (`python -m benchmarks.bench_startup`)",
        "",
        "Fresh process per run; result cache emptied before each `ask`; offline planner; small lake.",
        "",
        "| label | measured at | `workbench --help` p50 | offline `workbench ask` p50 | rounds | load avg |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, r in data.items():
        lines.append(
            f"| {name} | {r['at']} | {r['help_s']['p50'] * 1000:.0f} ms | {r['ask_s']['p50'] * 1000:.0f} ms"
            f" | {r['rounds']} | {r['load_avg']:.1f} |"
        )
    (RESULTS / "startup.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--label", default="after")
    args = parser.parse_args()
    result = measure(args.rounds, args.rows)
    write(args.label, result)
    print(json.dumps({args.label: {k: result[k] for k in ("help_s", "ask_s")}}, indent=1))


if __name__ == "__main__":
    main()
