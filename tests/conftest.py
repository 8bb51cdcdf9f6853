"""Shared fixtures: phantom datasets generated once per session and copied per test."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TOTALSEG_BIDS_NO_PROGRESS", "1")
os.environ.setdefault("nnUNet_def_n_proc", "1")

REPO = Path(__file__).resolve().parents[1]
#: the slow categories (pyproject.toml's markers): a test marked with one is also ``slow``
SLOW_CATEGORIES = ("nnunet", "totalseg", "registration", "datalad", "dask", "browser", "slurm")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Mark every test of a slow category ``slow`` too, before ``-m`` selects."""
    for item in items:
        if any(item.get_closest_marker(name) for name in SLOW_CATEGORIES):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def phantom_template(tmp_path_factory) -> Path:
    """3 aligned subjects (sub-02 has two sessions), generated once."""
    from totalseg_bids.testing.phantoms import generate

    return generate(tmp_path_factory.mktemp("phantom_template") / "ds", subjects=3, sessions=2,
                    mixed_sessions=True, seed=1)


@pytest.fixture(scope="session")
def misaligned_template(tmp_path_factory) -> Path:
    """2 subjects whose MRI anatomy is moved by 4 mm and 3 degrees."""
    from totalseg_bids.testing.phantoms import generate

    return generate(tmp_path_factory.mktemp("misaligned_template") / "ds", subjects=2, seed=2,
                    misalign_mm=4.0, misalign_deg=3.0)


@pytest.fixture
def phantom_ds(phantom_template, tmp_path) -> Path:
    """A private, writable copy of the aligned phantom dataset."""
    dst = tmp_path / "ds"
    shutil.copytree(phantom_template, dst, symlinks=True)
    return dst


@pytest.fixture
def misaligned_ds(misaligned_template, tmp_path) -> Path:
    dst = tmp_path / "ds_misaligned"
    shutil.copytree(misaligned_template, dst, symlinks=True)
    return dst


def run_module(module: str, *args: str, env: dict | None = None, cwd: str | Path | None = None,
               timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python -m totalseg_bids.<module> args`` as a user would."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    if env:
        full_env.update(env)
    return subprocess.run([sys.executable, "-m", f"totalseg_bids.{module}", *map(str, args)],
                          capture_output=True, encoding="utf-8", errors="replace", env=full_env, cwd=cwd, timeout=timeout)


@pytest.fixture
def cli():
    """``cli("register", "--path-img", ds)`` -> CompletedProcess."""
    return run_module


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str, code: int = 1) -> None:
    """The CLI contract for bad input: exit code, one error line, no traceback."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])


def stage_parser(module: str):
    """The argparse parser of ``python -m totalseg_bids.<module>`` (a package keeps it in one of its modules)."""
    import importlib

    mod = importlib.import_module(f"totalseg_bids.{module}")
    for inner in ("__main__", "cli", "main"):
        if hasattr(mod, "get_parser"):
            break
        try:
            mod = importlib.import_module(f"totalseg_bids.{module}.{inner}")
        except ImportError:
            continue
    return mod.get_parser()
