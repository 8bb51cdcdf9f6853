"""The pybids queries of docs/conventions.md ("Querying with pybids"), run verbatim
on pipeline outputs in both namings: CT labels (segment_ct, NeuroPoly naming) and
labels transferred to the MRIs (register, BIDS naming)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import REPO, run_module

pytest.importorskip("bids", reason="the bids extra is part of the test install")


def documented_query() -> str:
    text = (REPO / "docs" / "conventions.md").read_text(encoding="utf-8")
    section = text.split("### Querying with pybids", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_documented_pybids_queries_on_pipeline_output(phantom_ds, tmp_path, monkeypatch):
    ds = tmp_path / "ds"
    phantom_ds.rename(ds)
    existing = tmp_path / "ts"
    for gt in sorted((ds / "derivatives" / "ground_truth").rglob("*_CT_label-sacrum_seg.nii.gz")):
        (existing / gt.name.replace("_label-sacrum_seg.nii.gz", "")).mkdir(parents=True)
        (existing / gt.name.replace("_label-sacrum_seg.nii.gz", "") / "sacrum.nii.gz").write_bytes(gt.read_bytes())
    proc = run_module("segment_ct", "--path-img", ds, "--from-existing", existing, "--overwrite", "-j", "1")
    assert proc.returncode == 0, proc.stderr
    proc = run_module("register", "--path-img", ds, "--naming", "bids", "-j", "1")
    assert proc.returncode == 0, proc.stderr
    proc = run_module("register", "--path-img", ds, "--path-out", ds / "derivatives" / "labels", "-j", "1")
    assert proc.returncode == 0, proc.stderr  # the MRI labels in NeuroPoly naming beside the CT labels

    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec(compile(documented_query(), "docs/conventions.md", "exec"), ns)  # noqa: S102 - the documented code

    mris = sorted(ds.glob("sub-*/**/anat/*_T1w.nii.gz"))
    masks = ns["masks"]
    assert sorted(Path(m.path).name for m in masks) == sorted(
        m.name.replace("_T1w.nii.gz", "_space-T1w_label-sacrum_mask.nii.gz") for m in mris)
    assert [Path(f.path).name for f in ns["t1w"]] and all(f.entities["suffix"] == "T1w" for f in ns["t1w"])
    # NeuroPoly naming: CT and MRI labels share their entities; the sidecar tells them apart
    segs = ns["segs"]
    n_images = len(list(ds.glob("sub-*/**/anat/*_CT.nii.gz"))) + len(list(ds.glob("sub-*/**/anat/*_T[12]w.nii.gz")))
    assert len(segs) == n_images  # the layout holds labels and reg-labels only, not ground_truth
    for seg in segs:
        image = ns["image_of"](seg)
        assert image is not None and Path(seg.filename).name.startswith(Path(image.filename).name[:-7] + "_label-")
    assert sorted(Path(s.path).name for s in ns["on_ct"]) == sorted(
        p.name.replace("_CT.nii.gz", "_CT_label-sacrum_seg.nii.gz") for p in ds.glob("sub-*/**/anat/*_CT.nii.gz"))
    assert all(u.startswith("bids:raw:") for u in ns["sources"])
