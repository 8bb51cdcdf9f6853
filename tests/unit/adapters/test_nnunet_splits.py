"""Cross-validation folds drawn by subject (totalseg_bids.nnunet.splits), as the 3D conversion and the 2D
export write them into splits_final.json."""

from __future__ import annotations

import csv
import json
import random
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from support import assert_one_line_error

from totalseg_bids import slices
from totalseg_bids.convert_config_to_nnunet import convert, read_mapping
from totalseg_bids.core.errors import InputError, UsageError
from totalseg_bids.nnunet.splits import (
    FoldCase,
    carry_folds,
    check_folds,
    config_fold,
    cross_validation_folds,
    make_folds,
    validation_fold,
)


def cohort(seed: int, datasets: dict[str, int]) -> list[FoldCase]:
    """Cases of several datasets: 1-3 sessions x 1-2 contrasts per subject, one subject in ten in TESTING."""
    rng = random.Random(seed)
    cases = []
    for ds, n in datasets.items():
        for s in range(n):
            split = "TESTING" if s % 10 == 9 else rng.choice(["TRAINING", "TRAINING", "TRAINING", "VALIDATION"])
            for ses in range(rng.randint(1, 3)):
                for contrast in rng.sample(["T1w", "T2w"], rng.randint(1, 2)):
                    cases.append(FoldCase(f"{ds}_sub-{s:02d}_ses-{ses}_{contrast}", f"{ds}/sub-{s:02d}", split))
    return cases


def subjects_of(fold_cases: list[FoldCase], ids) -> set[str]:
    by_id = {c.case_id: c.subject for c in fold_cases}
    return {by_id[i] for i in ids}


@pytest.mark.parametrize("seed", range(6))
def test_folds_keep_subjects_whole_validate_every_case_and_stratify(seed):
    cases = cohort(seed, {"spider": 23, "whole-spine": 11, "synthrad": 7})
    folds = make_folds(cases, 5, seed=seed)
    check_folds(folds, cases)  # the module's own rule check; the assertions below say the same independently
    assert len(folds) == 5
    trainable = sorted(c.case_id for c in cases if c.split != "TESTING")
    assert sorted(c for f in folds for c in f["val"]) == trainable  # each case validated exactly once
    for fold in folds:
        assert sorted(fold["train"] + fold["val"]) == trainable  # TESTING in no fold, nothing else either
        assert not subjects_of(cases, fold["train"]) & subjects_of(cases, fold["val"])
    per_dataset = defaultdict(Counter)
    for n, fold in enumerate(folds):
        for subject in subjects_of(cases, fold["val"]):
            per_dataset[subject.split("/")[0]][n] += 1
    for ds, counts in per_dataset.items():  # every dataset dealt evenly to the folds
        assert max(counts[f] for f in range(5)) - min(counts[f] for f in range(5)) <= 1, (ds, counts)


def test_folds_repeat_from_the_seed_whatever_the_order():
    cases = cohort(1, {"a": 12, "b": 9})
    shuffled = cases[:]
    random.Random(0).shuffle(shuffled)

    def as_sets(folds):
        return [(frozenset(f["train"]), frozenset(f["val"])) for f in folds]

    assert as_sets(make_folds(cases, 3, seed=7)) == as_sets(make_folds(shuffled, 3, seed=7))
    assert as_sets(make_folds(cases, 3, seed=7)) != as_sets(make_folds(cases, 3, seed=8))


def test_fold_counts_and_the_configs_own_split(caplog):
    cases = [FoldCase(f"c{i}", f"ds/sub-{i // 2}", "VALIDATION" if i >= 6 else "TRAINING") for i in range(8)]
    assert len(make_folds(cases)) == 4  # default 5, one per subject when there are fewer
    assert "4 folds instead of 5" in caplog.text
    with pytest.raises(InputError, match="5 folds need at least 5 subjects"):
        make_folds(cases, 5)
    with pytest.raises(UsageError):
        make_folds(cases, 0)
    assert make_folds(cases, 1) == [{"train": [f"c{i}" for i in range(6)], "val": ["c6", "c7"]}]
    mixed = [FoldCase("a", "ds/sub-1"), FoldCase("b", "ds/sub-1", "VALIDATION"), FoldCase("c", "ds/sub-2")]
    with pytest.raises(InputError, match="ds/sub-1 in TRAINING and VALIDATION"):
        config_fold(mixed)
    folds = cross_validation_folds(mixed, 2)  # drawn folds repair a split by session
    check_folds(folds, mixed)


def test_check_folds_names_each_broken_rule():
    cases = [FoldCase("a", "ds/sub-1"), FoldCase("b", "ds/sub-2"), FoldCase("t", "ds/sub-3", "TESTING")]
    with pytest.raises(InputError, match="not a TRAINING/VALIDATION case"):
        check_folds([{"train": ["a"], "val": ["t"]}], cases)
    with pytest.raises(InputError, match="validated in 0 folds"):
        check_folds([{"train": ["a"], "val": ["b"]}], cases)
    with pytest.raises(InputError, match="validated in 2 folds"):
        check_folds([{"train": [], "val": ["a", "b"]}, {"train": ["b"], "val": ["a"]}], cases)
    check_folds([{"train": ["a"], "val": ["b"]}], cases, complete=False)


def test_carried_folds_follow_their_source():
    source = [{"train": ["s1"], "val": ["s2"]}, {"train": ["s2"], "val": ["s1"]}]
    folds = carry_folds(source, {"s1": "s1", "s1_aug-1": "s1", "s2": "s2"}, ["s1", "s1_aug-1", "s2"])
    assert folds == [{"train": ["s1", "s1_aug-1"], "val": ["s2"]}, {"train": ["s2"], "val": ["s1", "s1_aug-1"]}]
    assert validation_fold(folds) == {"s2": 0, "s1": 1, "s1_aug-1": 1}


# ------------------------------------------------------------------ the writers
GT = "ds/derivatives/ground_truth"


def _labels(contrast_subjects) -> list[str]:
    out = []
    for sub, ses in contrast_subjects:
        stem = f"{sub}_ses-{ses}" if ses else sub
        folder = f"{sub}/ses-{ses}/anat" if ses else f"{sub}/anat"
        out += [f"{GT}/{folder}/{stem}_T1w_label-sacrum_seg.nii.gz",
                f"{GT}/{folder}/{stem}_acq-sag_T2w_label-sacrum_seg.nii.gz"]
    return out


def _config(path: Path, ds: Path, **splits) -> Path:
    path.write_text(json.dumps({"TYPE": "LABEL", "CONTRASTS": "t1_t2", "DATASETS_PATH": str(ds.parent), **splits}))
    return path


def test_convert_writes_subject_folds_and_refuses_what_breaks_them(phantom_ds, tmp_path, monkeypatch, cli):
    """sub-02's two sessions, split across TRAINING and VALIDATION by the config, stay in one fold."""
    cfg = _config(tmp_path / "cfg.json", phantom_ds, TRAINING=_labels([("sub-01", None), ("sub-02", "01")]),
                  VALIDATION=_labels([("sub-02", "02")]), TESTING=_labels([("sub-03", None)]))
    monkeypatch.setenv("nnUNet_preprocessed", str(tmp_path / "pre"))
    res = convert(cfg, tmp_path / "raw", 300, jobs=1, seed=3)
    folds = json.loads((res.folder / "splits_final.json").read_text(encoding="utf-8"))
    assert res.folds == len(folds) == 2  # two subjects: two folds instead of five
    assert json.loads((tmp_path / "pre" / res.folder.name / "splits_final.json").read_text()) == folds
    mapping = read_mapping(res.folder)
    subject = {m["case_id"]: Path(m["images"][0]).name.split("_")[0] for m in mapping}
    for fold in folds:
        assert {subject[c] for c in fold["val"]} in ({"sub-01"}, {"sub-02"})
        assert not {subject[c] for c in fold["train"]} & {subject[c] for c in fold["val"]}
    assert {m["case_id"]: m["val_fold"] for m in mapping} == {
        m["case_id"]: (None if m["split"] == "TESTING" else validation_fold(folds)[m["case_id"]]) for m in mapping}
    with open(res.folder / "case_mapping.tsv", newline="") as fh:
        assert {r["val_fold"] for r in csv.DictReader(fh, delimiter="\t")} == {"0", "1", ""}
    meta = json.loads((res.folder / "dataset.json").read_text(encoding="utf-8"))["totalseg_bids"]
    assert (meta["folds"], meta["seed"]) == (2, 3)
    # the config's own split is refused as a fold: sub-02 would be on both sides
    proc = cli("convert_config_to_nnunet", "--config", cfg, "-o", tmp_path / "raw1", "-d", "301", "--folds", "1")
    assert_one_line_error(proc, "sub-02 in TRAINING and VALIDATION", "--folds 2")
    proc = cli("convert_config_to_nnunet", "--config", cfg, "-o", tmp_path / "raw3", "-d", "302", "--folds", "3")
    assert_one_line_error(proc, "3 folds need at least 3 subjects")
    assert not (tmp_path / "raw1").exists() or not list((tmp_path / "raw1").iterdir())
    assert not (tmp_path / "raw3").exists() or not list((tmp_path / "raw3").iterdir())
    # other folds are another request: refused, then redone with --overwrite
    with pytest.raises(Exception, match="option seed 3 -> 4"):
        convert(cfg, tmp_path / "raw", 300, jobs=1, seed=4)


def test_slices_nnunet2d_folds_are_drawn_by_subject(phantom_ds, tmp_path):
    def t2(s):
        return f"{GT}/{s}/anat/{s.replace('/', '_')}_acq-sag_T2w_label-phantom_dseg.nii.gz"

    cfg = _config(tmp_path / "cfg.json", phantom_ds, TRAINING=[t2("sub-01")],
                  VALIDATION=[t2("sub-02/ses-01"), t2("sub-02/ses-02")], TESTING=[t2("sub-03")])
    raw = tmp_path / "raw"
    assert slices.main(["--config", str(cfg), "--out", str(raw), "--layout", "nnunet2d", "-d", "501",
                        "--only-labelled", "--empty-fraction", "0", "--folds", "2", "--seed", "1", "-q",
                        "-j", "1"]) == 0
    ds = raw / "Dataset501_Slices"
    folds = json.loads((ds / "splits_final.json").read_text(encoding="utf-8"))
    with open(ds / "slices.tsv", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    subject = {r["file"].split("/")[-1][: -len("_0000.png")]: r["subject"] for r in rows if r["split"] != "test"}
    assert len(folds) == 2 and sorted(c for f in folds for c in f["val"]) == sorted(subject)
    for fold in folds:
        assert len({subject[c] for c in fold["val"]}) == 1
        assert not {subject[c] for c in fold["train"]} & {subject[c] for c in fold["val"]}
    assert slices.main(["--config", str(cfg), "--out", str(tmp_path / "raw3"), "--layout", "nnunet2d",
                        "--folds", "3", "-q", "-j", "1"]) == 1  # two subjects cannot make three folds
    assert not list((tmp_path / "raw3").rglob("*.png"))
