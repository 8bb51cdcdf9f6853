"""The package's layering, checked on every run (docs/architecture.md, "Layering").

The import graph comes from grimp (the library behind import-linter), which counts imports
inside functions too; the function-level rule reads the source with ``ast``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
import pytest

import totalseg_bids

PACKAGE = "totalseg_bids"
ROOT = Path(totalseg_bids.__file__).resolve().parent
CORE = ("core", "resources")
ADAPTERS = ("nnunet", "totalsegmentator")
#: synthetic data and its command lines (python -m totalseg_bids.phantoms / .demo)
TESTING = ("testing", "phantoms", "demo")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(PACKAGE, cache_dir=None)


def top(module: str) -> str:
    """The first-level part of a module name: its stage, adapter, core or testing.

    >>> top("totalseg_bids.register.itk"), top("totalseg_bids"), top("totalseg_bids.demo")
    ('register', '', 'demo')
    """
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def layer(module: str) -> str:
    """``core``, ``adapter``, ``testing``, ``root`` (the package's own ``__init__``) or ``stage``.

    >>> [layer(f"totalseg_bids.{m}") for m in ("core.nifti", "nnunet.paths", "testing.hard", "crop")]
    ['core', 'adapter', 'testing', 'stage']
    """
    name = top(module)
    if not name:
        return "root"
    if name in CORE:
        return "core"
    if name in ADAPTERS:
        return "adapter"
    if name in TESTING:
        return "testing"
    return "stage"


def allowed(importer: str, imported: str) -> bool:
    """Whether ``importer`` may import ``imported`` under the layering rules.

    >>> allowed("totalseg_bids.register.batch", "totalseg_bids.core.nifti")
    True
    >>> allowed("totalseg_bids.predict.batch", "totalseg_bids.model.zip")
    False
    >>> allowed("totalseg_bids.nnunet.engine", "totalseg_bids.totalsegmentator.tasks")
    False
    >>> allowed("totalseg_bids.core.qc_hook", "totalseg_bids.qc.entry")
    False
    """
    src, dst = layer(importer), layer(imported)
    if dst == "root" or top(importer) == top(imported):
        return True
    if src == "testing":
        return True
    if dst == "testing":
        return False
    return {"root": False, "core": dst == "core", "adapter": dst == "core",
            "stage": dst in ("core", "adapter")}[src]


def strongly_connected(graph: grimp.ImportGraph) -> list[list[str]]:
    """Import cycles: the strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.find_modules_directly_imported_by(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return cycles


def test_no_import_cycle(graph):
    assert strongly_connected(graph) == []


def test_layering(graph):
    broken = sorted(f"{a} -> {b}" for a in graph.modules for b in graph.find_modules_directly_imported_by(a)
                    if not allowed(a, b))
    assert broken == []


def own_imports_inside_functions(path: Path) -> list[str]:
    """``file:line`` of each import of the project's own modules inside a function."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for func in ast.walk(tree):
        if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(func):
            own = (isinstance(node, ast.ImportFrom) and (node.level > 0 or (node.module or "").startswith(PACKAGE))
                   or isinstance(node, ast.Import) and any(a.name.startswith(PACKAGE) for a in node.names))
            if own:
                found.append(f"{path.relative_to(ROOT.parent)}:{node.lineno}")
    return sorted(set(found))


def test_no_own_imports_inside_functions():
    """Only heavy third-party libraries are imported lazily; the project's own modules at the top."""
    found = [hit for path in sorted(ROOT.rglob("*.py")) for hit in own_imports_inside_functions(path)]
    assert found == []
