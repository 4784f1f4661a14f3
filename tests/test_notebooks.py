"""The notebooks in ``notebooks/`` run top to bottom (``pytest --nbval-lax``) on a small lake.

Run in a subprocess so the kernels get a clean environment: their own workbench home and a
shared temporary lake (built by the first notebook that needs it, reused by the others), and
``WORKBENCH_NOTEBOOK_ROWS`` small enough to keep the whole run short.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
ROWS = "10000"


def test_there_are_five_notebooks() -> None:
    names = [p.stem for p in NOTEBOOKS]
    assert names == ["01_quickstart", "02_assistant", "03_router", "04_scale_out", "05_byod"]


def test_notebooks_run_top_to_bottom(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "WORKBENCH_NOTEBOOK_ROWS": ROWS,
        "WORKBENCH_NOTEBOOK_LAKE": str(tmp_path / "lake"),
        "WORKBENCH_HOME": str(tmp_path / "home"),
        "WORKBENCH_PII_KEY": "test-only-key",
        "WORKBENCH_CONFIG": str(tmp_path / "no-such-workbench.yaml"),
        "PYTHONUNBUFFERED": "1",
    }
    for var in ("WORKBENCH_LAKE", "OPENAI_API_KEY", "OPENAI_BASE_URL", "WORKBENCH_SCHEDULER", "WORKBENCH_GATEWAY_URL"):
        env.pop(var, None)
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "--nbval-lax",
        "--nbval-cell-timeout=600",
        "-q",
        "-p",
        "no:cacheprovider",
        "-o",
        "addopts=",
        *[str(p) for p in NOTEBOOKS],
    ]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        pytest.fail(f"notebooks failed under nbval:\n{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}")
