"""Every stage has an installed console script pointing at its ``main`` (pyproject.toml's [project.scripts])."""

import importlib

import tomllib
from support import REPO


def _scripts() -> dict[str, str]:
    with open(REPO / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["scripts"]


def _runnable_modules() -> set[str]:
    """What ``python -m totalseg_bids.<name>`` runs: stage packages with a ``__main__`` and top-level modules
    with a ``main``."""
    pkg = REPO / "totalseg_bids"
    packages = {p.parent.name for p in pkg.glob("*/__main__.py")}
    modules = {p.stem for p in pkg.glob("*.py") if p.stem != "__init__" and "main" in p.read_text(encoding="utf-8")}
    return packages | modules


def test_every_stage_module_has_a_console_script():
    scripts = _scripts()
    targets = {value.split(":")[0].removeprefix("totalseg_bids.") for value in scripts.values()}
    missing = _runnable_modules() - targets
    assert not missing, f"stage modules without a console script: {sorted(missing)}"
    for name, value in scripts.items():
        module, func = value.split(":")
        assert name == "totalseg-bids-" + module.removeprefix("totalseg_bids.").replace("_", "-")
        assert callable(getattr(importlib.import_module(module), func))
