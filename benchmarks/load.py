"""Load test: concurrent authenticated users asking questions and running SQL against the HTTP API.

``python -m benchmarks.load`` (``make load``): builds a ~1M-row lake if absent (generate +
ingest under ``data/load/``), starts ``workbench api`` on a free loopback port with API tokens
in its catalog (so every request must authenticate), and gives each of ``--users`` virtual
users its own bearer token for one of the policies' users (admin, analyst, north_analyst in
turn). It records a single-user answer for every request under every policy, then runs the
users as threads for ``--duration`` seconds, each sending a random mix of ``/api/sql`` and
``/api/ask`` requests. Every response is compared with the single-user response of the same
request *for that user's policy* (columns, rows with a 1e-9 relative tolerance for floats,
status, SQL): a concurrency bug or one user's rows leaking into another's answer shows up as
a mismatch, not as a silent wrong number. Writes ``benchmarks/results/load.json`` and ``load.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

REGIONS = ["North", "South", "East", "West", "Central"]
#: users of policies.yaml the virtual users act as, in turn (all regions, all regions without
#: personal fields, North only)
IDENTITIES = ["admin", "analyst", "north_analyst"]
POLICIES = ROOT / "policies.yaml"
SQL_TEMPLATES = [
    "SELECT region, SUM(revenue) AS revenue FROM sales WHERE year = {year} GROUP BY region ORDER BY region",
    "SELECT category, SUM(profit) AS profit FROM sales WHERE year = {year} GROUP BY category ORDER BY profit DESC",
    "SELECT month, SUM(revenue) AS revenue FROM sales WHERE year = {year} GROUP BY month ORDER BY month",
    "SELECT channel, COUNT(*) AS n, SUM(revenue) AS revenue FROM sales WHERE year = {year} AND region = '{region}' "
    "GROUP BY channel ORDER BY channel",
    "SELECT p.brand, SUM(s.revenue) AS revenue FROM sales s JOIN products p ON s.product_id = p.product_id "
    "WHERE s.year = {year} AND s.region = '{region}' GROUP BY p.brand ORDER BY revenue DESC LIMIT 10",
    "SELECT st.store_type, SUM(s.quantity) AS units FROM sales s JOIN stores st ON s.store_id = st.store_id "
    "WHERE s.year = {year} GROUP BY st.store_type ORDER BY st.store_type",
    "SELECT COUNT(DISTINCT customer_id) AS customers FROM sales WHERE year = {year} AND region = '{region}'",
]
QUESTIONS = [
    "What was the total revenue in {year}?",
    "Show revenue by region for {year}",
    "Top 5 categories by profit in {year}",
    "Monthly revenue trend for {year}",
    "How many transactions were there in March {year} in the {region} region?",
    "Which region had the highest revenue in Q4 {year}?",
    "What is the profit margin by category?",
]


def requests_mix() -> list[dict[str, Any]]:
    """The distinct requests users pick from (SQL and questions, several years and regions)."""
    out: list[dict[str, Any]] = []
    for year in (2022, 2023, 2024):
        for t in SQL_TEMPLATES:
            regions = REGIONS if "{region}" in t else REGIONS[:1]
            for region in regions:
                out.append({"kind": "sql", "body": {"sql": t.format(year=year, region=region), "engine": "auto"}})
        for i, q in enumerate(QUESTIONS):
            region = REGIONS[(year + i) % len(REGIONS)]
            text = q.format(year=year, region=region)
            if not any(r["body"].get("question") == text for r in out):
                out.append({"kind": "ask", "body": {"question": text}})
    return out


# --- the lake ---------------------------------------------------------------------------------


def ensure_lake(rows: int, data: Path) -> tuple[str, dict[str, Any]]:
    """A lake of ~``rows`` sales rows under ``data`` (built once, reused), with its summaries."""
    from workbench.config import Settings
    from workbench.lake.storage import Lake
    from workbench.lake.tables import lake_tables

    lake_dir, landing, home = data / "lake", data / "landing", data / "home"
    settings = Settings(lake=str(lake_dir), home=str(home), landing=str(landing), llm_model="")
    lake = Lake(str(lake_dir), settings)
    info: dict[str, Any] = {"built": False}
    have = next((t.rows for t in lake_tables(lake) if t.name == "sales"), 0) if lake_dir.exists() else 0
    if have < rows * 0.9:
        from workbench.lake.generate import generate
        from workbench.lake.ingest import ingest

        t0 = time.perf_counter()
        if not any(landing.glob("sales*")):
            generate(rows, str(landing), seed=42, fmt="csv", workers=2)
        info["generate_s"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        ingest(str(landing), lake)
        info["ingest_s"] = round(time.perf_counter() - t0, 1)
        info["built"] = True
    from workbench.assistant import build_summaries
    from workbench.assistant.retrieval.index import SummaryIndex
    from workbench.session import Workbench

    if not SummaryIndex.exists(lake):
        wb = Workbench(lake, settings)
        try:
            build_summaries(wb)
        finally:
            wb.close()
    info["sales_rows"] = next(t.rows for t in lake_tables(lake) if t.name == "sales")
    return str(lake_dir), info


# --- the server ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``workbench api`` as a subprocess on loopback; always stopped."""

    def __init__(self, lake: str, home: Path, sessions: int, tokens_for: list[str]) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # tokens exist before the server starts, so it demands one on every request
        self.tokens = create_tokens(lake, home, tokens_for)
        env = {
            **os.environ,
            "WORKBENCH_LAKE": lake,
            "WORKBENCH_HOME": str(home),
            "WORKBENCH_LLM_MODEL": "",
            "WORKBENCH_POLICIES": str(POLICIES),
            "PYTHONPATH": str(ROOT),
        }
        env.pop("OPENAI_API_KEY", None)
        env.pop("OPENAI_BASE_URL", None)
        self.log = open(home / "api.log", "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from workbench.cli import main; main()",
                "api",
                "--port",
                str(self.port),
                "--sessions",
                str(sessions),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(ROOT),
        )

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"workbench api exited with {self.proc.returncode}; see {self.log.name}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=5) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                time.sleep(0.3)
        raise RuntimeError("workbench api did not become healthy")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def create_tokens(lake: str, home: Path, users: list[str]) -> list[str]:
    """One API token per entry of ``users`` in the catalog under ``home`` (`workbench token create`)."""
    from workbench.auth.tokens import TokenStore
    from workbench.catalog import open_catalog
    from workbench.config import Settings

    settings = Settings(lake=lake, home=str(home), policies=str(POLICIES))
    catalog = open_catalog(settings)
    try:
        store = TokenStore(catalog)
        return [store.create(u, dt.timedelta(days=1), note="load test")[0] for u in users]
    finally:
        catalog.close()


def post(
    url: str, path: str, body: dict[str, Any], timeout: float = 300, token: str | None = None
) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


# --- comparing answers ------------------------------------------------------------------------


def canonical(kind: str, status: int, body: dict[str, Any]) -> dict[str, Any]:
    """What must not change between the single-user run and the loaded run."""
    if status != 200:
        return {"status": status, "error": (body.get("error") or {}).get("type")}
    out = {"status": status, "columns": body.get("columns"), "rows": body.get("rows")}
    if kind == "ask":
        out |= {"answer_status": body.get("status"), "sql": body.get("sql")}
        if body.get("sql") and not _ordered(str(body["sql"])):
            out["rows"] = sorted(out["rows"] or [], key=_row_key)  # any order is a correct order
    return out


def _ordered(sql: str) -> bool:
    """Whether the statement fixes its row order (a top-level ORDER BY)."""
    import sqlglot

    try:
        return sqlglot.parse_one(sql, read="duckdb").args.get("order") is not None
    except sqlglot.errors.ParseError:
        return True  # compare as returned


def _row_key(row: list[Any]) -> str:
    return json.dumps([round(v, 6) if isinstance(v, float) else v for v in row], default=str)


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


# --- the run ------------------------------------------------------------------------------------


def reference_answers(lake: str, home: Path, sessions: int, mix: list[dict[str, Any]]) -> dict[str, Any]:
    """Each request once per identity, one at a time, on its own server and cache."""
    server = Server(lake, home, sessions, IDENTITIES)
    baseline: dict[str, list[dict[str, Any]]] = {}
    single_ms: list[float] = []
    try:
        server.wait_ready()
        anonymous = post(server.url, "/api/sql", {"sql": "SELECT 1 AS x"})[0]
        for who, token in zip(IDENTITIES, server.tokens, strict=True):
            baseline[who] = []
            for r in mix:
                t0 = time.perf_counter()
                status, body = post(server.url, f"/api/{r['kind']}", r["body"], token=token)
                single_ms.append((time.perf_counter() - t0) * 1000)
                baseline[who].append(canonical(r["kind"], status, body))
    finally:
        server.stop()
    failing = sorted({str(mix[i]["body"]) for b in baseline.values() for i, x in enumerate(b) if x["status"] != 200})
    differ = sum(1 for a, n in zip(baseline["admin"], baseline["north_analyst"], strict=True) if not same(a, n))
    return {
        "baseline": baseline,
        "single_ms": single_ms,
        "failing": failing,
        "anonymous_status": anonymous,
        "north_differs_from_admin": differ,
    }


def run(users: int, duration: float, rows: int, sessions: int, data: Path, seed: int) -> dict[str, Any]:
    lake, lake_info = ensure_lake(rows, data)
    stamp = int(time.time())
    mix = requests_mix()
    ref_home = data / f"api-home-{stamp}-single"
    ref_home.mkdir(parents=True, exist_ok=True)
    ref = reference_answers(lake, ref_home, sessions, mix)
    # the loaded server starts with an empty cache: first occurrences run cold under load
    home = data / f"api-home-{stamp}-load"
    home.mkdir(parents=True, exist_ok=True)
    who_is = [IDENTITIES[n % len(IDENTITIES)] for n in range(users)]
    server = Server(lake, home, sessions, who_is)
    try:
        server.wait_ready()
        samples, elapsed = drive(server, who_is, mix, ref["baseline"], duration, seed)
        metrics_text = urllib.request.urlopen(server.url + "/metrics", timeout=30).read().decode()
    finally:
        server.stop()
    loaded = {"samples": samples, "elapsed": elapsed, "metrics": metrics_text, "who_is": who_is}
    return report(loaded, ref, lake_info, mix, users, duration, sessions, seed)


def drive(
    server: Server,
    who_is: list[str],
    mix: list[dict[str, Any]],
    baseline: dict[str, list[dict[str, Any]]],
    duration: float,
    seed: int,
) -> tuple[list[dict[str, Any]], float]:
    """Run the virtual users (one thread each, own token) for ``duration`` seconds; return samples."""
    samples: list[dict[str, Any]] = []
    lock = threading.Lock()
    stop_at = time.perf_counter() + duration

    def user(n: int) -> None:
        rnd = random.Random(seed * 1000 + n)
        who, token = who_is[n], server.tokens[n]
        while time.perf_counter() < stop_at:
            i = rnd.randrange(len(mix))
            r = mix[i]
            t0 = time.perf_counter()
            try:
                status, body = post(server.url, f"/api/{r['kind']}", r["body"], token=token)
                error = None
            except Exception as e:  # transport errors count as errors
                status, body, error = 0, {}, f"{type(e).__name__}: {e}"
            ms = (time.perf_counter() - t0) * 1000
            got = canonical(r["kind"], status, body) if status else {"status": 0}
            sample = {
                "kind": r["kind"],
                "user": who,
                "i": i,
                "ms": ms,
                "status": status,
                "error": error or ((body.get("error") or {}).get("type") if status != 200 else None),
                "match": same(got, baseline[who][i]),
                "got": None if same(got, baseline[who][i]) else got,
                "cached": bool(body.get("cached")),
                "route": body.get("route"),
            }
            with lock:
                samples.append(sample)

    threads = [threading.Thread(target=user, args=(n,), daemon=True) for n in range(len(who_is))]
    t_start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t_start
    return samples, elapsed


def summary(sel: list[dict[str, Any]]) -> dict[str, Any]:
    ms = [s["ms"] for s in sel]
    return {
        "requests": len(sel),
        "p50_ms": round(percentile(ms, 50), 1),
        "p95_ms": round(percentile(ms, 95), 1),
        "p99_ms": round(percentile(ms, 99), 1),
        "max_ms": round(max(ms), 1) if ms else None,
        "mean_ms": round(statistics.fmean(ms), 1) if ms else None,
        "errors": sum(1 for s in sel if s["status"] != 200),
        "mismatches": sum(1 for s in sel if not s["match"]),
        "cached_share": round(sum(1 for s in sel if s["cached"]) / len(sel), 3) if sel else None,
    }


def report(
    loaded: dict[str, Any],
    ref: dict[str, Any],
    lake_info: dict[str, Any],
    mix: list[dict[str, Any]],
    users: int,
    duration: float,
    sessions: int,
    seed: int,
) -> dict[str, Any]:
    samples, elapsed, metrics_text, who_is = loaded["samples"], loaded["elapsed"], loaded["metrics"], loaded["who_is"]
    single_ms, failing = ref["single_ms"], ref["failing"]
    routes: dict[str, int] = {}
    for s in samples:
        routes[str(s["route"])] = routes.get(str(s["route"]), 0) + 1
    result = {
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "config": {
            "users": users,
            "duration_s": duration,
            "sessions": sessions,
            "seed": seed,
            "distinct_requests": len(mix),
            "authenticated": True,
        },
        "lake": lake_info,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_avg_at_end": [round(x, 1) for x in os.getloadavg()],
        },
        "single_user": {
            "p50_ms": round(percentile(single_ms, 50), 1),
            "p95_ms": round(percentile(single_ms, 95), 1),
            "failing_requests": failing,
        },
        "auth": {
            "identities": {w: who_is.count(w) for w in IDENTITIES},
            "request_without_token_status": ref["anonymous_status"],
            "requests_where_north_analyst_differs_from_admin": ref["north_differs_from_admin"],
            "per_identity": {w: summary([x for x in samples if x["user"] == w]) for w in IDENTITIES},
        },
        "elapsed_s": round(elapsed, 1),
        "throughput_rps": round(len(samples) / elapsed, 2) if elapsed else None,
        "overall": summary(samples),
        "sql": summary([s for s in samples if s["kind"] == "sql"]),
        "ask": summary([s for s in samples if s["kind"] == "ask"]),
        "routes": dict(sorted(routes.items(), key=lambda kv: -kv[1])),
        "error_types": sorted({str(s["error"]) for s in samples if s["error"]}),
        # what differed, for the first few mismatches (request, user, loaded vs single-user answer)
        "mismatch_examples": [
            {
                "user": s["user"],
                "request": mix[s["i"]]["body"],
                "got": s["got"],
                "single": ref["baseline"][s["user"]][s["i"]],
            }
            for s in [x for x in samples if not x["match"]][:5]
        ],
        "server_metrics_sample": [
            line
            for line in metrics_text.splitlines()
            if line.startswith(
                ("workbench_queries_total", "workbench_cache_hits_total", "workbench_cache_misses_total")
            )
        ],
    }
    return result


def to_markdown(r: dict[str, Any]) -> str:
    c = r["config"]
    lines = [
        "# Load test: HTTP API under concurrent authenticated users",
        "",
        f"Measured {r['measured_at']} on {r['machine']['cpus']} shared cores ({r['machine']['platform']}), "
        f"load average at the end {r['machine']['load_avg_at_end']}.",
        f"{c['users']} users for {c['duration_s']:.0f} s against `workbench api --sessions {c['sessions']}` on "
        f"loopback over a lake of {r['lake']['sales_rows']:,} sales rows; {c['distinct_requests']} distinct "
        "requests (SQL and offline-planner questions). Every user sends its own bearer token and acts as "
        + ", ".join(f"{w} ({n} users)" for w, n in r["auth"]["identities"].items())
        + "; each response is compared with the single-user response for the same user's policy. "
        f"A request without a token got HTTP {r['auth']['request_without_token_status']}; "
        f"{r['auth']['requests_where_north_analyst_differs_from_admin']} of the distinct requests answer "
        "differently for north_analyst than for admin.",
        "",
        "| requests | count | p50 ms | p95 ms | p99 ms | max ms | errors | mismatches | cached |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    rows = [(name, r[name]) for name in ("overall", "sql", "ask")]
    rows += [(f"as {w}", s) for w, s in r["auth"]["per_identity"].items()]
    for name, s in rows:
        lines.append(
            f"| {name} | {s['requests']} | {s['p50_ms']} | {s['p95_ms']} | {s['p99_ms']} | {s['max_ms']} | "
            f"{s['errors']} | {s['mismatches']} | {s['cached_share']} |"
        )
    lines += [
        "",
        f"Throughput: **{r['throughput_rps']} requests/s** over {r['elapsed_s']} s. "
        f"Single-user (cold, first time each request): p50 {r['single_user']['p50_ms']} ms, "
        f"p95 {r['single_user']['p95_ms']} ms.",
        "",
        "Routes served: " + ", ".join(f"{k} {v}" for k, v in r["routes"].items()) + ".",
        "",
        "Errors: " + (", ".join(r["error_types"]) if r["error_types"] else "none") + ".",
        "",
        "The single-user reference ran on its own server and cache; the loaded server started cold, so "
        "the first occurrence of each request ran on an engine under load and later repeats came from "
        "the result cache (a dashboard-like mix). Reproduce with `make load` (`python -m benchmarks.load`).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=20)
    p.add_argument("--duration", type=float, default=120.0)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--sessions", type=int, default=2, help="query sessions of the API server")
    p.add_argument("--data", default=str(ROOT / "data" / "load"), help="where the load lake is built/reused")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    result = run(args.users, args.duration, args.rows, args.sessions, Path(args.data), args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "load.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "load.md").write_text(to_markdown(result))
    print(to_markdown(result))
    o = result["overall"]
    return 0 if o["errors"] == 0 and o["mismatches"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
