"""Every stage has an installed console script pointing at its ``main``."""

import ast
import importlib
from pathlib import Path

SETUP = Path(__file__).resolve().parents[1] / "setup.py"


def _stages() -> list[str]:
    tree = ast.parse(SETUP.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "STAGES":
            return ast.literal_eval(node.value)
    raise AssertionError("setup.py defines no STAGES list")


def test_every_stage_module_has_a_console_script():
    stages = set(_stages())
    pkg = SETUP.parent / "totalseg_bids"
    modules = {p.stem for p in pkg.glob("*.py") if p.stem != "__init__" and "def main(" in p.read_text(encoding="utf-8")}
    assert modules <= stages, f"stage modules without a console script: {sorted(modules - stages)}"
    for m in stages:
        assert callable(importlib.import_module(f"totalseg_bids.{m}").main)
