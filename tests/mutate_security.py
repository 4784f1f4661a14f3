"""Mutation check for access control: renaming any function in ``workbench/security/`` must
make the tests fail (issue 13; STYLE.md "rename the policy lookup and see the suite fail").

Run by hand (it runs pytest once per function, so it is not part of the suite)::

    python -m tests.mutate_security                 # every function, the default test files
    python -m tests.mutate_security --only apply_policy -- tests/test_policies.py
    python -m tests.mutate_security --pipeline      # drop or reorder the safety steps of STEPS

Each mutant is made in a scratch copy of the repository (the working tree is never touched):
one ``def name(`` becomes ``def name__mutant(``, callers are left as they are, exactly what a
careless rename or deletion does. A mutant *survives* when the selected tests still pass;
the script lists survivors and exits 1 if there are any.
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = "workbench/security"
#: the tests that exercise access control and personal data (fast ones first: -x stops early)
DEFAULT_TESTS = [
    "tests/test_policies.py",
    "tests/test_forget.py",
    "tests/test_router.py",
    "tests/test_injection.py",
]
COPY = ["workbench", "tests", "pyproject.toml", "policies.yaml", "semantic.yaml", "workbench.yaml"]


PIPELINE = "workbench/sql/pipeline.py"
#: edits of the declared query pipeline that would switch a safety property off
PIPELINE_MUTANTS = {
    "drop guard": ("    guard,\n    access_policy,", "    access_policy,"),
    "drop access_policy": ("    guard,\n    access_policy,", "    guard,"),
    "drop police_tree": ("    police_tree,\n", ""),
    "cache_lookup before access_policy": (
        "    access_policy,\n    table_versions,\n    cache_lookup,",
        "    table_versions,\n    cache_lookup,\n    access_policy,",
    ),
}


@dataclass(frozen=True)
class Mutant:
    path: str
    line: int
    name: str

    def label(self) -> str:
        return f"{self.path}:{self.line} {self.name}"


@dataclass(frozen=True)
class StepMutant:
    name: str

    def label(self) -> str:
        return f"{PIPELINE} STEPS: {self.name}"


def functions(root: Path = ROOT) -> list[Mutant]:
    """Every ``def`` (module functions, methods, properties, nested helpers) under TARGET."""
    found = []
    for path in sorted((root / TARGET).glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.append(Mutant(str(path.relative_to(root)), node.lineno, node.name))
    return sorted(found, key=lambda m: (m.path, m.line))


def mutate(copy: Path, mutant: Mutant | StepMutant) -> None:
    if isinstance(mutant, StepMutant):
        path = copy / PIPELINE
        old, new = PIPELINE_MUTANTS[mutant.name]
        text = path.read_text()
        assert old in text, f"STEPS changed: update PIPELINE_MUTANTS ({mutant.name})"
        path.write_text(text.replace(old, new, 1))
        return
    path = copy / mutant.path
    lines = path.read_text().splitlines(keepends=True)
    index = mutant.line - 1
    while f"def {mutant.name}(" not in lines[index]:  # decorators: the def is further down
        index += 1
    lines[index] = lines[index].replace(f"def {mutant.name}(", f"def {mutant.name}__mutant(", 1)
    path.write_text("".join(lines))


def killed(copy: Path, tests: list[str], timeout: int) -> bool:
    """True when the selected tests fail against the mutant (what we want)."""
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-m", "not slow", *tests]
    env = {**os.environ, "PYTHONPATH": str(copy)}
    try:
        run = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return True  # a hang is a failure too
    return run.returncode != 0


def scratch() -> Path:
    copy = Path(tempfile.mkdtemp(prefix="wb-mutant-"))
    for name in COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, copy / name)
    return copy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[], help="mutate only these function names")
    parser.add_argument("--timeout", type=int, default=900)
    parser.add_argument("--pipeline", action="store_true", help="mutate the safety steps of the query pipeline")
    parser.add_argument("tests", nargs="*", default=DEFAULT_TESTS)
    args = parser.parse_args(argv)
    mutants: list[Mutant | StepMutant] = (
        [StepMutant(name) for name in PIPELINE_MUTANTS]
        if args.pipeline
        else [m for m in functions() if not args.only or m.name in args.only]
    )
    base = scratch()
    if killed(base, args.tests, args.timeout):
        print("the selected tests fail without any mutation: fix them first")
        return 2
    survivors = []
    for mutant in mutants:
        copy = Path(tempfile.mkdtemp(prefix="wb-mutant-"))
        shutil.rmtree(copy)
        shutil.copytree(base, copy)
        mutate(copy, mutant)
        start = time.perf_counter()
        outcome = killed(copy, args.tests, args.timeout)
        print(
            f"{'killed  ' if outcome else 'SURVIVED'} {mutant.label()} ({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
        if not outcome:
            survivors.append(mutant)
        shutil.rmtree(copy, ignore_errors=True)
    shutil.rmtree(base, ignore_errors=True)
    print(f"{len(mutants) - len(survivors)} of {len(mutants)} mutants killed")
    for m in survivors:
        print(f"survivor: {m.label()}")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
