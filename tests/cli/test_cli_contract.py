"""Every ``python -m totalseg_bids.<module>`` honours the CLI contract, and
importing a stage never imports torch or nnunetv2."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
from support import STAGES, run_module


def test_stages_found():
    assert {"phantoms", "register", "qc", "bidsify", "predict"} <= set(STAGES)


@pytest.mark.parametrize("module", STAGES)
def test_no_arguments_is_usage_error(module):
    proc = run_module(module)
    assert proc.returncode == 2, proc.stderr
    assert "usage:" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("module", STAGES)
def test_help(module):
    proc = run_module(module, "--help")
    assert proc.returncode == 0 and "usage:" in proc.stdout


@pytest.mark.parametrize("module", STAGES)
def test_main_in_process(module, capsys):
    mod = importlib.import_module(f"totalseg_bids.{module}")
    assert mod.main(["--help"]) == 0
    assert mod.main([]) == 2


@pytest.mark.parametrize("module", STAGES)
def test_import_is_light(module):
    code = (f"import sys, totalseg_bids.{module}; "
            "heavy = [m for m in ('torch', 'nnunetv2', 'totalsegmentator', 'datalad', 'dask') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, encoding="utf-8", errors="replace")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_package_import_is_light():
    proc = subprocess.run([sys.executable, "-c", "import sys, totalseg_bids; print(sorted(m for m in sys.modules "
                           "if m.startswith('totalseg_bids')))"],
                          capture_output=True, encoding="utf-8", errors="replace")
    assert proc.stdout.strip() == "['totalseg_bids']"
