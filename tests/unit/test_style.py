"""The habits machines keep: ruff's lint rules and mypy on core and the adapters (pyproject.toml, the same
checks `.pre-commit-config.yaml` runs before a commit), and the house's size limits."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest
from support import REPO

#: The house's limits (docs/architecture.md): a function fits a screen, a module one concept.
MAX_FUNCTION_LINES = 60
MAX_FILE_LINES = 500


def _run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=REPO, capture_output=True, encoding="utf-8", errors="replace", timeout=170)


def test_ruff_is_clean():
    proc = _run(sys.executable, "-m", "ruff", "check", "--no-cache", ".")
    assert proc.returncode == 0, proc.stdout[-4000:]


@pytest.mark.slow
def test_mypy_is_clean_on_core_and_the_adapters():
    proc = _run(sys.executable, "-m", "mypy", "--no-incremental")
    assert proc.returncode == 0, proc.stdout[-4000:]


def test_functions_and_modules_within_the_house_limits():
    long_functions, long_files = [], []
    for path in sorted((REPO / "totalseg_bids").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(REPO)
        if text.count("\n") > MAX_FILE_LINES:
            long_files.append(f"{rel}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long_functions.append(f"{rel}:{node.lineno} {node.name}: {length} lines")
    assert long_files == [] and long_functions == [], long_files + long_functions
