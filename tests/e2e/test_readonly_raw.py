"""Raw data is never modified (docs/conventions.md section 1).

The raw phantom tree is made read-only (``chmod -R a-w`` on everything but
``derivatives/``, which stays writable), then the pipeline runs as a user would:
segment_ct --from-existing -> register -> init_data_config ->
convert_config_to_nnunet -> crop. As root, permission bits stop nothing, so the
test relies on its second check, done in every case: the sha256, mode and mtime
of every raw file and folder are identical before and after, and nothing was
created outside ``derivatives/`` and the chosen output folders.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from support import run_module


def raw_state(ds: Path) -> dict[str, tuple]:
    """Every path of the raw tree outside ``derivatives/``: content hash, mode, mtime."""
    state = {}
    for p in [ds, *ds.rglob("*")]:
        rel = p.relative_to(ds)
        if rel.parts and rel.parts[0] == "derivatives":
            continue
        st = p.lstat()
        digest = (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() and not p.is_symlink()
                  else (os.readlink(p) if p.is_symlink() else "dir"))
        # a folder's mtime changes when an entry is added or removed in it
        state[rel.as_posix()] = (digest, stat.S_IMODE(st.st_mode), st.st_mtime_ns)
    return state


def set_raw_writable(ds: Path, writable: bool) -> None:
    for p in [ds, *ds.rglob("*")]:
        rel = p.relative_to(ds)
        if (rel.parts and rel.parts[0] == "derivatives") or p.is_symlink():
            continue
        mode = stat.S_IMODE(p.stat().st_mode)
        p.chmod(mode | stat.S_IWUSR if writable else mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def check(proc, what: str) -> None:
    assert proc.returncode == 0, f"{what}: {proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr


def test_pipeline_on_read_only_raw_tree(phantom_ds, tmp_path):
    ds = phantom_ds
    existing = tmp_path / "ts"
    for gt in (ds / "derivatives" / "ground_truth").rglob("*_CT_label-sacrum_seg.nii.gz"):
        folder = existing / gt.name.replace("_label-sacrum_seg.nii.gz", "")
        folder.mkdir(parents=True)
        shutil.copyfile(gt, folder / "sacrum.nii.gz")
    raw_nnunet = tmp_path / "nnUNet_raw"
    raw_nnunet.mkdir()
    config = tmp_path / "configs" / "sacrum.json"
    before = raw_state(ds)
    set_raw_writable(ds, False)
    try:
        if os.geteuid() != 0:  # the permission bits really bite: prove it
            with pytest.raises(PermissionError):
                (ds / "sub-01" / "anat" / "probe.txt").write_text("x")
        check(run_module("segment_ct", "--path-img", ds, "--from-existing", existing,
                         "--path-out", ds / "derivatives" / "ts-labels", "-j", "1"), "segment_ct")
        check(run_module("register", "--path-img", ds, "--path-label", ds / "derivatives" / "ts-labels",
                         "-j", "1"), "register")
        check(run_module("init_data_config", "--bids-dir", ds, "--label-dir", "reg-labels",
                         "--label-suffix", "_label-sacrum_seg", "--type", "LABEL", "-o", config,
                         "--split-validation", "0.34", "--split-test", "0.34"), "init_data_config")
        check(run_module("convert_config_to_nnunet", "--config", config, "--path-out", raw_nnunet,
                         "-dnum", "12", "-j", "1"), "convert_config_to_nnunet")
        check(run_module("crop", "--path-img", ds, "--contrasts", "T2w", "--roi-dir", "reg-labels",
                         "--roi-label", "sacrum", "-j", "1"), "crop")
    finally:
        set_raw_writable(ds, True)
    after = raw_state(ds)
    for rel in set(before) | set(after):
        if rel in before and rel in after and before[rel][1] != after[rel][1]:
            after[rel] = (after[rel][0], before[rel][1], after[rel][2])  # our own chmod round trip
    created = sorted(set(after) - set(before))
    assert not created, f"created in the raw tree: {created}"
    changed = sorted(rel for rel in before if after.get(rel) != before[rel])
    assert not changed, f"modified in the raw tree: {changed}"
    # the pipeline did produce its outputs
    assert len(list((ds / "derivatives" / "reg-labels").rglob("*_seg.nii.gz"))) == 8
    assert (raw_nnunet / "Dataset012_SacrumDataset" / "dataset.json").exists()
    crops = list((ds / "derivatives" / "cropped").rglob("*_T2w.nii.gz"))
    assert len(crops) == 4
    for p in crops:
        np.asanyarray(nib.load(str(p)).dataobj)
    json.loads((ds / "derivatives" / "cropped" / "dataset_description.json").read_text(encoding="utf-8"))
