"""``make demo``: the whole product on the embedded defaults, from nothing to a served dashboard.

Steps, each skipped when its result is already there so a second ``make demo`` starts in
seconds: generate the reference landing files, ingest them (idempotent), print the tables and
the quality report, run example queries on both engines, answer example questions with the
assistant, then serve the dashboard on 127.0.0.1 until interrupted.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from workbench.cli.output import table_text
from workbench.errors import WorkbenchError
from workbench.ui.wording import answered

EXAMPLE_QUESTIONS = [
    "What was the total revenue in 2023?",
    "Top 5 categories by profit in 2022",
    "and in 2023?",
    "Which region had the highest revenue in Q4 2023?",
]


#: rows of an example result printed in full (every example has at most 12)
EXAMPLE_ROWS = 12


def _step(title: str) -> float:
    print(f"\n== {title}", flush=True)
    return time.perf_counter()


def _done(t0: float) -> None:
    print(f"   ({time.perf_counter() - t0:.1f} s)", flush=True)


def _indent(text: str) -> str:
    return "\n".join("      " + line for line in text.splitlines())


def run(rows: int, landing: str, lake: str | None, serve: bool, port: int) -> None:
    """The demo's steps in order; each prints what it did and how long it took."""
    import workbench
    from workbench.lake.storage import Lake

    the_lake = Lake(lake)
    _landing(rows, landing)
    _ingest(landing, the_lake)
    wb = workbench.connect(lake=the_lake.url)
    _examples(wb)
    _assistant(wb)
    if serve:
        from workbench.ui.dashboard import serve as serve_dashboard

        _step(f"serving the dashboard on http://127.0.0.1:{port} (Ctrl-C stops it)")
        serve_dashboard(port=port, address="127.0.0.1", lake=the_lake.url, show=False)


def _landing(rows: int, landing: str) -> None:
    """Generate the landing files unless this many rows are already there (marker file)."""
    from workbench.lake.generate import generate

    marker = Path(landing) / ".generated"
    if marker.exists() and marker.read_text().strip() == str(rows):
        print(f"\n== landing files already in {landing} ({rows:,} rows)")
        return
    t0 = _step(f"generating {rows:,} raw sales rows into {landing}")
    generate(rows, landing, progress=True, overwrite=True)  # its own files, for another ROWS
    marker.write_text(str(rows))
    _done(t0)


def _ingest(landing: str, the_lake: Any) -> None:
    from workbench.lake.ingest import ingest
    from workbench.lake.tables import lake_tables

    t0 = _step(f"ingesting {landing} into {the_lake.url}")
    print(ingest(landing, the_lake, progress=True).to_text())
    _done(t0)
    _step("lake tables")
    for t in lake_tables(the_lake):
        print(f"   {t.name:<40} {t.rows:>12,} rows {t.partitions:>5} partitions  version {t.version}")


def _examples(wb: Any) -> None:
    """Each example's full, sorted result once, then how every engine did on it."""
    from workbench.sql.examples import run_examples

    t0 = _step("example queries on both engines")
    shown: set[str] = set()
    for ex in run_examples(wb):
        if ex["example"] not in shown:
            shown.add(ex["example"])
            print(f"\n   {ex['example']}:  {ex['sql']}")
            try:
                print(_indent(table_text(wb.sql(ex["sql"]).df, EXAMPLE_ROWS)))
            except WorkbenchError as err:
                print(f"      refused: {err.message}")
        if ex["ok"]:
            outcome = f"{ex['rows']} rows in {ex['elapsed_ms']:.0f} ms, {ex['files_scanned']} files scanned"
        else:
            outcome = f"refused ({ex['error']['message']})"
        print(f"      {ex['engine']:<7} {outcome}")
    _done(t0)


def _assistant(wb: Any) -> None:
    t0 = _step("the assistant (offline planner unless an LLM is configured)")
    for question in EXAMPLE_QUESTIONS:
        try:
            answer = wb.ask(question, session="demo")
            how = answered(answer.route, answer.timings.get("total"), answer.cached)
            understood = f"\n      understood as: {answer.interpretation}" if answer.interpretation else ""
            print(f"   Q: {question}{understood}\n   A: {answer.answer}\n      ({how})")
        except WorkbenchError as err:
            print(f"   Q: {question}\n   ! {err}")
    _done(t0)


def _quiet_libraries() -> None:
    """Keep the demo's output about the product: libraries' info logs and deprecations are noise here."""
    import logging
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*allowed_objects.*")
    for name in ("faiss", "faiss.loader", "distributed", "workbench.assistant.graph"):
        logging.getLogger(name).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.demo", description=__doc__)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--landing", default="data/landing")
    parser.add_argument("--lake", default=None)
    parser.add_argument("--port", type=int, default=5006)
    parser.add_argument("--no-serve", action="store_true", help="stop after the examples")
    args = parser.parse_args(argv)
    _quiet_libraries()
    try:
        run(args.rows, args.landing, args.lake, not args.no_serve, args.port)
    except WorkbenchError as err:
        print(f"error: {err.message}\nhint: {err.hint}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("\nstopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
