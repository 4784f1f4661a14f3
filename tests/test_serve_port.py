"""`workbench serve` on a busy port says so and how to choose another (issue 15)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_busy_port_is_a_clear_error_not_a_traceback(small_lake: str, tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {**os.environ, "WORKBENCH_HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO)}
        proc = subprocess.run(
            [sys.executable, "-c", "from workbench.cli import main; main()", "--lake", small_lake, "serve",
             "--port", str(port)],
            capture_output=True, text=True, env=env, timeout=300,
        )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in proc.stderr
    assert f"--port {port + 1}" in proc.stderr and f"make demo PORT={port + 1}" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_make_demo_passes_port_through() -> None:
    out = subprocess.run(
        ["make", "-n", "-W", "pyproject.toml", "demo", "PORT=5123", "VENV=.venv-does-not-matter"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    demo = [line for line in out.splitlines() if "workbench.demo" in line]
    assert demo and "--port 5123" in demo[0], out
