"""Run workbench commands in subprocesses and measure them (wall, CPU, peak RSS of the tree).

Why subprocesses: the harness drives the product through its CLI (``workbench generate``,
``workbench ingest``), the interface that stays stable while the modules behind it change,
and a fresh process per batch gives a clean per-batch peak memory (nothing carried over from
the previous batch except what the lake itself makes the next one do).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[2]
#: ``workbench ...`` through the interpreter running the harness (same venv, same package)
CLI = [sys.executable, "-c", "import sys; from workbench.cli import main; sys.argv[0] = 'workbench'; sys.exit(main())"]


@dataclass
class Run:
    """One measured subprocess: wall and CPU seconds, peak RSS of its tree, least free disk seen."""

    argv: list[str]
    seconds: float = 0.0
    cpu_s: float = 0.0
    peak_rss: int = 0
    min_free_disk: int = 0
    peak_staging: int = 0
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    killed: bool = False
    notes: dict[str, Any] = field(default_factory=dict)

    def json(self) -> Any:
        """The command's ``--json`` output (its last line)."""
        return json.loads(self.stdout.strip().splitlines()[-1])

    def summary(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 2),
            "cpu_s": round(self.cpu_s, 2),
            "peak_rss_mb": round(self.peak_rss / 2**20, 1),
            "returncode": self.returncode,
        }


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def env_for(lake: Path, home: Path) -> dict[str, str]:
    """The environment of every step: this lake, a private home (catalog, cache, staging)."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
        "WORKBENCH_LAKE": str(lake),
        "WORKBENCH_HOME": str(home),
        "WORKBENCH_PII_KEY": os.environ.get("WORKBENCH_PII_KEY", "benchmark-only-key"),
    }


def run(
    argv: list[str],
    env: dict[str, str],
    disk: Path,
    kill_when: Callable[[str], bool] | None = None,
    interval: float = 0.02,
    staging: Path | None = None,
) -> Run:
    """Run ``argv``; sample its tree's RSS and the free disk every ``interval`` seconds.

    ``kill_when(stderr_so_far)`` is asked at every sample; once it says yes the process gets
    SIGKILL (no cleanup code of it runs: the crash the atomic-ingest guarantee is about).
    ``staging``: a folder whose ``ingest-*`` subfolders (the ingest's spill) are measured 4 times a
    second; the free-disk figure alone would count other jobs' writes on a shared disk.
    """
    while not disk.exists():  # the step may create its folder: watch the disk it lands on
        disk = disk.parent
    result = Run(argv=argv, min_free_disk=shutil.disk_usage(disk).free)
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    ps = psutil.Process(proc.pid)
    err: list[str] = []
    reader = threading.Thread(target=_pump, args=(proc.stderr, err), daemon=True)
    reader.start()
    out: list[str] = []
    writer = threading.Thread(target=_pump, args=(proc.stdout, out), daemon=True)
    writer.start()
    last_staging = 0.0
    earlier = set(staging.glob("ingest-*")) if staging is not None else set()  # e.g. a killed ingest's
    while proc.poll() is None:
        if staging is not None and time.perf_counter() - last_staging >= 0.25:
            last_staging = time.perf_counter()
            result.peak_staging = max(result.peak_staging, staging_bytes(staging, earlier))
        try:
            result.peak_rss = max(result.peak_rss, tree_rss(ps))
        except psutil.Error:
            pass
        result.min_free_disk = min(result.min_free_disk, shutil.disk_usage(disk).free)
        if kill_when is not None and not result.killed and kill_when("".join(err)):
            proc.send_signal(signal.SIGKILL)
            result.killed = True
        time.sleep(interval)
    reader.join()
    writer.join()
    result.seconds = time.perf_counter() - start
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    result.cpu_s = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    result.returncode = proc.returncode
    result.stdout, result.stderr = "".join(out), "".join(err)
    return result


def staging_bytes(home: Path, skip: set[Path] | None = None) -> int:
    """Bytes in the ingest's staging folders under ``home`` but ``skip`` (they come and go: errors are skipped)."""
    total = 0
    for folder in set(home.glob("ingest-*")) - (skip or set()):
        for f in folder.rglob("*"):
            try:
                total += f.stat().st_size if f.is_file() else 0
            except OSError:
                pass
    return total


def _pump(stream: Any, into: list[str]) -> None:
    """Read a pipe as its bytes arrive (tqdm redraws with carriage returns, not newlines)."""
    fd = stream.fileno()
    while chunk := os.read(fd, 65536):
        into.append(chunk.decode("utf-8", "replace"))


def checked(result: Run, what: str) -> Run:
    """Stop the harness with the command's own error when a step failed."""
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-15:]
        raise SystemExit(f"{what} failed (exit {result.returncode}): {' '.join(result.argv[3:])}\n" + "\n".join(tail))
    return result
