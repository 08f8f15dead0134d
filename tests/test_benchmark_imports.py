"""The benchmarks import the project's code inside their functions (so a run loads only what
it measures), where no test executes them: a module split or a renamed constant left
benchmarks/indextts_bench.py failing at its first step once. Every name a benchmark imports
from the project, from the tests' builders or from its sibling helpers must exist."""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
PROJECT_PACKAGES = ("wyoming_indextts", "tests")
OPTIONAL_PACKAGES = ("torch", "indextts", "indextts25")
"""A builder module that needs these is skipped where they are not installed (test extras)."""


def imported_names(path: Path) -> list[tuple[str, str, int]]:
    """(module, name, line) of every `from MODULE import NAME` of the project or a sibling."""
    siblings = {p.stem for p in BENCHMARKS.glob("*.py")}
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            root = node.module.split(".")[0]
            if root in PROJECT_PACKAGES or root in siblings:
                found += [(node.module, alias.name, node.lineno) for alias in node.names]
    return found


@pytest.mark.parametrize("path", sorted(BENCHMARKS.glob("*.py")), ids=lambda p: p.name)
def test_benchmark_imports_resolve(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    missing = []
    for module_name, name, line in imported_names(path):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name in OPTIONAL_PACKAGES or (err.name or "").split(".")[0] in OPTIONAL_PACKAGES:
                continue
            missing.append(f"{path.name}:{line}: {module_name} ({err})")
            continue
        if not hasattr(module, name) and f"{module_name}.{name}" not in sys.modules:
            try:
                importlib.import_module(f"{module_name}.{name}")
            except ModuleNotFoundError:
                missing.append(f"{path.name}:{line}: {module_name} has no {name}")
    assert not missing, "\n".join(missing)

