"""The converter's plain path (headers read without nibabel) gives the same record as the nibabel path."""

from __future__ import annotations

import subprocess
import sys

import nibabel as nib
import numpy as np

from totalseg_bids.convert_config_to_nnunet import CaseTask, checked_case, plain_case


def _pair(root, affine_label=None, label_values=(0, 1)):
    aff = np.diag([0.8, 0.8, 3.0, 1.0])
    aff[:3, 3] = [-100, -90, 20]
    img = nib.Nifti1Image(np.arange(8 * 9 * 5, dtype=np.int16).reshape(8, 9, 5), aff)
    lab = np.zeros((8, 9, 5), np.uint8)
    lab[2:5, 3:6, 1:4] = label_values[-1]
    label = nib.Nifti1Image(lab, aff if affine_label is None else affine_label)
    for im in (img, label):
        im.set_qform(im.affine, 1)
        im.set_sform(im.affine, 1)
    root.mkdir(parents=True)
    img.to_filename(root / "sub-01_T2w.nii.gz")
    label.to_filename(root / "sub-01_T2w_seg.nii.gz")
    return root / "sub-01_T2w.nii.gz", root / "sub-01_T2w_seg.nii.gz"


def _task(tmp_path, tag, image, label, link="symlink"):
    work = tmp_path / tag
    for sub in ("imagesTr", "labelsTr"):
        (work / sub).mkdir(parents=True)
    return CaseTask("Ds_x_sub-01_T2w", "TRAINING", (image,), label, work, link)


def test_plain_case_matches_the_checked_path(tmp_path):
    image, label = _pair(tmp_path / "in")
    for link in ("symlink", "hardlink", "copy"):
        plain = plain_case(_task(tmp_path, f"a-{link}", image, label, link))
        checked = checked_case(_task(tmp_path, f"b-{link}", image, label, link))
        assert plain == checked
        for rel in (*plain.nnunet_images, plain.nnunet_label):
            a, b = tmp_path / f"a-{link}" / rel, tmp_path / f"b-{link}" / rel
            assert a.is_symlink() == b.is_symlink() and a.read_bytes() == b.read_bytes()


def test_cases_needing_nibabel_are_left_to_it(tmp_path):
    shifted = np.diag([0.8, 0.8, 3.0, 1.0])
    image, label = _pair(tmp_path / "grid", affine_label=shifted)
    task = _task(tmp_path, "w1", image, label)
    assert plain_case(task) is None
    assert not any((task.work / "imagesTr").iterdir())  # nothing placed
    image, label = _pair(tmp_path / "values", label_values=(0, 7))
    assert plain_case(_task(tmp_path, "w2", image, label)) is None


def test_plain_case_does_not_import_nibabel(tmp_path):
    image, label = _pair(tmp_path / "in")
    work = tmp_path / "w"
    code = ("import sys; from pathlib import Path\n"
            "from totalseg_bids.convert_config_to_nnunet import CaseTask, convert_case\n"
            f"w = Path({str(work)!r}); [(w / s).mkdir(parents=True) for s in ('imagesTr', 'labelsTr')]\n"
            f"r = convert_case(CaseTask('c', 'TRAINING', (Path({str(image)!r}),), Path({str(label)!r}), w))\n"
            "print(r.actions, 'nibabel' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, encoding="utf-8", errors="replace")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[] False"
