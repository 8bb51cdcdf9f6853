"""Tests of ``totalseg_bids.segment_ct``.

The real TotalSegmentator program, on tiny local weights, is tested in
tests/unit/adapters/test_segment_ct_real.py. The tests here that put ``tests/support/fake_tools``
first on ``PATH`` use its ``TotalSegmentator`` stand-in only for what the real
program cannot be made to do here, each saying why: seven CTs in parallel
workers within a test's time (the real program takes about half a minute per
CT on 2 cores), and a program that fails to download its weights at run time
(``FAKE_TOTALSEG_NO_WEIGHTS=1``: the real one, on a machine without internet,
is stopped before that by segment_ct's own weight check).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from support import FAKE_TOOLS, assert_one_line_error

from totalseg_bids import segment_ct as sc
from totalseg_bids.core.derivatives import read_dseg_tsv
from totalseg_bids.core.errors import BatchError, ExternalToolError
from totalseg_bids.core.nifti import dice
from totalseg_bids.core.parallel import Outcome
from totalseg_bids.testing.phantoms import generate
from totalseg_bids.totalsegmentator import load_class_map


def fake_path() -> str:
    """PATH with the stand-in first and this interpreter next (its shebang's python3)."""
    return os.pathsep.join([str(FAKE_TOOLS), os.path.dirname(sys.executable), os.environ.get("PATH", "")])


def ct_files(ds: Path) -> list[Path]:
    return sorted(ds.glob("sub-*/**/*_CT.nii.gz"))


def expected_outputs(ds: Path, out: Path, labels=("sacrum", "vertebraeL5")) -> set[str]:
    """Expected derivative files, spelled out by hand (not with the code under test)."""
    names = {"dataset_description.json"}
    for ct in ct_files(ds):
        rel = ct.parent.relative_to(ds)
        stem = ct.name[: -len(".nii.gz")]
        for label in labels:
            for ext in (".nii.gz", ".json"):
                names.add(f"{rel.as_posix()}/{stem}_label-{label}_seg{ext}")
    return names


def tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")}


@pytest.fixture(scope="module")
def five_template(tmp_path_factory) -> Path:
    """5 subjects, sub-02 and sub-04 with two sessions: 7 CTs, no CT labels."""
    return generate(tmp_path_factory.mktemp("seg5") / "ds", subjects=5, sessions=2, mixed_sessions=True,
                    ct_labels=False)


@pytest.fixture(scope="module")
def small_template(tmp_path_factory) -> Path:
    """One subject, a 2 mm CT (quick to write and segment)."""
    return generate(tmp_path_factory.mktemp("seg1") / "ds", subjects=1, ct_labels=False, ct_spacing=2.0)


@pytest.fixture
def small_ds(small_template, tmp_path) -> Path:
    dst = tmp_path / "ds"
    shutil.copytree(small_template, dst)
    return dst


# ------------------------------------------------------------------ done when
@pytest.mark.slow
def test_five_subjects_outputs_rerun_and_corrupt_ct(five_template, tmp_path, cli):
    """Stand-in: 7 CTs with -j 2 would take minutes with the real program on 2 cores."""
    ds = tmp_path / "ds"
    shutil.copytree(five_template, ds)
    log = tmp_path / "calls.jsonl"
    env = {"PATH": fake_path(), "FAKE_TOTALSEG_LOG": str(log)}
    args = ["--path-img", ds, "--classes", "sacrum", "vertebrae_L5", "--fast", "--device", "cpu", "-j", "2"]
    proc = cli("segment_ct", *args, env=env)
    assert proc.returncode == 0, proc.stderr
    out = ds / "derivatives" / "labels"
    cts = ct_files(ds)
    assert len(cts) == 7
    assert tree(out) == expected_outputs(ds, out)
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(records) == 14 and {(r["stage"], r["status"]) for r in records} == {("segment_ct", "written")}
    assert {Path(r["path"]).relative_to(out).as_posix() for r in records} == {
        n for n in expected_outputs(ds, out) if n.endswith(".nii.gz")}

    calls = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert sorted(c[c.index("-i") + 1] for c in calls) == sorted(map(str, cts))
    for call in calls:
        joined = " ".join(call)
        assert "-ta total --roi_subset sacrum vertebrae_L5 -d cpu --fast" in joined

    version = importlib.metadata.version("TotalSegmentator")
    for ct in cts:
        ct_img = nib.load(str(ct))
        rel = ct.relative_to(ds)
        for _cls, label in (("sacrum", "sacrum"), ("vertebrae_L5", "vertebraeL5")):
            name = ct.name.replace("_CT.nii.gz", f"_CT_label-{label}_seg.nii.gz")
            img = nib.load(str(out / rel.parent / name))
            data = np.asanyarray(img.dataobj)
            assert img.get_data_dtype() == np.uint8 and set(np.unique(data)) <= {0, 1}
            assert img.shape == ct_img.shape
            assert np.allclose(img.affine, ct_img.affine, atol=1e-4)
            assert np.allclose(img.get_qform(), img.get_sform(), atol=1e-4)
            assert int(img.header["qform_code"]) == int(img.header["sform_code"]) == 1
            gt = np.asanyarray(nib.load(str(ds / "derivatives" / "ground_truth" / rel.parent / name)).dataobj)
            assert dice(data, gt) > 0.95, (name, dice(data, gt))
            side = json.loads((out / rel.parent / name.replace(".nii.gz", ".json")).read_text(encoding="utf-8"))
            assert side["SpatialReference"] == f"bids:raw:{rel.as_posix()}"  # the CT whose grid it is on
            assert side["Sources"] == [f"bids:raw:{rel.as_posix()}"]
            tool, ours = side["GeneratedBy"]
            assert (tool["Name"], tool["Version"], tool["Task"], tool["Fast"], tool["Device"]) == (
                "TotalSegmentator", version, "total", True, "cpu")
            assert tool["Classes"] == ["sacrum", "vertebrae_L5"] and ours["Name"] == "totalseg_bids"
    desc = json.loads((out / "dataset_description.json").read_text(encoding="utf-8"))
    assert desc["DatasetType"] == "derivative" and desc["GeneratedBy"][0]["Name"] == "totalseg_bids"

    # re-running does nothing
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    n_calls = len(log.read_text(encoding="utf-8").splitlines())
    proc = cli("segment_ct", *args, env=env)
    assert proc.returncode == 0, proc.stderr
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == mtimes
    assert len(log.read_text(encoding="utf-8").splitlines()) == n_calls
    assert [json.loads(line)["status"] for line in proc.stdout.splitlines()] == ["skipped"] * 14

    # a truncated CT: one line naming it, the other six complete
    bad = ds / "sub-04" / "ses-02" / "anat" / "sub-04_ses-02_CT.nii.gz"
    raw = bad.read_bytes()
    bad.write_bytes(raw[: len(raw) // 2])
    out2 = tmp_path / "labels2"
    proc = cli("segment_ct", *args, "--path-out", out2, env=env)
    assert_one_line_error(proc, str(bad), "truncated")
    # the records of the six CTs that completed are printed before the error
    printed = {Path(json.loads(line)["path"]).relative_to(out2).as_posix() for line in proc.stdout.splitlines()}
    assert printed == {n for n in expected_outputs(ds, out2) if n.endswith(".nii.gz") and "sub-04_ses-02" not in n}
    done = tree(out2)
    assert not [n for n in done if "sub-04_ses-02" in n]
    assert done == {n for n in expected_outputs(ds, out2) if "sub-04_ses-02" not in n}
    assert bad.read_bytes() == raw[: len(raw) // 2]


# ------------------------------------------------------------------ CLI errors
def test_missing_dataset_is_one_line_error(tmp_path, cli):
    missing = tmp_path / "nope"
    proc = cli("segment_ct", "--path-img", missing, env={"PATH": fake_path()})
    assert_one_line_error(proc, str(missing))


def test_unknown_class_lists_close_names(small_ds, cli):
    proc = cli("segment_ct", "--path-img", small_ds, "--classes", "sacrum", "vertebrae_l5",
               env={"PATH": fake_path()})
    assert_one_line_error(proc, "vertebrae_l5", "vertebrae_L5", code=2)
    assert not (small_ds / "derivatives" / "labels").exists()


def test_missing_weights_is_one_line_error(small_ds, cli):
    """Stand-in: a program on PATH that is not this environment's TotalSegmentator dies
    downloading its weights; segment_ct recognises its output (the real one is checked up front)."""
    proc = cli("segment_ct", "--path-img", small_ds, "--fast", "--device", "cpu",
               env={"PATH": fake_path(), "FAKE_TOTALSEG_NO_WEIGHTS": "1"})
    ct = ct_files(small_ds)[0]
    assert_one_line_error(proc, str(ct), "TOTALSEG_HOME_DIR", "totalseg_download_weights")
    assert not list((small_ds / "derivatives").glob("labels/sub-*"))


def test_all_cts_missing_weights_collapse_to_one_error():
    msg = "/d/{}: TotalSegmentator weights ... could not be downloaded; run `totalseg_download_weights -t total`"
    outcomes = [Outcome(f"sub-0{i}", False, error=msg.format(i)) for i in (1, 2, 3)]
    with pytest.raises(ExternalToolError, match="3 CTs not segmented.*TOTALSEG_HOME_DIR"):
        sc.finish_segment(outcomes, "total", "/d")
    record = {"status": "written", "path": "/d/sub-03_CT_label-sacrum_seg.nii.gz"}
    with pytest.raises(BatchError) as info:
        sc.finish_segment(outcomes[:2] + [Outcome("sub-03", True, [record])], "total", "/d")
    assert info.value.done == [record] and len(info.value.failures) == 2


def test_executable_not_on_path(small_ds, tmp_path, monkeypatch):
    empty = tmp_path / "empty_bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(ExternalToolError, match="pip install TotalSegmentator"):
        sc.segment_dataset(small_ds, device="cpu", jobs=1)
    assert not (small_ds / "derivatives" / "labels").exists()


def test_annexed_ct_without_content(small_ds, monkeypatch):
    monkeypatch.setenv("PATH", fake_path())
    ct = ct_files(small_ds)[0]
    ct.unlink()
    ct.symlink_to("../../.git/annex/objects/XX/YY/MD5E-s1--0.nii.gz/MD5E-s1--0.nii.gz")
    with pytest.raises(BatchError) as info:
        sc.segment_dataset(small_ds, device="cpu", jobs=1)
    assert "datalad get" in info.value.failures[0][1] and str(ct) in info.value.failures[0][1]


# ------------------------------------------------------------------ --from-existing, --combine, QC
def _gt(ds: Path, ct: Path, label: str) -> nib.Nifti1Image:
    rel = ct.parent.relative_to(ds)
    return nib.load(str(ds / "derivatives" / "ground_truth" / rel / ct.name.replace(
        "_CT.nii.gz", f"_CT_label-{label}_seg.nii.gz")))


def test_from_existing_folder_on_other_grid(small_ds, tmp_path):
    """Outputs made on a 2x coarser grid come back onto the CT grid."""
    ct = ct_files(small_ds)[0]
    gt = _gt(small_ds, ct, "sacrum")
    coarse = np.asanyarray(gt.dataobj)[::2, ::2, ::2]
    aff = gt.affine.copy()
    aff[:3, :3] *= 2
    existing = tmp_path / "ts_out" / "sub-01_CT"
    existing.mkdir(parents=True)
    nib.save(nib.Nifti1Image(coarse.astype(np.uint8), aff), str(existing / "sacrum.nii.gz"))
    records = sc.segment_dataset(small_ds, from_existing=existing.parent, jobs=1)
    assert [(r["status"], r["label"], r["ct"]) for r in records] == [("written", "sacrum", str(ct))]
    out = Path(records[0]["path"])
    assert out.name == "sub-01_CT_label-sacrum_seg.nii.gz"
    img = nib.load(str(out))
    assert img.shape == gt.shape and np.allclose(img.affine, gt.affine, atol=1e-4)
    assert dice(np.asanyarray(img.dataobj), np.asanyarray(gt.dataobj)) > 0.8
    tool = json.loads(out.with_name("sub-01_CT_label-sacrum_seg.json").read_text(encoding="utf-8"))["GeneratedBy"][0]
    assert tool["Name"] == "TotalSegmentator" and "imported" in tool["Description"]
    assert [r["status"] for r in sc.segment_dataset(small_ds, from_existing=existing.parent, jobs=1)] == ["skipped"]


def test_from_existing_multilabel_combined_bids_naming(small_ds, tmp_path):
    """A ``--ml`` file becomes one dseg with TotalSegmentator's ids, and QC gets each label."""
    from totalsegmentator.map_to_binary import class_map

    ids = {v: k for k, v in class_map["total"].items()}
    ct = ct_files(small_ds)[0]
    sacrum, l5 = (np.asanyarray(_gt(small_ds, ct, n).dataobj) for n in ("sacrum", "vertebraeL5"))
    ml = np.zeros(sacrum.shape, np.uint8)
    ml[sacrum > 0] = ids["sacrum"]
    ml[l5 > 0] = ids["vertebrae_L5"]
    existing = tmp_path / "ts_ml"
    existing.mkdir()
    nib.save(nib.Nifti1Image(ml, nib.load(str(ct)).affine), str(existing / "sub-01_CT.nii.gz"))
    out_root = tmp_path / "labels"
    options = sc.SegmentOptions(classes=("sacrum", "vertebrae_L5"), from_existing=existing, combine="lumbosacral",
                                naming="bids", qc_dir=tmp_path / "qc", jobs=1)
    records = sc.segment_dataset(small_ds, out_root, options)
    assert [(r["status"], r["label"]) for r in records] == [("written", "lumbosacral")]
    out = Path(records[0]["path"])
    assert out == out_root / "sub-01" / "anat" / "sub-01_space-CT_desc-lumbosacral_dseg.nii.gz"
    data = np.asanyarray(nib.load(str(out)).dataobj)
    assert np.array_equal(data, ml)
    assert read_dseg_tsv(out.with_name("sub-01_space-CT_desc-lumbosacral_dseg.tsv")) == {
        ids["sacrum"]: "sacrum", ids["vertebrae_L5"]: "vertebrae_L5"}
    (record,) = [json.loads(f.read_text(encoding="utf-8")) for f in (tmp_path / "qc" / "entries").glob("*.json")]
    assert record["stage"] == "segment_ct" and record["meta"]["source"] == "existing"
    assert Path(record["image"]) == ct and Path(record["label"]) == out


def test_from_existing_missing_entry_fails_that_ct(small_ds, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(BatchError) as info:
        sc.segment_dataset(small_ds, from_existing=tmp_path / "empty", jobs=1)
    assert "sub-01_CT" in info.value.failures[0][1] and info.value.done == []


def test_batch_error_carries_the_completed_cts(tmp_path):
    """Library call, one CT without outputs to import: one BatchError naming it, whose ``done``
    holds the records of the others, whose labels are written."""
    ds = generate(tmp_path / "ds", subjects=3, ct_labels=False, ct_spacing=2.0)
    existing = tmp_path / "ts"
    cts = ct_files(ds)
    for ct in cts[1:]:
        folder = existing / ct.name.replace(".nii.gz", "")
        folder.mkdir(parents=True)
        shutil.copyfile(_gt(ds, ct, "sacrum").get_filename(), folder / "sacrum.nii.gz")
    out = tmp_path / "labels"
    with pytest.raises(BatchError) as info:
        sc.segment_dataset(ds, out, sc.SegmentOptions(from_existing=existing, jobs=1))
    assert [item for item, _ in info.value.failures] == [str(cts[0].relative_to(ds))]
    done = info.value.done
    assert sorted(r["ct"] for r in done) == [str(ct) for ct in cts[1:]] and len(cts) == 3
    assert all(r["status"] == "written" and Path(r["path"]).is_file() for r in done)
    assert not list(out.rglob(cts[0].name.replace(".nii.gz", "") + "_*"))


def test_class_map_lookups(monkeypatch, caplog):
    """Unknown tasks are usage errors; without TotalSegmentator the classes go unchecked, said in a log line."""
    from totalseg_bids.core.errors import UsageError

    assert "sacrum" in load_class_map("total").values()
    with pytest.raises(UsageError, match="close: total"):
        load_class_map("totl")
    monkeypatch.setitem(sys.modules, "totalsegmentator.map_to_binary", None)
    with caplog.at_level("INFO", logger="totalseg_bids.totalsegmentator"):
        assert load_class_map("total") is None
    assert "not checked" in caplog.text
