"""``.npy`` volumes with a geometry sidecar: NIfTI -> npy -> NIfTI keeps array and affine exactly."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from totalseg_bids.core.errors import InputError
from totalseg_bids.core.npy_volume import load_npy_volume, npy_to_nifti, save_npy_volume, sidecar_path


@pytest.mark.parametrize("dtype", ["int16", "uint8", "float32"])
def test_round_trip_reproduces_geometry(tmp_path, dtype):
    rng = np.random.default_rng(0)
    data = (rng.random((7, 5, 4)) * 100).astype(dtype)
    affine = np.array([[0.0, -0.8, 0.1, 12.5], [0.9, 0.0, 0.0, -3.0], [0.0, 0.05, 2.5, 40.0], [0, 0, 0, 1]])
    src = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), str(src))
    img = nib.load(str(src))
    npy = save_npy_volume(np.asanyarray(img.dataobj), img.affine, tmp_path / "CS1_CTA_Binary.npy", str(src))
    back = nib.load(str(npy_to_nifti(npy, tmp_path / "back.nii.gz")))
    assert np.array_equal(np.asanyarray(back.dataobj), np.asanyarray(img.dataobj))
    assert back.get_data_dtype() == img.get_data_dtype()
    assert np.array_equal(back.affine, img.affine)


def test_missing_sidecar_is_input_error(tmp_path):
    npy = save_npy_volume(np.zeros((2, 2, 2), np.uint8), np.eye(4), tmp_path / "m.npy")
    sidecar_path(npy).unlink()
    with pytest.raises(InputError, match="sidecar"):
        load_npy_volume(npy)


def test_export_config_and_import_back(phantom_template, tmp_path):
    import json

    from totalseg_bids import export

    gt = "ds/derivatives/ground_truth"
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"TYPE": "LABEL", "CONTRASTS": "", "DATASETS_PATH": str(phantom_template.parent),
                               "TRAINING": [{"IMAGE": "ds/sub-01/anat/sub-01_CT.nii.gz",
                                             "LABEL": f"{gt}/sub-01/anat/sub-01_CT_label-phantom_dseg.nii.gz"}]}))
    out = tmp_path / "npy"
    assert export.main(["--config", str(cfg), "--format", "npy", "--out", str(out), "-q", "-j", "1"]) == 0
    npys = sorted(out.rglob("*.npy"))
    assert [p.name for p in npys] == ["sub-01_CT.npy", "sub-01_CT_label-phantom_dseg.npy"]
    assert json.loads(sidecar_path(npys[0]).read_text(encoding="utf-8"))["source"].endswith("sub-01_CT.nii.gz")
    back = tmp_path / "nii"
    assert export.main(["--import", str(out), "--out", str(back), "-q", "-j", "1"]) == 0
    for npy, src in zip(npys, [phantom_template / "sub-01/anat/sub-01_CT.nii.gz",
                               phantom_template / "derivatives/ground_truth/sub-01/anat/"
                               "sub-01_CT_label-phantom_dseg.nii.gz"]):
        a, b = nib.load(str(src)), nib.load(str(back / "train" / (npy.stem + ".nii.gz")))
        assert np.array_equal(a.affine, b.affine) and a.shape == b.shape
        assert np.array_equal(np.asanyarray(a.dataobj), np.asanyarray(b.dataobj))


def test_clot_names_sidecar_and_exact_round_trip(tmp_path):
    """``--npy-names clot``: <case>_CTA_Binary, <case>_NCCT_Reg_Binary (the plain CT on the CTA's grid),
    <case>_seg_corrected_binary; the import gives back the NIfTI arrays and affines exactly."""
    import json

    from totalseg_bids import export
    from totalseg_bids.testing.phantoms import generate

    ds = generate(tmp_path / "ds", subjects=1, contrast_ct=True, ct_labels=False, ct_spacing=3.0, seed=2)
    anat, gt = ds / "sub-01" / "anat", ds / "derivatives" / "ground_truth" / "sub-01" / "anat"
    sources = [anat / "sub-01_ce-contrast_CT.nii.gz", anat / "sub-01_CT.nii.gz",
               gt / "sub-01_CT_label-phantom_dseg.nii.gz"]
    rel = [p.relative_to(ds.parent).as_posix() for p in sources]
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"TYPE": "LABEL", "CONTRASTS": "", "DATASETS_PATH": str(ds.parent),
                               "TESTING": [{"IMAGE": rel[:2], "LABEL": rel[2]}]}))
    out = tmp_path / "npy"
    assert export.main(["--config", str(cfg), "--format", "npy", "--npy-names", "clot", "--out", str(out), "-q"]) == 0
    names = ["01_CTA_Binary", "01_NCCT_Reg_Binary", "01_seg_corrected_binary"]
    assert sorted(p.stem for p in (out / "test").glob("*.npy")) == names
    back = tmp_path / "nii"
    assert export.main(["--import", str(out), "--out", str(back), "-q"]) == 0
    for name, src in zip(names, sources):
        meta = json.loads(sidecar_path(out / "test" / f"{name}.npy").read_text(encoding="utf-8"))
        assert meta["source"] == str(src) and meta["spacing"] == [3.0, 3.0, 3.0] and meta["axcodes"] == "RAS"
        a, b = nib.load(str(src)), nib.load(str(back / "test" / f"{name}.nii.gz"))
        assert np.array_equal(a.affine, b.affine) and a.get_data_dtype() == b.get_data_dtype()
        assert np.array_equal(np.asanyarray(a.dataobj), np.asanyarray(b.dataobj))


def test_one_unreadable_volume_fails_the_batch_after_the_others(phantom_ds, tmp_path, capsys):
    """Library: one BatchError naming the bad volume, ``.done`` holds the others' records and
    their files exist; the CLI prints the same records as JSON lines and exits 1."""
    import json

    from totalseg_bids import export
    from totalseg_bids.core.errors import BatchError

    gt = "ds/derivatives/ground_truth"
    bad = phantom_ds / "sub-01" / "anat" / "sub-01_CT.nii.gz"
    bad.unlink()
    bad.write_bytes(b"\x1f\x8b not a gzip stream")
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"TYPE": "LABEL", "CONTRASTS": "", "DATASETS_PATH": str(phantom_ds.parent),
                               "TRAINING": [{"IMAGE": "ds/sub-01/anat/sub-01_CT.nii.gz",
                                             "LABEL": f"{gt}/sub-01/anat/sub-01_CT_label-phantom_dseg.nii.gz"}]}))
    out = tmp_path / "npy"
    with pytest.raises(BatchError) as err:
        export.export_config(cfg, out, jobs=1)
    assert [key for key, _ in err.value.failures] == [str(bad)]
    assert [Path(r["path"]).name for r in err.value.done] == ["sub-01_CT_label-phantom_dseg.npy"]
    assert all(Path(r["path"]).is_file() and r["status"] == "written" for r in err.value.done)
    assert export.main(["--config", str(cfg), "--out", str(out), "-q", "-j", "1"]) == 1
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["stage"], r["status"], Path(r["path"]).name) for r in records] == [
        ("export", "skipped", "sub-01_CT_label-phantom_dseg.npy")]
