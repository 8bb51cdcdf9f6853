"""BIDS validity (issue 10): the official validator (bids-validator-deno, offline,
``-r`` for derivatives) on phantom datasets and pipeline outputs in both
naming modes, and pybids indexing the derivatives."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest


VALIDATOR = shutil.which("bids-validator-deno")
needs_validator = pytest.mark.skipif(VALIDATOR is None, reason="bids-validator-deno not installed")


def validate(root: Path) -> tuple[list[dict], dict[str, list[dict]]]:
    """Run the validator recursively; return (raw errors, {derivative: errors})."""
    proc = subprocess.run([VALIDATOR, "-r", "--format", "json", str(root)], capture_output=True, text=True,
                          timeout=600)
    report = json.loads(proc.stdout)
    raw = [i for i in report["issues"]["issues"] if i["severity"] == "error"]
    deriv = {name: [i for i in s["issues"]["issues"] if i["severity"] == "error"]
             for name, s in (report.get("derivativesSummary") or {}).items()}
    return raw, deriv


def summary(errors: list[dict]) -> dict:
    return dict(Counter(e["code"] for e in errors))


@needs_validator
def test_raw_phantom_is_valid_in_both_namings(tmp_path):
    from totalseg_bids.phantoms import generate

    for naming in ("neuropoly", "bids"):
        root = generate(tmp_path / naming, subjects=2, sessions=2, mixed_sessions=True, naming=naming)
        raw, deriv = validate(root)
        assert raw == [], summary(raw)
        assert set(deriv) == {"/derivatives/labels/", "/derivatives/ground_truth/"}
        if naming == "bids":
            assert all(v == [] for v in deriv.values()), {k: summary(v) for k, v in deriv.items()}
        else:  # the NeuroPoly names are known to fail the validator; the raw dataset must not
            assert summary(deriv["/derivatives/labels/"]).get("FILENAME_MISMATCH")


def test_pybids_indexes_derivatives_in_both_namings(tmp_path):
    bids = pytest.importorskip("bids")
    from totalseg_bids.phantoms import generate

    for naming in ("neuropoly", "bids"):
        root = generate(tmp_path / naming, subjects=1, naming=naming)
        layout = bids.BIDSLayout(str(root), derivatives=True, validate=False)
        files = layout.get(scope="derivatives", extension=".nii.gz", subject="01")
        assert len(files) == 11, [f.filename for f in files]  # 3 grids x (2 masks + dseg) + 2 CT labels
        suffixes = {f.entities["suffix"] for f in files}
        assert suffixes == ({"seg", "dseg"} if naming == "neuropoly" else {"mask", "dseg"})
