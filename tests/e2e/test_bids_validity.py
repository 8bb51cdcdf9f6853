"""BIDS validity: the official validator (bids-validator-deno, offline,
``-r`` for derivatives) on phantom datasets and pipeline outputs in both
naming modes, and pybids indexing the derivatives."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from support import FAKE_TOOLS, run_module

VALIDATOR = shutil.which("bids-validator-deno")
needs_validator = pytest.mark.skipif(VALIDATOR is None, reason="bids-validator-deno not installed")


def validate(root: Path) -> tuple[list[dict], dict[str, list[dict]]]:
    """Run the validator recursively; return (raw errors, {derivative: errors})."""
    proc = subprocess.run([VALIDATOR, "-r", "--format", "json", str(root)], capture_output=True, encoding="utf-8",
                          errors="replace", timeout=600)
    report = json.loads(proc.stdout)
    raw = [i for i in report["issues"]["issues"] if i["severity"] == "error"]
    deriv = {name: [i for i in s["issues"]["issues"] if i["severity"] == "error"]
             for name, s in (report.get("derivativesSummary") or {}).items()}
    return raw, deriv


def summary(errors: list[dict]) -> dict:
    return dict(Counter(e["code"] for e in errors))


@needs_validator
def test_raw_phantom_is_valid_in_both_namings(tmp_path):
    from totalseg_bids.testing.phantoms import generate

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
    from totalseg_bids.testing.phantoms import generate

    for naming in ("neuropoly", "bids"):
        root = generate(tmp_path / naming, subjects=1, naming=naming)
        layout = bids.BIDSLayout(str(root), derivatives=True, validate=False)
        files = layout.get(scope="derivatives", extension=".nii.gz", subject="01")
        assert len(files) == 11, [f.filename for f in files]  # 3 grids x (2 masks + dseg) + 2 CT labels
        suffixes = {f.entities["suffix"] for f in files}
        assert suffixes == ({"seg", "dseg"} if naming == "neuropoly" else {"mask", "dseg"})




def _other_methods() -> list[str]:
    """Registration methods besides rigid that this machine can run (ANTs is an extra)."""
    import importlib.util

    ants = ["ants-rigid", "ants-syn"] if importlib.util.find_spec("ants") else []
    return ["header", "affine", "sct", *ants]


OTHER_METHODS = _other_methods()


@needs_validator
def test_ct_crop_under_bids_naming_validates(tmp_path):
    """CT (no BIDS datatype yet) cropped with --naming bids: the derivative's
    .bidsignore lists it, so the folder validates with 0 errors."""
    from totalseg_bids.testing.phantoms import generate

    ds = generate(tmp_path / "ds", subjects=1, naming="bids", ct_spacing=2.0)
    proc = run_module("crop", "--path-img", ds, "--contrasts", "CT", "--roi-dir", "labels",
                      "--roi-label", "sacrum", "--naming", "bids", "-j", "1")
    assert proc.returncode == 0, proc.stderr
    out = ds / "derivatives" / "cropped"
    assert list(out.rglob("*_desc-cropped_CT.nii.gz"))
    assert (out / ".bidsignore").read_text(encoding="utf-8").splitlines() == ["*_CT.nii.gz", "*_CT.json"]
    errors = validate(out)[0]
    assert errors == [], summary(errors)
    # sidecar URIs name the raw dataset through DatasetLinks, as BIDS defines bids:<name>:
    description = json.loads((out / "dataset_description.json").read_text(encoding="utf-8"))
    assert description["DatasetLinks"] == {"raw": "../.."}
    side = json.loads(next(out.rglob("*_desc-cropped_CT.json")).read_text(encoding="utf-8"))
    assert side["Sources"] and all(u.startswith("bids:raw:") for u in side["Sources"])
    assert all((out / "../.." / u.removeprefix("bids:raw:")).is_file() for u in side["Sources"])


# every stage's outputs written and validated (2-3 minutes on 2 shared cores): near the 180 s budget
@pytest.mark.timeout(400)
@needs_validator
@pytest.mark.slow
@pytest.mark.parametrize("naming", ["bids", "neuropoly"])
def test_pipeline_outputs_validate(naming, tmp_path, trained_model):  # noqa: F811
    """segment_ct -> register -> crop -> predict with --naming bids passes the
    validator with no error, raw and derivatives; with the default naming the
    raw dataset still passes. pybids indexes every derivative folder.

    segment_ct runs the TotalSegmentator stand-in from tests/support/fake_tools (it writes the
    program's output layout at once): the validator is under test here, and the real program on the
    tiny weights, a minute more, is run by tests/unit/adapters/test_segment_ct_real.py and the demo.
    """
    import os
    import sys

    from totalseg_bids.testing.phantoms import generate

    ds = generate(tmp_path / "ds", subjects=2, sessions=2, mixed_sessions=True, naming=naming, ct_labels=False)
    env = {"PATH": os.pathsep.join([str(FAKE_TOOLS), os.path.dirname(sys.executable), os.environ["PATH"]])}
    steps = [
        ("segment_ct", ["--path-img", ds, "--classes", "sacrum", "--device", "cpu", "-j", "1"]),
        ("register", ["--path-img", ds, "--label", "sacrum", "--method", "rigid", "-j", "1"]),
        # every other registration method into its own derivative folder (sct: the stand-in of tests/support/fake_tools)
        *[("register", ["--path-img", ds, "--label", "sacrum", "--method", method, "-j", "1",
                        "-o", ds / "derivatives" / f"reg-{method}"]) for method in OTHER_METHODS],
        ("crop", ["--path-img", ds, "--contrasts", "T1w", "T2w", "--roi-dir", "reg-labels", "--roi-label", "sacrum",
                  "--label-dir", "reg-labels", "--factor", "2", "-j", "1"]),
        ("crop", ["--path-img", ds, "--contrasts", "CT", "--roi-dir", "labels", "--roi-label", "sacrum",
                  "--label-dir", "labels", "--path-out", ds / "derivatives" / "cropped-ct", "-j", "1"]),
        ("predict", ["--bids-dir", ds, "--contrasts", "T1w", "--model-dir", trained_model.model_dir, "--device", "cpu",
                     "--no-tta", "--label-name", "sacrum", "--derivatives", "predictions", "-j", "1"]),
    ]
    nnunet_vars = {k: v for k, v in trained_model.env.items() if k.startswith("nnUNet")}
    for module, args in steps:
        proc = run_module(module, *args, "--naming", naming, env=env | nnunet_vars)
        assert proc.returncode == 0, (module, proc.stderr[-2000:])
    raw, deriv = validate(ds)
    assert raw == [], summary(raw)
    expected = {"/derivatives/labels/", "/derivatives/reg-labels/", "/derivatives/cropped/",
                "/derivatives/cropped-ct/", *[f"/derivatives/reg-{m}/" for m in OTHER_METHODS],
                "/derivatives/predictions/", "/derivatives/ground_truth/"}
    assert expected <= set(deriv)
    if naming == "bids":
        # validated from the raw root (-r) the validator ignores a derivative's own .bidsignore,
        # so the CT crops count there only when each folder is validated on its own (below)
        nested = {k: v for k, v in deriv.items() if k != "/derivatives/cropped-ct/"}
        assert all(v == [] for v in nested.values()), {k: summary(v) for k, v in deriv.items()}
        assert {e["code"] for e in deriv["/derivatives/cropped-ct/"]} <= {"NOT_INCLUDED"}
        # each folder as a dataset of its own: there the validator reads its .bidsignore (CT)
        for folder in sorted((ds / "derivatives").iterdir()):
            alone = validate(folder)[0]
            assert alone == [], (folder.name, summary(alone))
        # no transform file (BIDS has none); the rigid transform is in the sidecar
        assert not list((ds / "derivatives" / "reg-labels").rglob("*_xfm.txt"))
        side = json.loads(next((ds / "derivatives" / "reg-labels").rglob("*_mask.json")).read_text(encoding="utf-8"))
        assert side["GeneratedBy"][0]["Transform"]["Parameters"]
    else:
        assert list((ds / "derivatives" / "reg-labels").rglob("*_xfm.txt"))
    bids = pytest.importorskip("bids")
    layout = bids.BIDSLayout(str(ds), derivatives=True, validate=False)
    for name in ("labels", "reg-labels", "cropped", "predictions"):
        files = layout.derivatives[f"derivatives/{name}"].get(extension=".nii.gz")
        assert files, name


def test_entity_order_is_the_installed_bids_schema():
    schema = pytest.importorskip("bidsschematools.schema").load_schema()
    from totalseg_bids.core.bids import ENTITY_ORDER

    assert tuple(schema.objects.entities[e]["name"] for e in schema.rules.entities) == ENTITY_ORDER


def test_schema_entities_and_plus_values_parse():
    from totalseg_bids.core.bids import BidsName, format_entities

    assert BidsName.parse("sub-1_acq-6p+s2_T2w.nii").get("acq") == "6p+s2"
    official = "sub-01_space-MNIInfant+1_atlas-Schaefer2018_desc-x_dseg.nii.gz"
    name = BidsName.parse(official)
    assert name.filename == official and name.get("atlas") == "Schaefer2018"
    assert format_entities({"desc": "x", "atlas": "A", "scale": "2", "seg": "s", "sub": "01",
                            "tpl": "T", "cohort": "1"}) == "sub-01_tpl-T_cohort-1_atlas-A_seg-s_scale-2_desc-x"
    assert BidsName.parse("sub-01_acq-a+b_T1w.nii.gz").with_entities(atlas="A", ses="2").filename == (
        "sub-01_ses-2_acq-a+b_atlas-A_T1w.nii.gz")
