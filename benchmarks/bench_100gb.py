"""The seed's 100 GB, held on one 2-core machine and measured end to end (``make bench-100gb``).

Phases, each timed, with the peak RSS of the process tree doing the work:

1. *land*: the reference dataset arrives in ``--batches`` periods (36 = one batch per month);
   per batch: ``workbench generate --period`` into the landing folder, ``workbench ingest``
   into the same lake (it refreshes the rollup partitions of the months it touched and syncs
   the catalog), summaries and index rebuilt, the batch's CSV deleted. A free-disk guard stops
   cleanly before a batch that would not fit.
2. *kill*: at batch ``--kill-batch`` the ingest is SIGKILLed mid-write, then rerun
   (``benchmarks/scale/kill.py`` says how "exact" is checked).
3. *queries*: the seed's four rows, as routed / on the base table / plain DuckDB; every
   dashboard refresh query; the offline assistant; cache hits.
4. *lake*: size on disk, files per partition, the catalog's partition statistics.
5. *dashboard_browser*: the served dashboard in headless Chromium: page load, filter changes.
6. *estimate*: the seed's 1 TB row from the measured per-row cost (labelled an estimate).

Results are rewritten after every step to ``benchmarks/results/scale-<rows>.json`` and ``.md``.

    python -m benchmarks.bench_100gb --rows 830000000 --batches 36 [--data data/bench-100gb]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import run as qrun
from benchmarks.scale import land, measure, proc, report
from benchmarks.scale.kill import kill_and_rerun

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = RESULTS.parent.parent


class Harness:
    """One run: its folders, its results document, and the file it is rewritten to after each step."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.root = Path(args.data).resolve() / f"rows-{args.rows}"
        self.lake, self.home, self.landing = self.root / "lake", self.root / "home", self.root / "landing"
        self.out = Path(args.out) / f"scale-{args.rows}"
        self.doc: dict[str, Any] = {
            "label": args.label,
            "rows_requested": args.rows,
            "batches_requested": args.batches,
            "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": qrun.machine(),
            "command": shlex.join(["python", "-m", "benchmarks.bench_100gb", *sys.argv[1:]]),
            "phases": {},
            "batches": [],
        }

    def save(self) -> None:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.out.with_suffix(".json").write_text(self.portable(json.dumps(self.doc, indent=1, default=str)))
        self.out.with_suffix(".md").write_text(self.portable(report.markdown(self.doc)))

    def portable(self, text: str) -> str:
        """The results without this machine's folders (they are committed): the working folder is
        ``<data>``, the results folder ``<out>``, the checkout ``.``."""
        for path, name in (
            (str(Path(self.args.data).resolve()), "<data>"),
            (str(Path(self.args.out).resolve()), "<out>"),
            (str(ROOT), "."),
        ):
            text = text.replace(path, name)
        return text

    def phase(self, name: str, started: float, **extra: Any) -> None:
        self.doc["phases"][name] = {"wall_s": round(time.perf_counter() - started, 1), **extra}
        self.save()


def land_batches(h: Harness) -> None:
    """Phase 1 (and 2 at ``--kill-batch``): every batch generated, ingested, summarised, deleted."""
    args, t0 = h.args, time.perf_counter()
    env = proc.env_for(h.lake, h.home)
    per_row = land.DEFAULT_PEAK_BYTES_PER_ROW
    for period in land.periods(args.batches):
        expected = args.rows // args.batches  # for the disk guard only; the generator splits by calendar
        try:
            disk = land.disk_guard(h.root, expected, per_row, int(args.min_free_gb * 2**30))
        except land.DiskFull as e:
            h.doc["stopped"] = str(e)
            print(e, flush=True)
            break
        batch = _one_batch(h, period, env)
        batch["disk_before"] = disk
        h.doc["batches"].append(batch)
        per_row = _measured_per_row(batch, per_row)
        h.save()
    h.phase("land", t0, batches=len(h.doc["batches"]), peak_rss_mb=_max(h.doc["batches"], "ingest_peak_rss_mb"))


def _one_batch(h: Harness, period: land.Period, env: dict[str, str]) -> dict[str, Any]:
    landing = h.landing / f"batch-{period.index:02d}"
    shutil.rmtree(landing, ignore_errors=True)
    lake_before, disk_free = land.folder_bytes(h.lake), shutil.disk_usage(h.root).free
    rows_before = land.lake_rows(h.lake)
    gen = land.generate(period, h.args.rows, landing, env, h.args.chunk_rows)
    csv_bytes = land.folder_bytes(landing, "sales-*")
    if period.index == h.args.kill_batch:
        h.doc["kill_and_rerun"], ing = kill_and_rerun(period, landing, h.lake, h.home)
        print(f"kill and rerun at batch {period.index}: held={h.doc['kill_and_rerun']['held']}", flush=True)
    else:
        ing = land.ingest(landing, h.lake, env)
    body = ing.json()
    sales = body["tables"]["sales"]
    summ = land.summaries(h.lake, env)
    shutil.rmtree(landing)  # committed: the CSV goes, the disk holds one batch at a time
    lake_after = land.folder_bytes(h.lake)
    after = body.get("phases", {}).get("after_ingest", {})
    batch = {
        "batch": period.index,
        "period": period.label,
        "rerun_after_kill": period.index == h.args.kill_batch,
        "lake_rows_before": rows_before,
        "generate": gen.summary(),
        "csv_bytes": csv_bytes,
        "sales_rows_read": sales["rows_read"],
        "sales_rows_written": sales["rows_written"],
        "sales_files_written": sales["data_files_written"],
        "ingest": ing.summary(),
        "ingest_rows_per_s": round(sales["rows_read"] / ing.seconds) if ing.seconds else None,
        "ingest_peak_rss_mb": round(ing.peak_rss / 2**20, 1),
        "ingest_core_rows_per_s": _core_rate(sales["rows_read"], body.get("phases", {})),
        "ingest_phases": body.get("phases", {}),
        "rollup_refresh_s": after.get("wall_s"),
        "summaries": summ.summary(),
        "lake_bytes": lake_after,
        "lake_growth_bytes": lake_after - lake_before,
        "transient_disk_bytes": max(0, disk_free - ing.min_free_disk),
        "peak_staging_bytes": ing.peak_staging,
        "load_avg_1m": round(os.getloadavg()[0], 1),
    }
    print(
        f"batch {period.index} {period.label}: {sales['rows_written']:,} rows in {ing.seconds:.1f} s "
        f"({batch['ingest_rows_per_s']:,} rows/s), peak {batch['ingest_peak_rss_mb']:.0f} MB, "
        f"rollups {batch['rollup_refresh_s']} s, lake {lake_after / 2**30:.2f} GB",
        flush=True,
    )
    return batch


def _core_rate(rows: int, phases: dict[str, Any]) -> int | None:
    """Rows/s of the ingest's own phases (stage, dedupe, write, commit): no start-up, no rollup refresh."""
    core = sum(v["wall_s"] for k, v in phases.items() if k != "after_ingest")
    return round(rows / core) if core else None


def _measured_per_row(batch: dict[str, Any], previous: float) -> float:
    """Disk per row of this batch (CSV + peak staging + lake growth), measured on its own folders.

    The staging share grows with the lake (the ingest re-reads the lake's ids), so the next
    batch is judged by the last one; one odd batch (a rerun) does not drop the guard below half.
    """
    rows = batch["sales_rows_read"]
    if not rows:
        return previous
    used = batch["csv_bytes"] + batch["peak_staging_bytes"] + batch["lake_growth_bytes"]
    return max(used / rows, previous * 0.5)


def _max(rows: list[dict[str, Any]], key: str) -> float | None:
    return max((r[key] for r in rows if r.get(key) is not None), default=None)


def measure_queries(h: Harness) -> None:
    """Phase 3: seed queries, dashboard queries, cache hit; then the assistant."""
    from workbench.config import Settings
    from workbench.lake.storage import Lake
    from workbench.session import Workbench

    os.environ.update(proc.env_for(h.lake, h.home))
    t0 = time.perf_counter()
    settings = Settings(lake=str(h.lake), home=str(h.home), user=qrun.USER, timeout_s=3600.0, row_limit=1_000_000)
    lake = Lake(str(h.lake), settings)
    qrun.ensure_fresh_rollups(lake)  # a no-op when the ingests refreshed them (recorded if not)
    base = qrun.baseline_connection(lake)
    client, cluster = qrun.local_cluster(settings) if h.args.dask else (None, None)
    wb = Workbench(lake, settings, dask_client=client)
    seed = measure.seed_queries(measure.partition_rows(h.lake))
    h.doc["seed_queries"] = seed
    with qrun.RssSampler() as sampler:
        print("seed queries", flush=True)
        sqls = {k: v["sql"] for k, v in seed.items()}
        cache, dask = "complex_join_10gb", client is not None
        timed = measure.time_queries(wb, base, sqls, h.args.repeat, sampler, cache=cache, dask=dask)
        for name, block in timed.items():
            seed[name]["paths"] = block
        h.phase("seed_queries", t0, peak_rss_mb=round(sampler.peak([(t0, time.perf_counter())]) / 2**20, 1))
        t1 = time.perf_counter()
        print("dashboard queries", flush=True)
        h.doc["dashboard"] = measure.time_queries(wb, base, measure.dashboard_queries(wb), h.args.repeat, sampler)
        h.phase("dashboard", t1, peak_rss_mb=round(sampler.peak([(t1, time.perf_counter())]) / 2**20, 1))
    wb.close()
    if client is not None and cluster is not None:
        client.close()
        cluster.close()
    t2 = time.perf_counter()
    print("assistant", flush=True)
    h.doc["assistant"] = measure.assistant(h.lake, h.args.ask_rounds)
    h.phase("assistant", t2)


def lake_facts(h: Harness) -> None:
    """Phase 4: the lake on disk, files per partition, the catalog's own statistics."""
    t0 = time.perf_counter()
    env = proc.env_for(h.lake, h.home)
    tables = proc.checked(proc.run([*proc.CLI, "--lake", str(h.lake), "tables", "--json"], env, h.root), "tables")
    catalog = proc.run([*proc.CLI, "--lake", str(h.lake), "catalog", "--table", "sales", "--json"], env, h.root)
    parts = measure.partition_rows(h.lake)
    files = report.files_per_partition(h.lake)
    h.doc["lake"] = {
        "bytes_on_disk": land.folder_bytes(h.lake),
        "tables": tables.json()["tables"],
        "partitions": len(parts),
        "files_per_partition": files,
        "catalog_sales": catalog.json() if catalog.returncode == 0 else {"error": catalog.stderr[-2000:]},
    }
    h.doc["estimate_1tb"] = report.estimate_1tb(h.doc)
    h.phase("lake", t0)


def dashboard_browser(h: Harness) -> None:
    """Phase 5: the served dashboard in headless Chromium over the lake (tests/test_browser.py).

    Page load (navigation -> KPI cards and the first refresh) and three filter changes (click
    -> new KPIs in the DOM), with the KPIs checked against ``workbench sql`` at every step: the
    browser test itself, pointed at this lake, so what is timed is what is tested.
    """
    t0 = time.perf_counter()
    out = h.root / "dashboard_browser.json"
    out.unlink(missing_ok=True)
    env = {**os.environ, "WORKBENCH_BROWSER_LAKE": str(h.lake), "WORKBENCH_BROWSER_RESULTS": str(out)}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "timeout=7200"]
    cmd += [str(ROOT / "tests" / "test_browser.py"), "-k", "kpis_equal or filter_change"]
    print("dashboard in headless Chromium", flush=True)
    done = proc.run(cmd, env, ROOT)
    result: dict[str, Any] = {"returncode": done.returncode, "passed": done.returncode == 0}
    if out.exists():
        result.update(json.loads(out.read_text()))
    if done.returncode != 0:
        result["output_tail"] = (done.stdout or "")[-3000:]
    h.doc["dashboard_browser"] = result
    h.phase("dashboard_browser", t0)


def derive(doc: dict[str, Any]) -> None:
    """The figures computed from the measurements: acceptance, findings, extrapolation (small runs)."""
    doc["acceptance"] = report.acceptance(doc)
    doc["findings"] = report.findings(doc)
    if doc["rows_requested"] < 830_000_000:
        doc["extrapolated"] = report.extrapolate(doc)


def render(path: Path) -> int:
    doc = json.loads(path.read_text())
    derive(doc)
    path.write_text(json.dumps(doc, indent=1, default=str))
    path.with_suffix(".md").write_text(report.markdown(doc))
    print(f"rewrote {path} and its .md", flush=True)
    return 0


def resume(args: argparse.Namespace) -> int:
    """Measurement phases on a lake an earlier run landed; merged into that run's results.

    ``--measure-only``: queries, lake facts and the browser (e.g. after the measurement phase of a
    long run failed: the landed lake is not thrown away); ``--only-browser``: the browser phase.
    """
    h = Harness(args)
    if not (h.lake / "sales").exists() or not h.out.with_suffix(".json").exists():
        raise SystemExit(f"no landed run in {h.root} with results {h.out}.json: run the whole harness first")
    h.doc = json.loads(h.out.with_suffix(".json").read_text())
    h.doc.setdefault("resumed", []).append(
        {"at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "command": shlex.join(sys.argv[1:])}
    )
    if args.label:
        h.doc["label"] = args.label
    t0 = time.perf_counter()
    if args.measure_only:
        measure_queries(h)
        lake_facts(h)
    dashboard_browser(h)
    _finish(h, "measure_wall_s", t0, f"added the measurement phases to {h.out}.json and .md")
    return 0 if h.doc["dashboard_browser"]["passed"] else 1


def _finish(h: Harness, wall_key: str, started: float, message: str) -> None:
    """Wall time and end stamp, the derived figures, the results written."""
    h.doc[wall_key] = round(time.perf_counter() - started, 1)
    h.doc["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    derive(h.doc)
    h.save()
    print(message, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=830_000_000, help="sales rows of the whole dataset")
    parser.add_argument("--batches", type=int, default=36, help="periods it arrives in (36 monthly, 12 quarterly)")
    parser.add_argument("--kill-batch", type=int, default=None, help="batch whose ingest is SIGKILLed (0: none)")
    parser.add_argument("--data", default="data/bench-100gb", help="working folder (landing batches, lake, home)")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--chunk-rows", type=int, default=1_000_000, help="rows per landing CSV file")
    parser.add_argument(
        "--min-free-gb", type=float, default=5.0, help="disk kept free; a batch that would not fit stops the run"
    )
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds per query after a warm-up (p50)")
    parser.add_argument("--ask-rounds", type=int, default=1)
    parser.add_argument(
        "--dask", action="store_true", help="also run the seed's queries through the cluster engine (2 workers)"
    )
    parser.add_argument("--label", default="", help="what this run is (shown on top of the results)")
    parser.add_argument("--fresh", action="store_true", help="delete the working folder's lake first")
    parser.add_argument("--render", metavar="JSON", help="recompute the derived figures and Markdown of a results file")
    parser.add_argument(
        "--only-browser",
        action="store_true",
        help="run only the headless-Chromium dashboard phase on the finished lake and add it to the results",
    )
    parser.add_argument(
        "--measure-only",
        action="store_true",
        help="run the measurement phases (queries, lake, browser) on a lake an earlier run landed",
    )
    args = parser.parse_args(argv)
    if args.render:
        return render(Path(args.render))
    if args.only_browser or args.measure_only:
        return resume(args)
    if args.kill_batch is None:
        args.kill_batch = max(1, (args.batches + 1) // 2)
    h = Harness(args)
    if args.fresh:
        shutil.rmtree(h.root, ignore_errors=True)
    if h.lake.exists():
        raise SystemExit(f"{h.lake} exists: pass --fresh to start over (the run lands its batches into an empty lake)")
    h.root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    land_batches(h)
    if h.doc["batches"]:
        measure_queries(h)
        lake_facts(h)
        dashboard_browser(h)
    _finish(h, "total_wall_s", t0, f"wrote {h.out}.json and .md")
    return 3 if "stopped" in h.doc else 0


if __name__ == "__main__":
    sys.exit(main())
