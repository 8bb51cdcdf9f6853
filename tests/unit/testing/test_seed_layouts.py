"""The seed workflows' publisher layouts and what reads them.

``phantoms --layout glands|clotseg|ctich|ctich-nifti|finding-lungs`` write the files as each
publisher ships them; ``bidsify --source ctich|finding-lungs|clotseg`` (and ``dicom --combine``)
read them back to the phantom's truth; ``pattern`` learns masks drawn on some slices only and
lossy masks; and the stage options the recipes use (``slices --pad-to``, ``stats --slices``,
``init_data_config --channels``, ``export``'s counts per split). Bad input per layout: one line
naming the file, nothing written, the source untouched. Everything runs in-process.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from support import tree_digest

from totalseg_bids.bidsify import main as bidsify_main
from totalseg_bids.testing.layouts import write_layout


def run(main, argv, capsys) -> tuple[int, str, list[dict]]:
    """``main(argv)`` in-process: exit code, stderr and the JSON records of stdout."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, err, [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def one_error(err: str, *needles: str) -> str:
    """The CLI contract: exactly one error line, no traceback, naming ``needles``."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if ": error: " in line]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def layouts(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("seed_layouts")
    sizes = {"ctich": 2, "ctich-nifti": 2, "finding-lungs": 1, "clotseg": 3, "glands": 2}
    return {name: write_layout(name, root / name, n) for name, n in sizes.items()}


def bidsify(source: str, src: Path, out: Path, capsys, *extra) -> tuple[str, list[dict]]:
    code, err, recs = run(bidsify_main, ["--source", source, "--in", src, "--out", out, "-j", "1", *extra], capsys)
    assert code == 0, err
    return err, recs


# --------------------------------------------------------------------------- the layouts
def test_ctich_layout_masks_only_on_positive_slices(layouts):
    from totalseg_bids.testing.layouts.ctich import patient_scan

    root = layouts["ctich"]
    with open(root / "hemorrhage_diagnosis.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0])[:2] == ["PatientNumber", "SliceNumber"] and "Fracture_Yes_No" in rows[0]
    for i in range(2):
        folder, mask = root / "Patients_CT" / f"{49 + i:03d}", patient_scan(i, 0)[1]
        assert len(list((folder / "bone").glob("*.jpg"))) == mask.shape[2]
        drawn = sorted(int(p.name.split("_")[0]) for p in (folder / "brain").glob("*_HGE_Seg.jpg"))
        assert drawn == [k + 1 for k in range(mask.shape[2]) if mask[:, :, k].any()]
        assert drawn == [int(r["SliceNumber"]) for r in rows
                         if int(r["PatientNumber"]) == 49 + i and r["No_Hemorrhage"] == "0"]
    jpg = np.asarray(Image.open(next((root / "Patients_CT").glob("*/brain/*_HGE_Seg.jpg"))))
    assert ((jpg > 0) & (jpg < 255)).any()  # lossy: near, not at, 0 and 255
    nifti = layouts["ctich-nifti"]
    assert sorted(p.name for p in (nifti / "ct_scans").iterdir()) == ["049.nii", "050.nii"]
    assert (nifti / "masks" / "049.nii").is_file() and (nifti / "hemorrhage_diagnosis_raw_ct.csv").is_file()


def test_lung_clot_and_gland_layouts(layouts):
    import pydicom
    import tifffile

    lungs = layouts["finding-lungs"]
    names = sorted(p.name for p in (lungs / "2d_images").iterdir())
    assert names == sorted(p.name for p in (lungs / "2d_masks").iterdir()) and len(names) == 5
    assert all(n.startswith("ID_") and "_Z_" in n for n in names)
    assert set(np.unique(tifffile.imread(lungs / "2d_masks" / names[0])).tolist()) == {0, 255}
    assert tifffile.imread(lungs / "2d_images" / names[0]).dtype == np.int16
    assert sorted(p.name for p in (lungs / "3d_images").iterdir()) == ["IMG_0002.nii.gz", "MASK_0002.nii.gz"]
    clots = layouts["clotseg"]
    cta = np.load(clots / "DL_vol_files" / "binary" / "CS1_CTA_Binary.npy")
    ncct = np.load(clots / "DL_vol_files" / "binary" / "CS1_NCCT_Reg_Binary.npy")
    seg = np.load(clots / "DL_seg_files" / "binary" / "CS1_seg_corrected_binary.npy")
    assert cta.shape == ncct.shape == seg.shape and cta.ndim == 3 and set(np.unique(seg).tolist()) == {0, 1}
    assert cta[seg == 1].mean() < ncct[seg == 1].mean() + 20 < cta.max()  # a filling defect on the CTA
    glands = layouts["glands"] / "p001_psma"
    rs = pydicom.dcmread(glands / "RTSTRUCT" / "RS1.dcm")
    assert [r.ROIName for r in rs.StructureSetROISequence][:2] == ["Parotid_L", "Parotid_R"]
    assert len(list((glands / "CT").iterdir())) > 100  # the whole body, head to pelvis


# --------------------------------------------------------------------------- the sources
def test_ctich_jpg_masks_on_their_slices_thresholded(layouts, tmp_path, capsys):
    from totalseg_bids.testing.layouts.ctich import patient_scan

    before = tree_digest(layouts["ctich"])
    out = tmp_path / "bids"
    err, recs = bidsify("ctich", layouts["ctich"], out, capsys, "--spacing", "0.4", "0.4", "5")
    assert tree_digest(layouts["ctich"]) == before
    for i, sub in enumerate(("049", "050")):
        truth = patient_scan(i, 0)[1]
        lab = out / "derivatives/labels" / f"sub-{sub}" / "anat" / f"sub-{sub}_acq-brain_CT_label-hemorrhage_seg.nii.gz"
        assert np.array_equal(np.asarray(nib.load(lab).dataobj), truth)  # the no-hemorrhage patient: empty
        brain = nib.load(out / f"sub-{sub}" / "anat" / f"sub-{sub}_acq-brain_CT.nii.gz")
        bone = nib.load(out / f"sub-{sub}" / "anat" / f"sub-{sub}_acq-bone_CT.nii.gz")
        assert brain.shape == bone.shape == truth.shape and np.array_equal(brain.affine, bone.affine)
        assert brain.get_data_dtype() == np.uint8
    assert "between the two extremes" in err and "--mask-threshold" in err
    warned = [r for r in recs if r.get("warnings")]
    assert [Path(r["path"]).name for r in warned] == ["sub-049_acq-brain_CT_label-hemorrhage_seg.nii.gz"]
    table = (out / "derivatives/labels/hemorrhage_diagnosis.tsv").read_text().splitlines()
    assert table[0].split("\t")[:3] == ["participant_id", "slice_number", "slice_index"]
    assert "hemorrhage_diagnosis.tsv" in (out / "derivatives/labels/.bidsignore").read_text()
    assert (out / "participants.tsv").read_text().splitlines()[1].split("\t") == ["sub-049", "049", "20", "F"]
    _, again = bidsify("ctich", layouts["ctich"], out, capsys, "--spacing", "0.4", "0.4", "5")
    assert {r["status"] for r in again if r["kind"] != "dataset"} == {"skipped"}


def test_ctich_nifti_release(layouts, tmp_path, capsys):
    from totalseg_bids.testing.layouts.ctich import patient_scan

    out = tmp_path / "bids"
    bidsify("ctich", layouts["ctich-nifti"], out, capsys)
    ct = nib.load(out / "sub-049" / "anat" / "sub-049_CT.nii.gz")
    mask = nib.load(out / "derivatives/labels/sub-049/anat/sub-049_CT_label-hemorrhage_seg.nii.gz")
    assert np.array_equal(np.asarray(mask.dataobj), patient_scan(0, 0)[1])
    assert np.array_equal(np.asarray(ct.dataobj), patient_scan(0, 0)[0])


def test_finding_lungs_slices_keep_their_z(layouts, tmp_path, capsys):
    import tifffile

    out = tmp_path / "bids"
    bidsify("finding-lungs", layouts["finding-lungs"], out, capsys, "--spacing", "0.7", "0.7", "2.5")
    for tif in sorted((layouts["finding-lungs"] / "2d_images").iterdir()):
        sid, z = tif.stem.split("_")[1], int(tif.stem.split("_")[3])
        stem = f"sub-ID{sid}_chunk-{z}_CT"
        img = nib.load(out / f"sub-ID{sid}" / "anat" / f"{stem}.nii.gz")
        assert img.shape == (64, 64, 1) and img.affine[2, 3] == pytest.approx(2.5 * z)
        assert np.array_equal(np.asarray(img.dataobj)[:, :, 0].T, tifffile.imread(tif))
        assert json.loads((out / f"sub-ID{sid}" / "anat" / f"{stem}.json").read_text())["SliceIndex"] == z
        mask = nib.load(out / "derivatives/labels" / f"sub-ID{sid}" / "anat" / f"{stem}_label-lungs_seg.nii.gz")
        expected = tifffile.imread(layouts["finding-lungs"] / "2d_masks" / tif.name) == 255
        assert np.array_equal(np.asarray(mask.dataobj)[:, :, 0].T, expected.astype(np.uint8))
    vol = out / "derivatives/labels/sub-IMG0002/anat/sub-IMG0002_CT_label-lungs_seg.nii.gz"
    assert nib.load(vol).shape == (64, 64, 24)


def test_clotseg_two_channels_and_back_to_the_publishers_names(layouts, tmp_path, capsys):
    """bidsify then ``export --npy-names clot`` gives the publisher's files back, array for array."""
    from totalseg_bids.export import main as export_main
    from totalseg_bids.init_data_config import main as config_main

    out = tmp_path / "bids"
    bidsify("clotseg", layouts["clotseg"], out, capsys, "--spacing", "2", "2", "2")
    cta = nib.load(out / "sub-CS1" / "anat" / "sub-CS1_ce-contrast_CT.nii.gz")
    ncct = nib.load(out / "sub-CS1" / "anat" / "sub-CS1_CT.nii.gz")
    assert np.array_equal(cta.affine, ncct.affine) and cta.affine[0, 0] == 2.0
    labels = sorted(out.glob("derivatives/labels/*/anat/*_label-clot_seg.nii.gz"))
    (tmp_path / "clots.txt").write_text("\n".join(map(str, labels)) + "\n")
    code, err, _ = run(config_main, ["--txt", tmp_path / "clots.txt", "--type", "LABEL", "--channels",
                                     "ce-contrast_CT", "CT", "--split-validation", "0", "--split-test", "0"], capsys)
    assert code == 0, err
    cfg = json.loads((tmp_path / "clots.json").read_text())
    assert [len(e["IMAGE"]) for e in cfg["TRAINING"]] == [2, 2, 2]
    code, err, _ = run(export_main, ["--config", tmp_path / "clots.json", "--npy-names", "clot", "--out",
                                     tmp_path / "npy", "-j", "1"], capsys)
    assert code == 0, err
    assert "Training data: 6 images, 3 masks" in err
    src = layouts["clotseg"]
    for name in ("CS2_CTA_Binary", "CS2_NCCT_Reg_Binary"):
        assert np.array_equal(np.load(tmp_path / "npy" / "train" / f"{name}.npy"),
                              np.load(src / "DL_vol_files" / "binary" / f"{name}.npy"))
    assert np.array_equal(np.load(tmp_path / "npy" / "train" / "CS2_seg_corrected_binary.npy"),
                          np.load(src / "DL_seg_files" / "binary" / "CS2_seg_corrected_binary.npy"))


def test_rtstruct_rois_combined_into_one_label_map(layouts, tmp_path, capsys):
    from totalseg_bids.testing.layouts.glands import body_ct

    out = tmp_path / "bids"
    classes = ["lacrimalL", "lacrimalR", "parotidL", "parotidR", "submandibularL", "submandibularR"]
    bidsify("dicom", layouts["glands"], out, capsys, "--combine", "glands", "--classes", *classes)
    assert (out / "derivatives/labels/sub-p002/anat/sub-p002_CT_label-glands_dseg.nii.gz").is_file()  # a set each
    dseg = out / "derivatives/labels/sub-p001/anat/sub-p001_CT_label-glands_dseg.nii.gz"
    rows = (dseg.parent / "sub-p001_CT_label-glands_dseg.tsv").read_text().splitlines()
    assert [r.split("\t")[1] for r in rows[1:]] == classes  # the order asked for
    got = np.bincount(np.asarray(nib.load(dseg).dataobj).ravel(), minlength=7)
    truth = np.bincount(body_ct(0, 0)[1].ravel(), minlength=7)  # 1 parotidL ... 6 lacrimalR
    assert got.tolist() == [truth[0], truth[5], truth[6], truth[1], truth[2], truth[3], truth[4]]


# --------------------------------------------------------------------------- pattern
def _png(path: Path, data: np.ndarray, fmt: str = "PNG") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(data.astype(np.uint8)).save(path, format=fmt, **({"quality": 70} if fmt == "JPEG" else {}))


def test_pattern_mask_on_some_slices_and_jpeg_threshold(tmp_path, capsys):
    rng = np.random.default_rng(0)
    truth = np.zeros((6, 20, 24), np.uint8)
    truth[2, 5:12, 6:14] = truth[3, 4:13, 5:15] = 1
    for k in range(6):
        _png(tmp_path / "src" / "case1" / "image" / f"{k + 1}.png", rng.integers(0, 200, (20, 24)))
        if truth[k].any():
            _png(tmp_path / "src" / "case1" / "mask" / f"{k + 1}.jpg", truth[k] * 255, "JPEG")
    args = ["--source", "pattern", "--in", tmp_path / "src", "--suffix", "CT", "--spacing", "1", "1", "2",
            "--pattern", r"case(?P<sub>\d+)/image/(?P<slice>\d+)\.png",
            "--label-pattern", r"case(?P<sub>\d+)/mask/(?P<slice>\d+)\.jpg", "--label-name", "lesion", "-j", "1"]
    code, err, _ = run(bidsify_main, [*args, "--out", tmp_path / "a"], capsys)
    assert code == 0, err
    mask = np.asarray(nib.load(tmp_path / "a/derivatives/labels/sub-1/anat/sub-1_CT_label-lesion_seg.nii.gz").dataobj)
    assert mask.shape == (24, 20, 6)
    assert np.array_equal(mask.transpose(2, 1, 0), truth)  # empty slices where no file, JPEG made exact
    assert "thresholded at 127.5" in err
    code, err, _ = run(bidsify_main, [*args, "--out", tmp_path / "b", "--mask-threshold", "254.5"], capsys)
    strict = np.asarray(nib.load(tmp_path / "b/derivatives/labels/sub-1/anat/sub-1_CT_label-lesion_seg.nii.gz").dataobj)
    assert code == 0 and 0 < strict.sum() < mask.sum()


# --------------------------------------------------------------------------- bad input, per layout
def _rename(old: str, new: str):
    return lambda src: (src / old).rename(src / new)


def _copy(old: str, new: str):
    return lambda src: shutil.copyfile(src / old, src / new)


def _resize_jpg(rel: str):
    def apply(src: Path) -> None:
        _png(src / rel, np.zeros((60, 64)), "JPEG")
    return apply


def _ncct_of_another_shape(src: Path) -> None:
    np.save(src / "DL_vol_files/binary/CS1_NCCT_Reg_Binary.npy", np.zeros((64, 48, 20), np.int16))


B = "Patients_CT/049/brain"
BAD = [
    ("ctich mask without its image", "ctich", ["--spacing", "1", "1", "5"],
     _copy(f"{B}/14_HGE_Seg.jpg", f"{B}/99_HGE_Seg.jpg"), ("99_HGE_Seg.jpg", "mask on no image", "slice 99"), 1),
    ("ctich slice index not a number", "ctich", ["--spacing", "1", "1", "5"], _rename(f"{B}/3.jpg", f"{B}/3a.jpg"),
     ("3a.jpg", "slice index '3a' is not a number"), 1),
    ("ctich slice of another size", "ctich", ["--spacing", "1", "1", "5"], _resize_jpg(f"{B}/5.jpg"),
     ("brain/5.jpg", "slice size 64x60 differs"), 1),
    ("ctich bone window missing", "ctich", ["--spacing", "1", "1", "5"],
     lambda src: (src / "Patients_CT/050/bone/7.jpg").unlink(), ("050/brain/7.jpg", "no bone-window picture"), 1),
    ("ctich jpgs without --spacing", "ctich", [], None, ("Patients_CT", "no pixel size", "--spacing"), 2),
    ("ctich NIfTI mask without its CT", "ctich-nifti", [], _copy("masks/049.nii", "masks/077.nii"),
     ("077.nii", "mask on no image"), 1),
    ("lungs mask without its image", "finding-lungs", ["--spacing", "1", "1", "2.5"],
     lambda src: shutil.copyfile(next((src / "2d_masks").iterdir()), src / "2d_masks" / "ID_0099_Z_0100.tif"),
     ("ID_0099_Z_0100.tif", "mask on no image"), 1),
    ("lungs Z not a number", "finding-lungs", ["--spacing", "1", "1", "2.5"],
     lambda src: [next((src / d).glob("ID_0000_*")).rename(src / d / "ID_0000_Z_01x2.tif")
                  for d in ("2d_masks", "2d_images")],
     ("ID_0000_Z_01x2.tif", "slice index '01x2' is not a number"), 1),
    ("lungs 3D mask without its image", "finding-lungs", ["--spacing", "1", "1", "2.5"],
     _copy("3d_images/MASK_0002.nii.gz", "3d_images/MASK_0005.nii.gz"), ("MASK_0005.nii.gz", "mask on no image"), 1),
    ("clotseg channel missing for one case", "clotseg", ["--spacing", "2", "2", "2"],
     lambda src: (src / "DL_vol_files/binary/CS2_NCCT_Reg_Binary.npy").unlink(),
     ("CS2_CTA_Binary.npy", "no NCCT_Reg channel", "CS2_NCCT_Reg_Binary.npy"), 1),
    ("clotseg channel of another shape", "clotseg", ["--spacing", "2", "2", "2"], _ncct_of_another_shape,
     ("CS1_NCCT_Reg_Binary.npy", "differs from the CTA's"), 1),
    ("clotseg mask without its volumes", "clotseg", ["--spacing", "2", "2", "2"],
     _copy("DL_seg_files/binary/CS1_seg_corrected_binary.npy", "DL_seg_files/binary/CS9_seg_corrected_binary.npy"),
     ("CS9_seg_corrected_binary.npy", "mask on no image"), 1),
]


@pytest.mark.parametrize("case,layout,flags,breaker,needles,code", BAD, ids=[row[0] for row in BAD])
def test_bad_input_one_line_nothing_written(layouts, tmp_path, capsys, case, layout, flags, breaker, needles, code):
    src = tmp_path / "src"
    shutil.copytree(layouts[layout], src)
    if breaker is not None:
        breaker(src)
    before = tree_digest(src)
    source = "ctich" if layout.startswith("ctich") else layout
    got, err, recs = run(bidsify_main, ["--source", source, "--in", src, "--out", tmp_path / "out", "-j", "1",
                                        *flags], capsys)
    assert got == code
    one_error(err, *needles)
    assert not recs and not (tmp_path / "out").exists() and tree_digest(src) == before


def test_pattern_bad_stacks(tmp_path, capsys):
    """A mask slice without its image slice, a slice number that is not a number, a slice of another
    size in a stack: one line naming the file, nothing written."""
    for k in range(3):
        _png(tmp_path / "s" / "c1" / "img" / f"{k}.png", np.zeros((8, 9)))
    _png(tmp_path / "s" / "c1" / "msk" / "7.png", np.zeros((8, 9)))
    args = ["--source", "pattern", "--in", tmp_path / "s", "--out", tmp_path / "o", "--suffix", "CT", "--spacing",
            "1", "1", "1", "--pattern", r"c(?P<sub>\d)/img/(?P<slice>[^/.]+)\.png", "-j", "1"]
    label = ["--label-pattern", r"c(?P<sub>\d)/msk/(?P<slice>\d+)\.png"]
    code, err, _ = run(bidsify_main, [*args, *label], capsys)
    assert code == 1
    one_error(err, "msk/7.png", "mask on no image", "slice 7")
    (tmp_path / "s" / "c1" / "msk" / "7.png").unlink()
    _png(tmp_path / "s" / "c1" / "img" / "x2.png", np.zeros((8, 9)))
    code, err, _ = run(bidsify_main, args, capsys)
    assert code == 1
    one_error(err, "img/x2.png", "slice index 'x2' is not a number")
    (tmp_path / "s" / "c1" / "img" / "x2.png").unlink()
    _png(tmp_path / "s" / "c1" / "img" / "1.png", np.zeros((8, 10)))
    code, err, _ = run(bidsify_main, args, capsys)
    assert code == 1
    one_error(err, "img/1.png", "slice size 10x8 differs from the stack's 9x8")
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------- the stage options of the recipes
@pytest.fixture
def clot_config(layouts, tmp_path, capsys) -> Path:
    from totalseg_bids.init_data_config import main as config_main

    out = tmp_path / "bids"
    bidsify("clotseg", layouts["clotseg"], out, capsys, "--spacing", "2", "2", "2")
    labels = sorted(out.glob("derivatives/labels/*/anat/*_label-clot_seg.nii.gz"))
    (tmp_path / "clots.txt").write_text("\n".join(map(str, labels)) + "\n")
    code, err, _ = run(config_main, ["--txt", tmp_path / "clots.txt", "--type", "LABEL", "--channels",
                                     "ce-contrast_CT", "CT", "--split-validation", "0.34", "--split-test", "0.33"],
                       capsys)
    assert code == 0, err
    return tmp_path / "clots.json"


def test_slices_pad_to_and_the_class_table_of_an_export(clot_config, tmp_path, capsys):
    from totalseg_bids.slices import main as slices_main
    from totalseg_bids.stats import main as stats_main

    common = ["--config", clot_config, "--axis", "axial", "--window", "soft", "brain", "-j", "1"]
    code, err, _ = run(slices_main, [*common, "--out", tmp_path / "plain"], capsys)
    assert code == 0, err
    code, err, _ = run(slices_main, [*common, "--out", tmp_path / "padded", "--pad-to", "256", "256"], capsys)
    assert code == 0, err
    name = sorted((tmp_path / "plain" / "masks" / "train").iterdir())[12].name
    for kind in ("images", "masks"):
        small = np.asarray(Image.open(tmp_path / "plain" / kind / "train" / name))
        big = np.asarray(Image.open(tmp_path / "padded" / kind / "train" / name))
        top, left = (256 - small.shape[0]) // 2, (256 - small.shape[1]) // 2
        assert big.shape[:2] == (256, 256) and np.array_equal(big[top:top + small.shape[0], left:left + small.shape[1]],
                                                              small)
        assert big.sum() == small.sum()
    code, err, _ = run(slices_main, [*common, "--out", tmp_path / "tight", "--pad-to", "40", "256"], capsys)
    assert code == 1
    one_error(err, "sub-CS", "do not fit --pad-to 40 256", "3 of 3 cases")
    assert not (tmp_path / "tight" / "images").exists()
    # stats --slices: every slice an image; the figures against the masks themselves
    code, err, recs = run(stats_main, ["--slices", tmp_path / "padded", "-o", tmp_path / "classes.md"], capsys)
    assert code == 0, err
    masks = [np.asarray(Image.open(p)) for p in sorted((tmp_path / "padded" / "masks").glob("*/*.png"))]
    clot = sum(int(m.sum()) for m in masks)
    table = (tmp_path / "classes.md").read_text()
    assert f"| clot | {100 * clot / sum(m.size for m in masks):.2f} | {sum(bool(m.any()) for m in masks)} |" in table
    assert recs[0]["datasets"]["padded"]["all"]["images"] == len(masks)


def test_channels_config_errors(clot_config, tmp_path, capsys):
    from totalseg_bids.init_data_config import main as config_main

    txt = tmp_path / "clots.txt"
    first = Path(txt.read_text().split()[0])
    ncct = first.parents[4] / first.parts[-3] / "anat" / f"{first.parts[-3]}_CT.nii.gz"
    ncct.rename(ncct.with_name("moved.nii.gz"))
    code, err, _ = run(config_main, ["--txt", txt, "--type", "LABEL", "--channels", "ce-contrast_CT", "CT",
                                     "-o", tmp_path / "x.json"], capsys)
    assert code == 1 and not (tmp_path / "x.json").exists()
    one_error(err, f"{ncct.name}", "channel missing")
    code, err, _ = run(config_main, ["--txt", txt, "--type", "LABEL", "--channels", "CT", "-o", tmp_path / "x.json"],
                       capsys)
    assert code == 1
    one_error(err, "is not one of --channels CT")
    code, err, _ = run(config_main, ["--txt", txt, "--type", "LABEL", "--channels", "sub-1_CT"], capsys)
    assert code == 2
    one_error(err, "bad --channels entry 'sub-1_CT'")


def test_tiny_weights_of_another_recipe_are_rebuilt(tmp_path, monkeypatch):
    """A build records the recipe of its network; one by an older recipe (without the skull) is not reused."""
    from totalseg_bids.testing import tiny_network, tiny_totalseg
    from totalseg_bids.totalsegmentator import STAMP

    monkeypatch.setattr(tiny_totalseg, "version", lambda: "2.x")
    stamp = {"totalsegmentator": "2.x", "tasks": ["total", "total_mr"],
             "recipe": "tiny_network v1: PlainConvUNet 8-64 features at 3 mm, rendered phantom CT/T1w/T2w patches"}
    (tmp_path / STAMP).write_text(json.dumps(stamp))
    assert not tiny_totalseg.is_built(tmp_path, ["total"])
    stamp["recipe"] = tiny_network.RECIPE
    (tmp_path / STAMP).write_text(json.dumps(stamp))
    assert tiny_totalseg.is_built(tmp_path, ["total"]) and "skull" in tiny_network.CHANNELS
