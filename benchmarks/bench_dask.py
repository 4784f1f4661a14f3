"""The cluster engine against plain DuckDB and the DuckDB route, on 1 and 2 workers, with a scaling model.

For the simple aggregation, the pruned aggregation and the 3-table join of ``benchmarks.run``
(same dataset folder, same plain-DuckDB baseline), per worker count:

- ``baseline``: plain DuckDB over the Delta file lists (``run.baseline_connection``);
- ``wb_duckdb``: ``Workbench.sql(engine="duckdb")``, cache and rollups off;
- ``wb_dask``: ``Workbench.sql(engine="dask")`` on a LocalCluster of N one-thread worker processes
  (a one-round query goes to the workers' DuckDB runners directly, ``dask_direct``);
- ``wb_dask_tasks``: the same with ``dask_direct`` off, every query as scheduled tasks.

p50/p95 after one warm-up, interleaved round by round; ratio of each p50 to the baseline's;
peak RSS of each worker process during the dask runs; same answer as the baseline.

Also per worker count: the round trip of one empty call per worker, as tasks and as runner calls
(the floor under any query of either kind). Scaling inputs, measured in the same run
(``scaling`` in the JSON), on the tasks-only path: its tasks from Dask's task stream (count,
compute seconds, bytes of Parquet read per task and per worker), the client-side fixed time per
query (wall time minus the span of its tasks), and the scheduler's cost per task (500 no-op
tasks). ``benchmarks/results/scaling.md`` turns them into predictions and checks the 1 -> 2
worker prediction against the 2-worker measurement.

    .venv/bin/python -m benchmarks.bench_dask --rows 10000000 --workers 1 2 [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from benchmarks import run as base_run

QUERIES = {k: base_run.QUERIES[k] for k in ("simple_agg", "filtered_agg", "join3")}


class WorkerRss:
    """Peak RSS of each Dask worker process, sampled every 20 ms while active."""

    def __init__(self, pids: list[int]) -> None:
        self.procs = [psutil.Process(p) for p in pids]
        self.peak = dict.fromkeys(pids, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for p in self.procs:
                try:
                    self.peak[p.pid] = max(self.peak[p.pid], p.memory_info().rss)
                except psutil.Error:
                    pass
            self._stop.wait(0.02)

    def stop(self) -> list[float]:
        self._stop.set()
        self._thread.join()
        return [round(v / 2**20, 1) for v in self.peak.values()]


def scheduler_cost_per_task(client: Any, n: int = 500) -> float:
    """Seconds of scheduling and messaging per task: ``n`` no-op tasks, end to end."""
    client.gather(client.map(_noop, range(50), pure=False))  # warm
    t0 = time.perf_counter()
    client.gather(client.map(_noop, range(n), pure=False))
    return (time.perf_counter() - t0) / n


def _noop(x: int) -> int:
    return x


class _Idle:
    def call(self) -> int:
        return 0


def round_trips(client: Any, n: int = 40) -> dict[str, float]:
    """p50 ms of one empty call per worker, all at once, answered: as tasks, and as calls to actors."""
    workers = sorted(client.nthreads())
    actors = [client.submit(_Idle, workers=[w], actor=True, pure=False).result() for w in workers]
    out: dict[str, list[float]] = {"tasks": [], "runners": []}
    for _ in range(n):
        time.sleep(0.02)  # apart, as queries are: no batching with the previous round's messages
        t0 = time.perf_counter()
        client.gather([client.submit(_noop, 0, workers=[w], pure=False) for w in workers])
        out["tasks"].append(time.perf_counter() - t0)
        time.sleep(0.02)
        t0 = time.perf_counter()
        [c.result() for c in [a.call() for a in actors]]
        out["runners"].append(time.perf_counter() - t0)
    return {k: round(statistics.median(v) * 1000, 2) for k, v in out.items()}


def task_profile(client: Any, wb: Any, sql: str, repeat: int) -> dict[str, Any]:
    """Tasks of the dask path for ``sql``: count, compute time, bytes, and the client-side rest.

    Both the median run and the fastest one (the least disturbed by other jobs on a shared machine).
    """
    from distributed import get_task_stream

    plan = wb.sql(sql, engine="dask", use_cache=False, use_rollups=False, explain=True)
    runs: list[dict[str, Any]] = []
    for _ in range(repeat):
        with get_task_stream(client) as ts:
            t0 = time.perf_counter()
            wb.sql(sql, engine="dask", use_cache=False, use_rollups=False)
            wall = time.perf_counter() - t0
        tasks = [t for t in ts.data if str(t["key"]).startswith("('run_sql") or "run_sql" in str(t["key"])]
        computes = [sum(s["stop"] - s["start"] for s in t["startstops"] if s["action"] == "compute") for t in tasks]
        starts = [min(s["start"] for s in t["startstops"]) for t in tasks]
        stops = [max(s["stop"] for s in t["startstops"]) for t in tasks]
        span = (max(stops) - min(starts)) if tasks else 0.0
        workers = sorted({t["worker"] for t in tasks})
        per_worker = {w: sum(1 for t in tasks if t["worker"] == w) for w in workers}
        runs.append({"wall": wall, "span": span, "computes": computes, "per_worker_tasks": per_worker})
    ordered = sorted(runs, key=lambda r: r["wall"])
    return {"median_run": _summary(ordered[len(ordered) // 2], plan), "best_run": _summary(ordered[0], plan)}


def _summary(run: dict[str, Any], plan: Any) -> dict[str, Any]:
    n = len(run["computes"])
    scanned = plan.bytes_scanned
    per_task = scanned // max(1, n)
    return {
        "tasks": n,
        "task_compute_s_median": round(statistics.median(run["computes"]), 4) if n else 0.0,
        "task_compute_s_total": round(sum(run["computes"]), 4),
        "task_span_s": round(run["span"], 4),
        "wall_s": round(run["wall"], 4),
        "client_fixed_s": round(run["wall"] - run["span"], 4),
        "bytes_scanned": scanned,
        "bytes_per_task": per_task,
        "tasks_per_worker": run["per_worker_tasks"],
        "bytes_per_worker": {w: c * per_task for w, c in run["per_worker_tasks"].items()},
    }


def run_for(workers: int, args: argparse.Namespace, wb_duck: Any, base: Any, lake: Any) -> dict[str, Any]:
    from distributed import Client, LocalCluster

    from workbench.session import Workbench

    cluster = LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1"
    )
    client = Client(cluster)
    wb = Workbench(lake, lake.settings, dask_client=client)
    wb_tasks = Workbench(lake, lake.settings.model_copy(update={"dask_direct": False}), dask_client=client)
    try:
        pids = list(client.run(lambda: __import__("os").getpid()).values())
        out: dict[str, Any] = {
            "scheduler_s_per_task": round(scheduler_cost_per_task(client), 6),
            "round_trip_ms": round_trips(client),
            "queries": {},
        }
        sampler = base_run.RssSampler().__enter__()
        for name, sql in QUERIES.items():
            print(f"[{workers} worker(s)] {name}", flush=True)
            rss = WorkerRss(pids)
            paths = {
                "baseline": (lambda sql=sql: (base.execute(sql).df(), "plain duckdb"), args.repeat),
                "wb_duckdb": (_via(wb_duck, sql, "duckdb"), args.repeat),
                "wb_dask": (_via(wb, sql, "dask"), args.repeat),
                "wb_dask_tasks": (_via(wb_tasks, sql, "dask"), args.repeat),
            }
            res = base_run.measure_block(paths, sampler)
            peaks = rss.stop()
            want = res["baseline"].pop("_df")
            for p in ("wb_duckdb", "wb_dask", "wb_dask_tasks"):
                res[p]["same_answer"] = base_run.same_answer(res[p].pop("_df"), want)
                res[p]["ratio_p50"] = round(res[p]["p50_ms"] / res["baseline"]["p50_ms"], 2)
            res["wb_dask"]["peak_rss_mb_per_worker"] = peaks
            explain = wb.sql(sql, engine="dask", use_cache=False, use_rollups=False, explain=True).explain or ""
            res["wb_dask"]["direct"] = "direct calls" in explain
            res["wb_dask"]["profile"] = task_profile(client, wb_tasks, sql, args.repeat)
            out["queries"][name] = res
        sampler.__exit__()
        return out
    finally:
        wb.close()
        wb_tasks.close()
        client.close()
        cluster.close()


def _via(wb: Any, sql: str, engine: str) -> Any:
    def go() -> tuple[Any, str]:
        r = wb.sql(sql, engine=engine, use_cache=False, use_rollups=False, user=base_run.USER)
        return r.df, r.route

    return go


def main(argv: list[str] | None = None) -> int:
    from workbench.config import Settings
    from workbench.lake.storage import Lake
    from workbench.session import Workbench

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--data", default="data/bench")
    parser.add_argument(
        "--task-mb", type=int, default=None, help="Parquet MB per task (WORKBENCH_DASK_TASK_MB; default: the setting's)"
    )
    args = parser.parse_args(argv)
    info = base_run.machine()
    _, lake_dir, home = base_run.dataset(args.rows, Path(args.data))
    extra = {"dask_task_mb": args.task_mb} if args.task_mb else {}
    settings = Settings(lake=str(lake_dir), home=str(home), user=base_run.USER, timeout_s=3600.0, **extra)
    lake = Lake(str(lake_dir), settings)
    base = base_run.baseline_connection(lake)
    wb_duck = Workbench(lake, settings)
    report = {
        "rows": args.rows,
        "machine": info,
        "repeat": args.repeat,
        "task_mb": settings.dask_task_mb,
        "by_workers": {},
    }
    for n in args.workers:
        report["by_workers"][str(n)] = run_for(n, args, wb_duck, base, lake)
    report["machine"]["load_avg_at_end"] = [round(x, 2) for x in __import__("os").getloadavg()]
    # a run at another task size than the default is a comparison: its own file, scaling.md untouched
    name = f"dask-{args.rows}" + (f"-task{args.task_mb}mb" if args.task_mb else "")
    (base_run.RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2, default=str))
    (base_run.RESULTS / f"{name}.md").write_text(markdown(report))
    if {"1", "2"} <= set(report["by_workers"]) and not args.task_mb:
        path = base_run.RESULTS / "scaling.md"
        notes = path.read_text().partition(NOTES)[2] if path.exists() else ""
        path.write_text(scaling_markdown(report) + (f"\n{NOTES}{notes}" if notes else ""))
    print(markdown(report))
    return 0


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"# Cluster engine at {report['rows']:,} rows ({report.get('task_mb', 64)} MB of Parquet per task)",
        "",
        f"{m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM, Python {m['python']}; load average "
        f"{m['load_avg_at_start']} at start, {m.get('load_avg_at_end')} at end (a machine shared with other jobs). "
        f"p50/p95 over {report['repeat']} interleaved runs after a warm-up; "
        "ratio = p50 / plain DuckDB p50 of the same block.",
        "",
        "dask: the default (a one-round query by direct calls to the workers' DuckDB runners, else tasks); "
        "dask tasks only: `dask_direct` off, every query scheduled as tasks.",
        "",
        "| workers | query | plain DuckDB p50 ms | DuckDB route p50 (ratio) | dask p50 ms (ratio) | dask p95 ms "
        "| how | dask tasks only p50 ms (ratio) | peak RSS per worker MB | tasks | same answer |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n, res in report["by_workers"].items():
        for q, r in res["queries"].items():
            d, w, t = r["wb_dask"], r["wb_duckdb"], r["wb_dask_tasks"]
            same = d["same_answer"] and w["same_answer"] and t["same_answer"]
            lines.append(
                f"| {n} | {q} | {r['baseline']['p50_ms']:.0f} | {w['p50_ms']:.0f} ({w['ratio_p50']}x) "
                f"| {d['p50_ms']:.0f} ({d['ratio_p50']}x) | {d['p95_ms']:.0f} "
                f"| {'runners' if d['direct'] else 'tasks'} | {t['p50_ms']:.0f} ({t['ratio_p50']}x) "
                f"| {d['peak_rss_mb_per_worker']} | {d['profile']['median_run']['tasks']} | {same} |"
            )
    lines += ["", "Scheduler cost per task (500 no-op tasks) and the round trip of one empty call per worker: "]
    lines += [
        f"- {n} worker(s): {res['scheduler_s_per_task'] * 1000:.2f} ms per task; round trip "
        f"{res['round_trip_ms']['tasks']:.1f} ms as tasks, {res['round_trip_ms']['runners']:.1f} ms as runner calls"
        for n, res in report["by_workers"].items()
    ]
    return "\n".join(lines) + "\n"


#: hand-written reading of the results below this heading survives a regeneration of scaling.md
NOTES = "## Reading the check and its limits"
#: the seed's data sizes (raw CSV); 100 GB raw is ~850M rows (seed-architecture.md, DESIGN.md)
TARGETS = {"100 GB raw": 100 * 10**9, "1 TB raw": 10**12}


def model(report: dict[str, Any], query: str) -> dict[str, float]:
    """Per-query model inputs from the 1-worker run: fixed client time, per-task compute and overhead."""
    one = report["by_workers"]["1"]
    prof = one["queries"][query]["wb_dask"]["profile"]["best_run"]
    n = max(1, prof["tasks"])
    compute = prof["task_compute_s_total"]
    overhead = max(0.0, prof["task_span_s"] - compute) / n  # per task: scheduling, transfer, result
    return {
        "fixed_s": prof["client_fixed_s"],
        "tasks": n,
        "task_s": compute / n,
        "overhead_s": overhead,
        "s_per_byte": compute / max(1, prof["bytes_scanned"]),
        "scheduler_s": one["scheduler_s_per_task"],
        "bytes": prof["bytes_scanned"],
        "task_bytes": report.get("task_mb", 64) * 2**20,
    }


def predict(m: dict[str, float], workers: int, scanned: float | None = None) -> float:
    """Seconds for the query on ``workers`` one-thread workers over ``scanned`` bytes (default: as measured).

    T = fixed + max(rounds x (task compute + task overhead), tasks x scheduler cost per task), where
    rounds = ceil(tasks / workers): the workers run their tasks in parallel, the scheduler serially.
    """
    if scanned is None:
        tasks, task_s = m["tasks"], m["task_s"]
    else:
        tasks = max(1, math.ceil(scanned / m["task_bytes"]))
        task_s = m["s_per_byte"] * scanned / tasks
    rounds = math.ceil(tasks / workers)
    return m["fixed_s"] + max(rounds * (task_s + m["overhead_s"]), tasks * m["scheduler_s"])


def scaling_markdown(report: dict[str, Any]) -> str:
    rows = report["rows"]
    lines = [
        f"# Scaling model of the cluster engine (measured at {rows:,} rows, `benchmarks/results/dask-{rows}.json`)",
        "",
        "Inputs, measured on 1 worker in the same run as the timings, on the tasks-only path (Dask task "
        "stream; the fastest of the runs, the one least disturbed by other jobs):",
        "",
        "| query | tasks | compute per task s | overhead per task s | client fixed s | bytes read | s per GB read |",
        "|---|---|---|---|---|---|---|",
    ]
    models = {q: model(report, q) for q in report["by_workers"]["1"]["queries"]}
    for q, m in models.items():
        lines.append(
            f"| {q} | {m['tasks']} | {m['task_s']:.3f} | {m['overhead_s']:.3f} | {m['fixed_s']:.3f} "
            f"| {m['bytes'] / 2**20:.0f} MB | {m['s_per_byte'] * 2**30:.2f} |"
        )
    sched = {n: r["scheduler_s_per_task"] * 1000 for n, r in report["by_workers"].items()}
    lines += [
        "",
        "Scheduler cost per task (500 no-op tasks, end to end): "
        + ", ".join(f"{v:.2f} ms on {n} worker(s)" for n, v in sched.items())
        + f"; load average during the run {report['machine']['load_avg_at_start']} -> "
        f"{report['machine'].get('load_avg_at_end')} on {report['machine']['cores']} cores.",
        "",
        "Model: T(N) = client fixed + max(ceil(tasks / N) x (compute + overhead per task), tasks x scheduler cost),",
        f"with tasks = Parquet bytes read / {report.get('task_mb', 64)} MB for other sizes, "
        "and compute per task = s per byte x bytes.",
        "",
    ]
    if "2" in report["by_workers"]:
        lines += [
            "## Check: the 1-worker model predicting 2 workers",
            "",
            "| query | predicted 2-worker s | measured 2-worker s (fastest run) | measured p50 s (tasks only) | error "
            "| compute per task s, 1 -> 2 workers | prediction with the 2-worker task compute | error |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for q, m in models.items():
            two = report["by_workers"]["2"]["queries"][q]
            best = two["wb_dask"]["profile"]["best_run"]  # the tasks-only path, as the model
            pred, wall = predict(m, 2), best["wall_s"]
            task2 = best["task_compute_s_total"] / max(1, best["tasks"])
            pred2 = predict({**m, "task_s": task2}, 2)
            p50 = two["wb_dask_tasks"]["p50_ms"] / 1000
            lines.append(
                f"| {q} | {pred:.3f} | {wall:.3f} | {p50:.3f} | {100 * (pred - wall) / wall:+.0f}% "
                f"| {m['task_s']:.3f} -> {task2:.3f} | {pred2:.3f} | {100 * (pred2 - wall) / wall:+.0f}% |"
            )
        lines.append("")
    per_row = models["simple_agg"]["bytes"] / rows  # the full scan of sales: Parquet bytes per row
    lines += [
        "## Predictions for the seed's sizes",
        "",
        f"Sizes as raw CSV; Parquet read = rows x {per_row:.0f} bytes per row (measured: the full sales scan), "
        "100 GB raw = ~850M rows. Bytes per worker = Parquet read / N; peak memory per worker does not grow "
        f"with the data (one {report.get('task_mb', 64)} MB task at a time per thread; "
        "measured peaks in the timing table).",
        "",
        "| size | query | Parquet read | N=2 | N=8 | N=32 | N=128 | bytes per worker at N=32 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    csv_per_row = report.get("csv_bytes_per_row", 117.4)
    for label, raw in TARGETS.items():
        target_rows = raw / csv_per_row
        for q, m in models.items():
            scanned = m["bytes"] / rows * target_rows
            cells = " | ".join(f"{predict(m, n, scanned):.1f} s" for n in (2, 8, 32, 128))
            lines.append(f"| {label} | {q} | {scanned / 2**30:.1f} GB | {cells} | {scanned / 32 / 2**30:.2f} GB |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
