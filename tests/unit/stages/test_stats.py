"""totalseg_bids.stats against counts computed here with numpy."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from support import assert_one_line_error, read_tsv

from totalseg_bids import stats

GT = "ds/derivatives/ground_truth"


def test_stats_match_numpy(phantom_ds, tmp_path, capsys):
    labels = {
        "train": [f"{GT}/sub-01/anat/sub-01_acq-sag_T2w_label-phantom_dseg.nii.gz",
                  f"{GT}/sub-02/ses-01/anat/sub-02_ses-01_T1w_label-phantom_dseg.nii.gz"],
        "val": [f"{GT}/sub-02/ses-02/anat/sub-02_ses-02_acq-sag_T2w_label-sacrum_seg.nii.gz"],
        "test": [f"{GT}/sub-03/anat/sub-03_T1w_label-phantom_dseg.nii.gz"],
    }
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"TYPE": "LABEL", "DATASETS_PATH": str(phantom_ds.parent),
                               "TRAINING": labels["train"], "VALIDATION": labels["val"],
                               "TESTING": labels["test"]}))
    tsv, js = tmp_path / "stats.tsv", tmp_path / "stats.json"
    assert stats.main(["--config", str(cfg), "-o", str(tsv), "--json", str(js), "-j", "1"]) == 0
    result = json.loads(js.read_text(encoding="utf-8"))["ds"]
    out, err = capsys.readouterr()
    (record,) = [json.loads(line) for line in out.splitlines()]
    assert record == {"stage": "stats", "status": "computed", "path": str(cfg), "cases": 4,
                      "datasets": {"ds": result}, "outputs": [str(tsv), str(js)]}
    assert "| ds |" not in err  # the tables went to files
    md = tmp_path / "stats.md"
    assert stats.main(["--config", str(cfg), "-o", str(md), "-j", "1"]) == 0
    assert "| ds | train | 2 | 2 |" in md.read_text(encoding="utf-8") and "sacrum" in md.read_text(encoding="utf-8")
    assert stats.main(["--config", str(cfg), "-j", "1"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out.splitlines()[-1])["outputs"] == [] and "| ds | train | 2 | 2 |" in err

    for split, paths in labels.items():
        imgs = [nib.load(str(phantom_ds.parent / p)) for p in paths]
        arrays = [np.asarray(i.dataobj) for i in imgs]
        total = sum(a.size for a in arrays)
        g = result[split]
        assert g["cases"] == len(paths) and g["labelled_cases"] == len(paths)
        assert g["shape"]["max"] == np.max([a.shape for a in arrays], axis=0).tolist()
        assert g["spacing_mm"]["min"] == pytest.approx(
            np.min([nib.affines.voxel_sizes(i.affine) for i in imgs], axis=0), abs=1e-3)
        for value in sorted(set(np.concatenate([np.unique(a) for a in arrays]).tolist())):
            c = g["classes"][str(value)]
            assert c["voxel_percent"] == pytest.approx(100 * sum((a == value).sum() for a in arrays) / total, abs=1e-3)
            assert c["images"] == sum(bool((a == value).any()) for a in arrays)
            vols = [(a == value).sum() * abs(np.linalg.det(i.affine[:3, :3])) / 1000
                    for a, i in zip(arrays, imgs) if (a == value).any()]
            assert c["volume_ml"]["mean"] == pytest.approx(np.mean(vols), rel=1e-4)
            assert c["volume_ml"]["max"] == pytest.approx(np.max(vols), rel=1e-4)
    assert result["train"]["subjects"] == 2 and result["all"]["subjects"] == 3 and result["all"]["cases"] == 4
    assert result["train"]["classes"]["1"]["name"] == "sacrum"
    rows = read_tsv(tsv)
    assert {(r["split"], r["class_index"]) for r in rows} >= {("train", "0"), ("val", "1"), ("test", "4")}


def test_missing_input_is_one_line_error(tmp_path, cli):
    missing = tmp_path / "nope.json"
    proc = cli("stats", "--config", missing)
    assert_one_line_error(proc, str(missing))


def run_main(capsys, *args) -> tuple[int, str, str]:
    code = stats.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def one_error(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ": error: " in ln]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def config(tmp_path, ds, **splits) -> str:
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"TYPE": "LABEL", "DATASETS_PATH": str(ds.parent), **splits}))
    return str(path)


SACRUM_T2 = f"{GT}/sub-01/anat/sub-01_acq-sag_T2w_label-sacrum_seg.nii.gz"


def test_image_config_counts_cases_without_classes_and_rerun_gives_the_same_tables(phantom_ds, tmp_path, capsys):
    cfg = tmp_path / "img.json"
    cfg.write_text(json.dumps({"TYPE": "IMAGE", "DATASETS_PATH": str(phantom_ds.parent),
                               "TRAINING": ["ds/sub-01/anat/sub-01_CT.nii.gz", "ds/sub-03/anat/sub-03_CT.nii.gz"]}))
    tsv, js = tmp_path / "s.tsv", tmp_path / "s.json"
    assert run_main(capsys, "--config", cfg, "-o", tsv, "--json", js, "-j", "1")[0] == 0
    first = (tsv.read_text(encoding="utf-8"), js.read_text(encoding="utf-8"))
    g = json.loads(first[1])["ds"]["train"]
    assert (g["cases"], g["subjects"], g["labelled_cases"], g["classes"]) == (2, 2, 0, {})
    assert g["shape"]["min"] == [180.0, 140.0, 150.0] and g["spacing_mm"]["median"] == [1.0, 1.0, 1.0]
    assert run_main(capsys, "--config", cfg, "-o", tsv, "--json", js, "-j", "1")[0] == 0
    assert (tsv.read_text(encoding="utf-8"), js.read_text(encoding="utf-8")) == first


def test_class_names_from_labels_tsv_first_then_dseg_tables(phantom_ds, tmp_path, capsys):
    names = tmp_path / "names.tsv"
    names.write_text("index\tname\n2\tL5\n")
    cfg = config(tmp_path, phantom_ds, TRAINING=[f"{GT}/sub-01/anat/sub-01_CT_label-phantom_dseg.nii.gz"])
    js = tmp_path / "s.json"
    assert run_main(capsys, "--config", cfg, "--labels-tsv", names, "--json", js, "-j", "1")[0] == 0
    classes = json.loads(js.read_text(encoding="utf-8"))["ds"]["train"]["classes"]
    assert classes["2"]["name"] == "L5" and classes["1"]["name"] == "sacrum" and classes["0"]["name"] == "background"
    code, _, err = run_main(capsys, "--config", cfg, "--labels-tsv", tmp_path / "none.tsv", "-j", "1")
    assert code == 1 and "none.tsv" in one_error(err)


def _rewrite(path, fn, dtype=None) -> None:
    img = nib.load(str(path))
    data = fn(np.asarray(img.dataobj).astype(dtype or img.get_data_dtype()))
    nib.save(nib.Nifti1Image(data, img.affine), str(path))


def test_a_seg_with_values_0_2_is_refused_not_counted_as_class2(phantom_ds, tmp_path, capsys):
    lab = phantom_ds.parent / SACRUM_T2
    _rewrite(lab, lambda a: (a * 2).astype(np.uint8))
    code, out, err = run_main(capsys, "--config", config(tmp_path, phantom_ds, TRAINING=[SACRUM_T2]), "-j", "1")
    line = one_error(err)
    assert code == 1 and "ds/derivatives/ground_truth/sub-01/anat/sub-01_acq-sag_T2w_label-sacrum_seg" in line
    assert "class2" not in out and out == ""


def test_nan_image_is_refused_naming_dataset_and_file(phantom_ds, tmp_path, capsys):
    img = phantom_ds / "sub-01" / "anat" / "sub-01_acq-sag_T2w.nii.gz"

    def with_nan(a):
        a[0, 0, 0] = np.nan
        return a

    _rewrite(img, with_nan, np.float32)
    code, _, err = run_main(capsys, "--config", config(tmp_path, phantom_ds, TRAINING=[SACRUM_T2]), "-j", "1")
    line = one_error(err)
    assert code == 1 and "ds/sub-01/anat/sub-01_acq-sag_T2w.nii.gz" in line and "NaN" in line


def test_output_path_that_is_a_folder_is_one_line_error(phantom_ds, tmp_path, capsys):
    folder = tmp_path / "out.tsv"
    folder.mkdir()
    code, _, err = run_main(capsys, "--config", config(tmp_path, phantom_ds, TRAINING=[SACRUM_T2]),
                            "-o", folder, "-j", "1")
    line = one_error(err)
    assert code == 1 and str(folder) in line and ".tmp-" not in line
    assert list(folder.iterdir()) == []


def test_config_without_training_and_entries_outside_datasets_path_are_refused(phantom_ds, tmp_path, capsys):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"TYPE": "LABEL", "DATASETS_PATH": str(phantom_ds.parent), "TESTING": [SACRUM_T2]}))
    code, _, err = run_main(capsys, "--config", cfg)
    assert code == 1 and "TRAINING" in one_error(err)
    cfg.write_text(json.dumps({"TYPE": "LABEL", "DATASETS_PATH": str(phantom_ds / "sub-01"),
                               "TRAINING": [f"../../{SACRUM_T2}"]}))  # a real file, outside sub-01/
    code, _, err = run_main(capsys, "--config", cfg)
    assert code == 1 and "outside DATASETS_PATH" in one_error(err)


def test_two_datasets_with_a_sub_03_are_kept_apart_and_a_failure_names_its_dataset(phantom_ds, tmp_path, capsys):
    import shutil

    other = phantom_ds.parent / "other"
    shutil.copytree(phantom_ds, other, symlinks=True)
    lab = "derivatives/ground_truth/sub-03/anat/sub-03_acq-sag_T2w_label-sacrum_seg.nii.gz"
    cfg = config(tmp_path, phantom_ds, TRAINING=[f"ds/{lab}", f"other/{lab}"])
    js = tmp_path / "s.json"
    assert run_main(capsys, "--config", cfg, "--json", js, "-j", "1")[0] == 0
    result = json.loads(js.read_text(encoding="utf-8"))
    assert set(result) == {"ds", "other"} and result["ds"]["train"] == result["other"]["train"]
    img = other / "sub-03" / "anat" / "sub-03_acq-sag_T2w.nii.gz"
    img.write_bytes(img.read_bytes()[:200])
    code, _, err = run_main(capsys, "--config", cfg, "-j", "1")
    line = one_error(err)
    assert code == 1 and "other/sub-03/anat/sub-03_acq-sag_T2w.nii.gz" in line, line
    assert "ds/sub-03/anat" not in line


def test_report_format_follows_the_extension_and_an_unknown_one_is_a_usage_error(phantom_ds, tmp_path, capsys):
    cfg = config(tmp_path, phantom_ds, TRAINING=[SACRUM_T2])
    js = tmp_path / "s.json"
    assert run_main(capsys, "--config", cfg, "-o", js, "-j", "1")[0] == 0
    assert set(json.loads(js.read_text(encoding="utf-8"))) == {"ds"}
    code, out, err = run_main(capsys, "--config", cfg, "-o", tmp_path / "s.txt", "-j", "1")
    assert code == 2 and out == "" and ".tsv, .md or .json" in one_error(err)
    assert not (tmp_path / "s.txt").exists()


def test_library_call_with_one_unreadable_case_raises_one_batch_error_with_the_others(phantom_ds, tmp_path):
    from totalseg_bids.core.errors import BatchError

    other = f"{GT}/sub-03/anat/sub-03_acq-sag_T2w_label-sacrum_seg.nii.gz"
    img = phantom_ds / "sub-03" / "anat" / "sub-03_acq-sag_T2w.nii.gz"
    img.write_bytes(img.read_bytes()[:200])
    with pytest.raises(BatchError) as err:
        stats.config_stats(config(tmp_path, phantom_ds, TRAINING=[SACRUM_T2, other]), jobs=1)
    assert [key for key, _ in err.value.failures] == ["ds/sub-03/anat/sub-03_acq-sag_T2w.nii.gz"]
    assert [(c.subject, c.split) for c in err.value.done] == [("01", "train")]
    assert err.value.done[0].counts[1] > 0
