"""A new user's first hour (issue 15): the README works as printed, every hint names something real.

* ``test_readme_using_it_runs_literally`` runs every line of the README's "Using it" block,
  in order, in a fresh folder (as a clone would be), and checks each one succeeds.
* ``test_every_command_named_in_hints_and_readme_exists`` finds each backticked
  ```workbench ...``` in the package's strings (error hints, messages, help) and in the README
  and resolves it against the real command tree (command, sub-command, options).
* ``test_every_path_the_readme_and_hints_name_exists`` does the same for files and folders.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import click
import pytest

from tests.fixtures.processes import stop_process
from workbench.cli import main

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def _using_it_lines() -> list[str]:
    section = README.split("## Using it", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "the README's 'Using it' section has no bash block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _workbench_exe() -> list[str]:
    script = Path(sys.executable).parent / "workbench"
    return [str(script)] if script.exists() else [sys.executable, "-c", "from workbench.cli import main; main()"]


def _serve_until_answering(args: list[str], cwd: Path, env: dict[str, str]) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [*_workbench_exe(), *args], cwd=cwd, env={**env, "WORKBENCH_PORT": str(port)}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                    assert r.status == 200 and b"<html" in r.read().lower()
                    return
            except OSError:
                time.sleep(0.5)
        raise AssertionError("workbench serve did not answer within 120 s")
    finally:
        stop_process(proc, timeout=20)


def test_readme_using_it_runs_literally(tmp_path: Path) -> None:
    """Every line of "Using it", in order, in a fresh folder holding what a clone holds."""
    shutil.copytree(REPO / "questions", tmp_path / "questions")  # the README's relative paths
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKBENCH_", "OPENAI_"))}
    env["WORKBENCH_HOME"] = str(tmp_path / ".workbench")
    env["PYTHONPATH"] = str(REPO)
    outputs: list[tuple[list[str], str]] = []
    for line in _using_it_lines():
        words = shlex.split(line, comments=True)
        if words[:1] == ["source"]:  # the test already runs inside the virtual environment
            continue
        if words[:1] == ["export"]:
            name, _, value = words[1].partition("=")
            env[name] = value
            continue
        assert words[0] == "workbench", f"README line is not a workbench command: {line}"
        if words[1] == "serve":
            _serve_until_answering(words[1:], tmp_path, env)
            continue
        proc = subprocess.run(
            [*_workbench_exe(), *words[1:]], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
        )
        assert proc.returncode == 0, f"{line}\n-> exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        outputs.append((words, proc.stdout))
    text = "\n".join(out for _, out in outputs)
    assert "I do not understand" not in text and "could not answer" not in text
    follow_up = [out for words, out in outputs if words[1:3] == ["ask", "and in 2023?"]]
    assert follow_up and "2023" in follow_up[0].split("Context:")[0]  # answered for 2023, in the conversation


# --- every command a hint or the README names exists --------------------------------------------
_PLACEHOLDER = re.compile(r"^(?:[A-Z][A-Z_.]*|<[^>]*>|\{[^}]*\}|\.\.\.|\"[^\"]*\"|'[^']*')$")


def _package_strings() -> list[tuple[str, str]]:
    """Every string literal of the package (f-string parts included) with where it is."""
    found = []
    for path in sorted((REPO / "workbench").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.append((f"{path.relative_to(REPO)}:{node.lineno}", node.value))
    return found


def _mentions() -> list[tuple[str, str]]:
    """Backticked `workbench ...` commands in the package's strings and in the README."""
    sources = [*_package_strings(), ("README.md", README)]
    return [(where, m) for where, text in sources for m in re.findall(r"`(workbench [^`]+)`", text)]


def _check_command(text: str) -> str | None:
    """None when ``text`` is a real command line of our CLI, else what is wrong with it."""
    words = shlex.split(text.replace("...", "X"))[1:]
    command: click.Command = main
    ctx = click.Context(main)
    for alternative in " ".join(words).split(" / ")[1:]:  # `workbench register / unregister / ...`
        if alternative.split()[0] not in main.commands:  # type: ignore[attr-defined]
            return f"no command {alternative.split()[0]!r}"
    options: set[str] = set()
    for word in words:
        if word == "/":
            break
        if word.startswith("-"):
            options |= {o for p in command.get_params(ctx) for o in (*p.opts, *p.secondary_opts)}
            if word.split("=")[0] not in options:
                return f"{command.name} has no option {word}"
        elif isinstance(command, click.Group) and not _PLACEHOLDER.match(word):
            sub = command.get_command(ctx, word)
            if sub is None:
                return f"no command {word!r} under {command.name}"
            command = sub
    return None


def test_every_command_named_in_hints_and_readme_exists() -> None:
    mentions = _mentions()
    assert len(mentions) > 20  # the scan finds the hints at all
    wrong = {f"{where}: `{text}`: {problem}" for where, text in mentions if (problem := _check_command(text))}
    assert not wrong, "\n".join(sorted(wrong))


def test_every_path_the_readme_and_hints_name_exists() -> None:
    readme_paths = set(re.findall(r"\]\(([^)#]+)\)", README))  # markdown links and images
    readme_paths |= {
        p for p in re.findall(r"`([\w./-]+/[\w./-]*|[\w-]+\.(?:py|md|yaml|jsonl|ipynb))`", README) if "://" not in p
    }
    readme_paths |= {w for line in _using_it_lines() for w in shlex.split(line, comments=True) if w.endswith(".jsonl")}
    hint_paths = {m for _, text in _package_strings() for m in re.findall(r"\bdocs/[\w./-]+\w", text)}
    missing = sorted(p for p in readme_paths | hint_paths if not _exists(p) and not _made_by_readme(p))
    assert not missing, f"named but not in the repository: {missing}"
    assert {"docs/schema.md", "docs/design.md", "questions/questions-dev.jsonl"} <= readme_paths | hint_paths


def _exists(path: str) -> bool:
    """In the repository; bare result names are the README's "Measured (benchmarks/results/)" files."""
    return (REPO / path).exists() or ("/" not in path and (REPO / "benchmarks" / "results" / path).exists())


def _made_by_readme(path: str) -> bool:
    """Paths a user or the README's own commands create (data/mine, mylake, workbench.yaml, ...)."""
    first = path.removeprefix("./").split("/")[0]
    return first in {"data", "lake", "mylake", ".venv", ".workbench", "test-artifacts", "workbench.yaml"}


def test_every_make_target_the_readme_names_exists() -> None:
    makefile = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"^([\w-]+):", makefile, re.M))
    named = set(re.findall(r"`make ([\w-]+)", README))
    assert named and named <= targets, named - targets


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("workbench tables", True),
        ("workbench columns TABLE", True),
        ("workbench rollups build", True),
        ("workbench lake tables", False),
        ("workbench sql --json", True),
        ("workbench sql --jsn", False),
    ],
)
def test_the_command_check_can_fail(text: str, ok: bool) -> None:
    assert (_check_command(text) is None) is ok


def test_every_environment_variable_a_hint_names_is_read() -> None:
    """``WORKBENCH_X`` in a hint is a setting (config.Settings) or a variable the code reads itself."""
    from workbench.config import Settings

    def settings_vars(model: type, prefix: str) -> set[str]:
        out = set()
        for name, field in model.model_fields.items():  # type: ignore[attr-defined]
            out.add(f"{prefix}{name.upper()}")
            nested = field.annotation
            if isinstance(nested, type) and hasattr(nested, "model_fields"):
                out |= settings_vars(nested, f"{prefix}{name.upper()}__")
        return out

    known = settings_vars(Settings, "WORKBENCH_")
    code = "\n".join(p.read_text() for p in (REPO / "workbench").rglob("*.py"))
    read_directly = set(re.findall(r"environ(?:\.get)?[\[(]\s*\"(WORKBENCH_[A-Z0-9_]+)\"", code))
    read_directly |= set(re.findall(r"envvar=\"(WORKBENCH_[A-Z0-9_]+)\"", code))
    named = {v for _, text in _package_strings() for v in re.findall(r"WORKBENCH_[A-Z0-9_]*[A-Z0-9]", text)}
    named |= set(re.findall(r"WORKBENCH_[A-Z0-9_]*[A-Z0-9]", README))
    assert {"WORKBENCH_ROW_LIMIT", "WORKBENCH_HOME", "WORKBENCH_LAKE"} <= named  # the scan finds hints at all
    assert "WORKBENCH_NO_SUCH_SETTING" not in known | read_directly
    unknown = sorted(named - known - read_directly)
    assert not unknown, f"named in hints/README but read by nothing: {unknown}"
