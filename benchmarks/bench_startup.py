"""Cold start-up of the command line: ``workbench --help`` and an offline ``workbench ask``.

A new user's ``workbench ask`` took 3-4 s of wall time for ~1 s of work (issue 15): start-up
imports and interpreter teardown dominated. This measures what a user waits for, each run a
fresh process, with the result cache emptied before every ``ask`` so nothing is answered
from a previous run. The lake is small (generated and ingested once into a temporary
folder) so start-up, not data, dominates.

The machine is shared, so wall times move with its load. ``--baseline PATH`` (a checkout of
the code to compare with, e.g. ``git worktree add /tmp/base main``) runs the same commands
from that tree in the same rounds, interleaved, so the ratio is measured under one load.
CPU seconds (user + sys of the child) are reported too: they move much less with load.

    python -m benchmarks.bench_startup [--rounds 5] [--baseline PATH] [--rows 20000]

Results go to ``benchmarks/results/startup.json`` and ``startup.md``.
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

HERE = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
#: the questions asked (a different one each round, cache emptied before each)
QUESTIONS = ["Top 5 categories by profit in 2022", "Revenue by region", "Units sold by channel in 2023"]


def _workbench(tree: Path, *args: str, cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Run ``workbench ARGS`` from ``tree`` as a user would (the console script, a fresh
    interpreter); return (wall seconds, CPU seconds of the child)."""
    script = Path(sys.executable).parent / "workbench"
    cmd = [str(script), *args] if script.exists() else [sys.executable, "-m", "workbench.cli", *args]
    before = os.times()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env={**env, "PYTHONPATH": str(tree)}, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = os.times()
    if proc.returncode != 0:
        raise RuntimeError(f"workbench {' '.join(args)} exited {proc.returncode}: {proc.stderr[-2000:]}")
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return wall, cpu


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKBENCH_", "OPENAI_"))}
    env["WORKBENCH_LAKE"] = str(root / "lake")
    env["PYTHONWARNINGS"] = "ignore"
    return env


def _stats(samples: list[tuple[float, float]]) -> dict[str, Any]:
    walls, cpus = [w for w, _ in samples], [c for _, c in samples]
    return {"wall_p50": statistics.median(walls), "wall_min": min(walls), "cpu_p50": statistics.median(cpus),
            "runs": samples}  # fmt: skip


def measure(trees: dict[str, Path], rounds: int, rows: int) -> dict[str, Any]:
    """Build a small lake, then time ``--help`` and cold offline ``ask`` for each tree, interleaved."""
    root = Path(tempfile.mkdtemp(prefix="wb-startup-"))
    env = _env(root)
    current = trees[next(iter(trees))]
    samples: dict[str, dict[str, list[tuple[float, float]]]] = {t: {"help": [], "ask": []} for t in trees}
    try:
        _workbench(current, "generate", "--rows", str(rows), "--out", str(root / "landing"), cwd=root, env=env)
        _workbench(current, "ingest", str(root / "landing"), cwd=root, env=env)
        for tree in trees.values():  # warm the OS file cache, build the vocabulary and summaries
            _workbench(tree, "ask", QUESTIONS[0], cwd=root, env=env)
        for i in range(rounds):
            for label, tree in trees.items():
                samples[label]["help"].append(_workbench(tree, "--help", cwd=root, env=env))
                (root / ".workbench" / "cache.db").unlink(missing_ok=True)
                samples[label]["ask"].append(_workbench(tree, "ask", QUESTIONS[i % len(QUESTIONS)], cwd=root, env=env))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {
        "trees": {label: {"help": _stats(s["help"]), "ask": _stats(s["ask"])} for label, s in samples.items()},
        "rows": rows,
        "rounds": rounds,
        "load_avg": os.getloadavg()[0],
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write(result: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "startup.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Cold start-up (`python -m benchmarks.bench_startup`)",
        "",
        f"Measured {result['at']}, {result['rounds']} interleaved rounds, load average {result['load_avg']:.1f} "
        f"({result['machine']}). Fresh process per run; result cache emptied before each `ask`; offline "
        "planner; small lake. CPU = user + sys seconds of the command.",
        "",
        "| code | `workbench --help` wall p50 | CPU p50 | offline `workbench ask` wall p50 | CPU p50 |",
        "|---|---:|---:|---:|---:|",
    ]
    trees = result["trees"]
    for label, r in trees.items():
        h, a = r["help"], r["ask"]
        lines.append(
            f"| {label} | {h['wall_p50'] * 1000:.0f} ms | {h['cpu_p50'] * 1000:.0f} ms "
            f"| {a['wall_p50'] * 1000:.0f} ms | {a['cpu_p50'] * 1000:.0f} ms |"
        )
    if len(trees) == 2:
        (new, n), (old, o) = trees.items()
        ratios = [
            f"{c} wall {o[c]['wall_p50'] / n[c]['wall_p50']:.2f}x, CPU {o[c]['cpu_p50'] / n[c]['cpu_p50']:.2f}x"
            for c in ("help", "ask")
        ]
        lines += ["", f"Speed-up of {new} over {old}: " + "; ".join(ratios)]
    (RESULTS / "startup.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--label", default="this tree")
    parser.add_argument("--baseline", type=Path, default=None, help="a checkout of the code to compare with")
    parser.add_argument("--baseline-label", default="baseline")
    args = parser.parse_args()
    trees = {args.label: HERE}
    if args.baseline is not None:
        trees[args.baseline_label] = args.baseline.resolve()
    result = measure(trees, args.rounds, args.rows)
    write(result)
    print((RESULTS / "startup.md").read_text())


if __name__ == "__main__":
    main()
