"""The tiny TotalSegmentator weights: the shipped network, its installation, and a rebuild from scratch.

The shipped network (totalseg_bids/testing/data/) is what the demo and the
session fixture install in seconds; the slow test here trains it again by the
same recipe and checks that the rebuild reaches the same floor through the
real TotalSegmentator, so the shipped file can always be made again.
"""

from __future__ import annotations

import json
import time

import nibabel as nib
import numpy as np
import pytest
from support.totalseg import MIN_DICE, add_oblique_ct, truth

from totalseg_bids.core.nifti import dice
from totalseg_bids.testing import tiny_network, tiny_totalseg
from totalseg_bids.testing.phantoms import generate
from totalseg_bids.totalsegmentator import home_env, missing_models


def test_shipped_network_is_small_and_of_this_recipe():
    """Under 2 MB, float16, made by the recipe the builder follows (else it would be retrained)."""
    assert tiny_totalseg.SHIPPED.stat().st_size < 2 * 1024 * 1024
    weights, meta = tiny_totalseg.shipped_network()
    assert meta["recipe"] == tiny_network.RECIPE and meta["iterations"] == tiny_network.ITERATIONS
    net = tiny_network.build_network()
    net.load_state_dict(weights)  # every tensor the network has, by name and shape


def test_install_gives_every_folder_totalsegmentator_loads(tiny_totalseg_home, monkeypatch):
    """The session's install (the shipped network) for total and total_mr: nothing left to download,
    usage statistics off; a second call keeps the build."""
    home = tiny_totalseg_home
    record = tiny_totalseg.build(home)
    assert record["recipe"] == tiny_network.RECIPE and record["tasks"] == ["total", "total_mr"]
    monkeypatch.setenv("TOTALSEG_HOME_DIR", str(home))
    monkeypatch.delenv("TOTALSEG_WEIGHTS_PATH", raising=False)
    for task, fast, classes in (("total", True, ["sacrum"]), ("total", False, ["sacrum", "hip_left"]),
                                ("total_mr", False, ["sacrum"]), ("total_mr", True, ["sacrum"])):
        assert missing_models(task, fast, classes) == [], (task, fast)
    assert json.loads((home / "config.json").read_text(encoding="utf-8"))["send_usage_stats"] is False
    stamp = (home / tiny_totalseg.STAMP).stat().st_mtime_ns
    assert tiny_totalseg.build(home) == record and (home / tiny_totalseg.STAMP).stat().st_mtime_ns == stamp


# a from-scratch training of the shipped network (2 minutes alone on 2 cores) and the real
# TotalSegmentator: over the 180 s budget when another test shares the cores
@pytest.mark.timeout(600)
@pytest.mark.slow
def test_rebuilt_network_reaches_the_floor(tmp_path, cli):
    """Trained from scratch by the shipped recipe, then the real TotalSegmentator (--fast, the demo's
    mode) on a RAS and an oblique phantom CT: the sacrum reaches the floor the shipped network is held to."""
    home = tmp_path / "home"
    t = time.perf_counter()
    record = tiny_totalseg.build(home, retrain=True)
    seconds = time.perf_counter() - t
    assert record["network"] == "trained" and record["iterations"] == tiny_network.ITERATIONS
    ds = generate(tmp_path / "ds", subjects=1, ct_labels=False, ct_spacing=2.0)
    add_oblique_ct(ds)
    proc = cli("segment_ct", "--bids-dir", ds, "--classes", "sacrum", "--fast", "--device", "cpu", timeout=900,
               env=home_env(home))
    assert proc.returncode == 0, proc.stderr
    scores = {}
    for ct in sorted(ds.glob("sub-*/anat/*_CT.nii.gz")):
        label = ds / "derivatives" / "labels" / ct.parent.relative_to(ds) / ct.name.replace(
            "_CT.nii.gz", "_CT_label-sacrum_seg.nii.gz")
        scores[ct.name] = round(dice(np.asarray(nib.load(label).dataobj) > 0, truth(ds, ct, "sacrum")), 3)
    print(f"rebuilt in {seconds:.0f} s; sacrum Dice {scores}")
    assert min(scores.values()) >= MIN_DICE, scores
