"""totalseg_bids.convert_config_to_nnunet: phantom configs -> nnU-Net raw datasets."""

from __future__ import annotations

import csv
import hashlib
import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from support import assert_one_line_error
from support.nnunet import DATASET_ID

from totalseg_bids.convert_config_to_nnunet import ConvertOptions, convert, read_mapping
from totalseg_bids.core.bids import BidsName
from totalseg_bids.core.errors import BatchError, InputError, OutputError, UsageError
from totalseg_bids.core.nifti import qform_sform_discrepancy

MODULE = "convert_config_to_nnunet"


def gt_labels(ds: Path) -> list[Path]:
    """MRI ground-truth sacrum masks, sorted."""
    return sorted(p for p in (ds / "derivatives" / "ground_truth").rglob("*_label-sacrum_seg.nii.gz")
                  if "_CT_" not in p.name)


def write_config(path: Path, ds: Path, training, validation=(), testing=(), type_="LABEL", **extra) -> Path:
    def rel(p):  # relative to DATASETS_PATH when inside it; absolute entries are valid too
        if isinstance(p, dict):
            return p
        return Path(p).relative_to(ds.parent).as_posix() if Path(p).is_relative_to(ds.parent) else str(p)
    cfg = {"TYPE": type_, "CONTRASTS": "t1_t2", "DATASETS_PATH": str(ds.parent),
           "TRAINING": [rel(p) for p in training], "VALIDATION": [rel(p) for p in validation],
           "TESTING": [rel(p) for p in testing], **extra}
    path.write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir()) if out.exists() else []


@pytest.fixture
def split_config(phantom_ds, tmp_path) -> Path:
    labels = gt_labels(phantom_ds)  # 4 sessions x (T1w, T2w) = 8 labels
    return write_config(tmp_path / "cfg.json", phantom_ds, labels[:4], labels[4:6], labels[6:])


def test_phantom_config_converts_with_links(split_config, phantom_ds, tmp_path):
    out = tmp_path / "raw"
    before = {p: digest(p) for p in gt_labels(phantom_ds)}
    res = convert(split_config, out, 300, jobs=1)
    folder = out / "Dataset300_SacrumDataset"
    assert res.folder == folder and res.num_training == 6 and res.num_testing == 2
    assert leftovers(out) == ["Dataset300_SacrumDataset"]
    ds_json = json.loads((folder / "dataset.json").read_text(encoding="utf-8"))
    assert ds_json["labels"] == {"background": 0, "sacrum": 1}
    assert ds_json["numTraining"] == 6 and ds_json["file_ending"] == ".nii.gz"
    assert ds_json["channel_names"] == {"0": "t1_t2"}  # MRI: never CT
    assert ds_json["overwrite_image_reader_writer"] == "SimpleITKIO"
    assert len(list((folder / "imagesTr").iterdir())) == 6 and len(list((folder / "labelsTr").iterdir())) == 6
    assert len(list((folder / "imagesTs").iterdir())) == 2 and len(list((folder / "labelsTs").iterdir())) == 2
    for f in (folder / "imagesTr").iterdir():
        assert f.is_symlink() and f.name.endswith("_0000.nii.gz")
    # ids are readable BIDS entities and never end like a channel index
    cid = next(r.case_id for r in res.records if "ses-02" in r.case_id and "T2w" in r.case_id)
    assert cid == "SacrumDataset_ds_sub-02_ses-02_acq-sag_T2w"
    assert before == {p: digest(p) for p in gt_labels(phantom_ds)}  # sources untouched


def test_split_file_matches_config_and_mapping_round_trips(split_config, tmp_path, monkeypatch):
    monkeypatch.setenv("nnUNet_preprocessed", str(tmp_path / "pre"))
    res = convert(split_config, tmp_path / "raw", 300, jobs=1)
    cfg = json.loads(split_config.read_text(encoding="utf-8"))
    base = Path(cfg["DATASETS_PATH"])
    splits = json.loads((res.folder / "splits_final.json").read_text(encoding="utf-8"))
    pre = json.loads((tmp_path / "pre" / res.folder.name / "splits_final.json").read_text(encoding="utf-8"))
    assert splits == pre and len(splits) == 2  # folds by subject: two subjects in TRAINING/VALIDATION
    mapping = read_mapping(res.folder)
    by_id = {m["case_id"]: m for m in mapping}
    trainable = [base / p for split in ("TRAINING", "VALIDATION") for p in cfg[split]]
    assert sorted(Path(by_id[c]["label"]) for f in splits for c in f["val"]) == sorted(trainable)
    testing = [m for m in mapping if m["split"] == "TESTING"]
    assert [Path(m["label"]) for m in testing] == [base / p for p in cfg["TESTING"]]
    for m in mapping:
        # the image is the label's BIDS image, and the nnU-Net files hold the same data
        label_name = BidsName.parse(m["label"])
        assert Path(m["images"][0]).name == label_name.source().filename
        assert (res.folder / m["nnunet_images"][0]).resolve() == Path(m["images"][0]).resolve()
        assert digest(res.folder / m["nnunet_label"]) == digest(Path(m["label"]))
    with open(res.folder / "case_mapping.tsv", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert [r["case_id"] for r in rows] == [m["case_id"] for m in mapping]
    assert {r["split"] for r in rows} == {"TRAINING", "VALIDATION", "TESTING"}


def test_folds_1_is_the_configs_own_split(phantom_ds, tmp_path):
    labels = gt_labels(phantom_ds)  # sub-01 (2), sub-02 ses-01/02 (4), sub-03 (2)
    cfg = write_config(tmp_path / "cfg.json", phantom_ds, labels[:2], labels[2:6], labels[6:])
    res = convert(cfg, tmp_path / "raw", 300, jobs=1, folds=1)
    (fold,) = json.loads((res.folder / "splits_final.json").read_text(encoding="utf-8"))
    by_id = {m["case_id"]: Path(m["label"]) for m in read_mapping(res.folder)}
    assert [by_id[c] for c in fold["train"]] == labels[:2] and [by_id[c] for c in fold["val"]] == labels[2:6]


def test_corrected_copies_only_where_needed(phantom_ds, tmp_path):
    labels = gt_labels(phantom_ds)
    src_root = tmp_path / "src" / "ds"
    # a float label, a label on a finer grid (same world space), a label with qform != sform
    work = {}
    for i, kind in enumerate(("float", "regrid", "forms")):
        img = nib.load(str(labels[i]))
        data = np.asanyarray(img.dataobj)
        name = labels[i].relative_to(phantom_ds)
        dst = src_root / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if kind == "float":
            new = nib.Nifti1Image(data.astype(np.float32), img.affine)
        elif kind == "regrid":
            aff = img.affine.copy()
            aff[:3, :3] /= 2
            aff[:3, 3] -= img.affine[:3, :3] @ [0.25, 0.25, 0.25]
            fine = np.repeat(np.repeat(np.repeat(data, 2, 0), 2, 1), 2, 2)
            new = nib.Nifti1Image(fine.astype(np.uint8), aff)
        else:
            new = nib.Nifti1Image(data.astype(np.uint8), img.affine)
            q = img.affine.copy()
            q[:3, 3] += 2.0
            new.set_qform(q, code=1)
            new.set_sform(img.affine, code=1)
        nib.save(new, str(dst))
        image = next(phantom_ds.rglob(BidsName.parse(labels[i]).source().filename))
        img_dst = src_root / image.relative_to(phantom_ds)
        img_dst.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(image, img_dst)
        work[kind] = (dst, digest(dst))
    cfg = write_config(tmp_path / "cfg.json", src_root, [w[0] for w in work.values()], [labels[3]])
    res = convert(cfg, tmp_path / "raw", 300, jobs=1)
    rec = {r.label: r for r in res.records}
    for kind, (path, sha) in work.items():
        r = rec[str(path)]
        out = res.folder / r.nnunet_label
        assert not out.is_symlink(), kind
        assert any("rewritten" in a for a in r.actions), (kind, r.actions)
        img = nib.load(str(out))
        assert img.get_data_dtype() == np.uint8 and qform_sform_discrepancy(img) < 1e-3
        image = nib.load(r.images[0])
        assert img.shape == image.shape and np.allclose(img.affine, image.affine, atol=1e-4)
        assert digest(path) == sha  # never changed
    regrid = nib.load(str(res.folder / rec[str(work["regrid"][0])].nnunet_label))
    truth = nib.load(str(labels[1]))
    assert np.array_equal(np.asanyarray(regrid.dataobj), np.asanyarray(truth.dataobj))
    assert res.corrected == 3
    assert (res.folder / rec[str(labels[3])].nnunet_label).is_symlink()


def test_labels_json_remap_and_multichannel(phantom_ds, tmp_path):
    # multi-channel: T1w + T2w of one session is not co-registered in the phantoms, so use the same
    # contrast twice through object entries (channel 1 = channel 0 resampled is still an exercise of the path)
    labels = [p for p in gt_labels(phantom_ds) if "T2w" in p.name]
    entries = []
    for lab in labels:
        image = next(phantom_ds.rglob(BidsName.parse(lab).source().filename))
        t1 = next(phantom_ds.rglob(BidsName.parse(lab).source().filename.replace("_acq-sag_T2w", "_T1w")))
        entries.append({"IMAGE": [str(image), str(t1)], "LABEL": str(lab)})
    cfg = write_config(tmp_path / "cfg.json", phantom_ds, entries[:3], entries[3:])
    res = convert(cfg, tmp_path / "raw", 302, "Multi", channels=["T2w", "T1w"],
                  labels_json={"labels": {"background": 0, "bone": 1}, "remap": {"1": 1}}, jobs=1)
    ds_json = json.loads((res.folder / "dataset.json").read_text(encoding="utf-8"))
    assert ds_json["channel_names"] == {"0": "T2w", "1": "T1w"} and ds_json["labels"]["bone"] == 1
    r = res.records[0]
    assert [Path(p).name for p in r.nnunet_images] == [f"{r.case_id}_0000.nii.gz", f"{r.case_id}_0001.nii.gz"]
    ch1 = nib.load(str(res.folder / r.nnunet_images[1]))
    assert ch1.shape == nib.load(str(res.folder / r.nnunet_images[0])).shape  # resampled onto channel 0
    with pytest.raises(UsageError, match="named CT"):
        convert(cfg, tmp_path / "raw2", 303, channels=["CT", "T1w"], jobs=1)


# ------------------------------------------------------------ bad inputs
def _bad_label(phantom_ds: Path, tmp_path: Path, data_fn, affine_fn=None) -> Path:
    lab = gt_labels(phantom_ds)[0]
    img = nib.load(str(lab))
    data = data_fn(np.asanyarray(img.dataobj))
    aff = affine_fn(img.affine) if affine_fn else img.affine
    out = nib.Nifti1Image(data, aff)
    nib.save(out, str(lab))  # the copy of the dataset is private to this test
    return lab


@pytest.mark.parametrize("case,needle", [
    ("missing", "file not found"),
    ("far", "do not overlap"),
    ("soft", "non-integer"),
    ("unexpected", "unexpected label values [255]"),
])
def test_bad_inputs_one_line_error_no_partial_dataset(case, needle, phantom_ds, tmp_path, cli):
    labels = gt_labels(phantom_ds)
    if case == "missing":
        labels[1].unlink()
    elif case == "far":
        def shift(a):
            a = a.copy()
            a[:3, 3] += 5000.0
            return a
        _bad_label(phantom_ds, tmp_path, lambda d: d.astype(np.uint8), shift)
    elif case == "soft":
        _bad_label(phantom_ds, tmp_path, lambda d: d.astype(np.float32) * 0.7)
    else:
        _bad_label(phantom_ds, tmp_path, lambda d: (d * 255).astype(np.uint8))
    cfg = write_config(tmp_path / "cfg.json", phantom_ds, labels[:4], labels[4:6])
    out = tmp_path / "raw"
    out.mkdir()
    proc = cli(MODULE, "--config", cfg, "--path-out", out, "-dnum", "300", "-j", "1")
    assert_one_line_error(proc, needle)
    assert leftovers(out) == []  # no dataset, no temporary folder


def test_id_collision_and_existing_folder(split_config, tmp_path, cli):
    out = tmp_path / "raw"
    (out / "Dataset300_Other").mkdir(parents=True)
    proc = cli(MODULE, "--config", split_config, "--path-out", out, "-dnum", "300")
    assert_one_line_error(proc, "already belongs to Dataset300_Other")
    results = tmp_path / "results"
    (results / "Dataset301_Else").mkdir(parents=True)
    with pytest.raises(OutputError, match="Dataset301_Else"):
        os.environ["nnUNet_results"] = str(results)
        try:
            convert(split_config, out, 301)
        finally:
            del os.environ["nnUNet_results"]
    proc = cli(MODULE, "--config", split_config, "--path-out", out, "-dnum", "302", "-j", "1")
    assert proc.returncode == 0, proc.stderr
    (rec,) = [json.loads(line) for line in proc.stdout.splitlines()]
    assert rec == {"stage": MODULE, "status": "written", "path": str(out / "Dataset302_SacrumDataset"),
                   "dataset_id": 302, "cases": 8, "training": 6, "testing": 2, "corrected": 0, "folds": 2}
    before = {p: p.lstat().st_mtime_ns for p in (out / "Dataset302_SacrumDataset").rglob("*")}
    again = cli(MODULE, "--config", split_config, "--path-out", out, "-dnum", "302", "-v")
    assert again.returncode == 0 and "up to date" in again.stderr, again.stderr
    (rec,) = [json.loads(line) for line in again.stdout.splitlines()]
    assert (rec["status"], rec["path"], rec["cases"]) == ("skipped", str(out / "Dataset302_SacrumDataset"), 8)
    assert {p: p.lstat().st_mtime_ns for p in (out / "Dataset302_SacrumDataset").rglob("*")} == before
    changed = cli(MODULE, "--config", split_config, "--path-out", out, "-dnum", "302", "--link", "copy")
    assert_one_line_error(changed, "Dataset302_SacrumDataset", "option link symlink -> copy", "--overwrite")
    cfg = json.loads(split_config.read_text(encoding="utf-8"))
    cfg["TRAINING"] = cfg["TRAINING"][1:]
    fewer = split_config.with_name("fewer.json")
    fewer.write_text(json.dumps(cfg))
    shrunk = cli(MODULE, "--config", fewer, "--path-out", out, "-dnum", "302")
    assert_one_line_error(shrunk, "TRAINING 1 case(s) removed", "--overwrite")
    redo = cli(MODULE, "--config", split_config, "--path-out", out, "-dnum", "302", "--overwrite", "-j", "1")
    assert redo.returncode == 0, redo.stderr
    assert sorted(leftovers(out)) == ["Dataset300_Other", "Dataset302_SacrumDataset"]


def test_no_output_folder_is_usage_error(split_config, cli):
    env = {"nnUNet_raw": ""}
    proc = cli(MODULE, "--config", split_config, "-dnum", "300", env=env)
    assert_one_line_error(proc, "nnUNet_raw", code=2)


def test_errors_are_library_exceptions(phantom_ds, tmp_path):
    labels = gt_labels(phantom_ds)
    cfg = write_config(tmp_path / "cfg.json", phantom_ds, [], [], labels[:2])
    with pytest.raises(InputError, match="no TRAINING"):
        convert(cfg, tmp_path / "raw", 300)
    def far(a):
        a = a.copy()
        a[:3, 3] += 9000.0
        return a
    _bad_label(phantom_ds, tmp_path, lambda d: d.astype(np.uint8), far)
    soft = labels[2]
    img = nib.load(str(soft))
    nib.save(nib.Nifti1Image(np.asanyarray(img.dataobj).astype(np.float32) * 0.5, img.affine), str(soft))
    cfg = write_config(tmp_path / "cfg2.json", phantom_ds, labels[:2], labels[2:4])
    # every case is checked: one BatchError names both bad ones, and nothing is written
    with pytest.raises(BatchError) as info:
        convert(cfg, tmp_path / "raw", 300, options=ConvertOptions(jobs=1))
    failures = dict(info.value.failures)
    assert len(failures) == 2 and "do not overlap" in " ".join(failures.values())
    assert "non-integer" in " ".join(failures.values())
    assert info.value.done == [] and "no dataset was written" in str(info.value)
    assert leftovers(tmp_path / "raw") == []
    with pytest.raises(TypeError, match="not both"):
        convert(cfg, tmp_path / "raw", 300, options=ConvertOptions(), jobs=1)
    with pytest.raises(UsageError, match="exclude each other"):
        convert(cfg, tmp_path / "raw", 300, labels=["a"], labels_json={"background": 0, "a": 1})


# -------------------------------------------------------- real nnU-Net check
@pytest.mark.slow
def test_nnunet_plan_and_preprocess_accepts_dataset(trained_model):  # noqa: F811
    """The session model's dataset went through ``nnUNetv2_plan_and_preprocess -d N
    --verify_dataset_integrity -c 3d_fullres`` (run by train_nnunet, raising on failure), and nnU-Net
    trained from the converter's folds: two, drawn by subject."""
    assert "verify_dataset_integrity Done" in trained_model.plan_output
    pre = trained_model.preprocessed / trained_model.dataset_folder
    assert (pre / "nnUNetPlans.json").is_file() and (pre / "nnUNetPlans_3d_fullres").is_dir()
    splits = json.loads((pre / "splits_final.json").read_text(encoding="utf-8"))
    cfg = json.loads(trained_model.config.read_text(encoding="utf-8"))
    mapping = {m["case_id"]: m for m in read_mapping(trained_model.raw_dataset)}
    subject = {c: BidsName.parse(m["label"]).subject for c, m in mapping.items()}
    trainable = sorted(Path(cfg["DATASETS_PATH"]) / p for split in ("TRAINING", "VALIDATION") for p in cfg[split])
    assert len(splits) == 2
    assert sorted(Path(mapping[c]["label"]) for f in splits for c in f["val"]) == trainable
    for n, fold in enumerate(splits):
        assert not {subject[c] for c in fold["train"]} & {subject[c] for c in fold["val"]}
        # nnU-Net validated exactly the fold's cases: its own record of the split it used
        summary = json.loads((trained_model.model_dir / f"fold_{n}" / "validation" / "summary.json").read_text())
        assert sorted(Path(m["prediction_file"]).name[:-len(".nii.gz")] for m in summary["metric_per_case"]) == \
            sorted(fold["val"])
    assert trained_model.dataset_folder.startswith(f"Dataset{DATASET_ID:03d}_")
    print("nnU-Net timings (s):", {k: round(v, 1) for k, v in trained_model.timings.items()})


@pytest.mark.parametrize("dtype,values", [(np.uint8, [0, 1]), (np.uint16, [0, 3, 700]), (np.int16, [0, 2, 5]),
                                          (np.uint8, [0])])
def test_streamed_label_values_equal_full_read(tmp_path, dtype, values):
    """The streamed check finds exactly the values the full read finds, across
    1 MiB slices and in a file of two gzip members."""
    import gzip

    from totalseg_bids.convert_config_to_nnunet import stream_label_values, streamable
    from totalseg_bids.core.nifti import label_array, load_nifti, present_values

    data = np.zeros((200, 160, 70), dtype)  # > 2 MiB: several slices
    for i, v in enumerate(values[1:]):
        data[10 + 50 * i:40 + 50 * i, 5:90, 60:69] = v
    path = tmp_path / "sub-01_T2w_label-x_seg.nii.gz"
    nib.Nifti1Image(data, np.eye(4)).to_filename(str(path))
    raw = gzip.decompress(path.read_bytes())
    multi = tmp_path / "sub-02_T2w_label-x_seg.nii.gz"
    multi.write_bytes(gzip.compress(raw[:1_500_001]) + gzip.compress(raw[1_500_001:]))
    for p in (path, multi):
        img = load_nifti(p, check_forms=False)
        assert streamable(img, p)
        assert stream_label_values(img, p) == present_values(label_array(img, p)) == set(values)


def test_streamed_label_refuses_what_the_full_read_refuses(tmp_path):
    import gzip

    from totalseg_bids.convert_config_to_nnunet import stream_label_values
    from totalseg_bids.core.errors import InputError
    from totalseg_bids.core.nifti import label_array, load_nifti

    data = np.zeros((30, 30, 30), np.int16)
    data[3, 4, 5] = -2
    neg = tmp_path / "neg_seg.nii.gz"
    nib.Nifti1Image(data, np.eye(4)).to_filename(str(neg))
    img = load_nifti(neg, check_forms=False)
    with pytest.raises(InputError) as full:
        label_array(img, neg)
    with pytest.raises(InputError) as streamed:
        stream_label_values(img, neg)
    assert str(streamed.value) == str(full.value) and "negative" in str(full.value)
    short = tmp_path / "short_seg.nii.gz"  # a stream that ends early (header size check bypassed)
    short.write_bytes(gzip.compress(gzip.decompress(neg.read_bytes())[:20_000]))
    with pytest.raises(InputError, match="truncated or corrupt"):
        stream_label_values(img, short)
