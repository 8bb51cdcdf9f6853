"""Shared fixtures: phantom datasets generated once per session and copied per test; the session's
nnU-Net model, tiny TotalSegmentator weights and SLURM cluster come from the ``support`` plugins.

Tests are laid out like the package: ``unit/`` (core, stages, adapters, testing), ``cli/`` (the command-line
contract, bad input, vocabulary, entry points, the README), ``e2e/`` (demo, pipelines, datalad, scaling,
SLURM). Helpers they share are in ``support/``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from support import run_module

os.environ.setdefault("TOTALSEG_BIDS_NO_PROGRESS", "1")
os.environ.setdefault("nnUNet_def_n_proc", "1")

pytest_plugins = ("support.nnunet", "support.totalseg", "support.slurm")
#: the slow categories (pyproject.toml's markers): a test marked with one is also ``slow``
SLOW_CATEGORIES = ("nnunet", "totalseg", "registration", "datalad", "dask", "browser", "slurm")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Mark every test of a slow category ``slow`` too, before ``-m`` selects; the tests of the
    session's one SLURM cluster run in one pytest-xdist worker (``--dist loadgroup``)."""
    for item in items:
        if any(item.get_closest_marker(name) for name in SLOW_CATEGORIES):
            item.add_marker(pytest.mark.slow)
        if "slurm" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("slurm"))


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


@pytest.fixture
def cli():
    """``cli("register", "--path-img", ds)`` -> CompletedProcess."""
    return run_module
