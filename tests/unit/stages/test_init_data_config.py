"""init_data_config: the legacy command line, the split properties, the config
round trip through core.config, and the one-line error contract."""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import subprocess
from collections import Counter, defaultdict
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import assert_one_line_error

from totalseg_bids import init_data_config as idc
from totalseg_bids.core.bids import BidsName
from totalseg_bids.core.config import SPLITS, load_config
from totalseg_bids.core.errors import InputError
from totalseg_bids.core.nifti import save_mask

GT = Path("derivatives") / "ground_truth"
#: The phantoms' ground truth has two structures per image (sacrum, L5): the legacy list keeps both.
SEVERAL = "--allow-several-labels"


# ---------------------------------------------------------------- helpers
def seg_list(parent: Path) -> list[str]:
    """``find ~+ -type f -name *_seg.nii.gz | grep -v CT | sort`` run in ``parent``."""
    return sorted(str(p) for p in parent.rglob("*_seg.nii.gz")
                  if (p.is_file() or p.is_symlink()) and "CT" not in str(p))


def write_txt(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def run_main(capsys, *args) -> subprocess.CompletedProcess:
    """``main(args)`` in process, shaped like the ``cli`` fixture's result."""
    code = idc.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, out, err)


def unit_of(path: str) -> tuple[str, str]:
    """(dataset, subject) of a config entry ``<dataset>/.../sub-XX_...``."""
    return path.split("/")[0], BidsName.parse(path).subject


def assert_no_leak(cfg: dict) -> None:
    owners: dict[tuple[str, str], set[str]] = defaultdict(set)
    for split in SPLITS:
        for entry in cfg[split]:
            owners[unit_of(entry)].add(split)
    assert all(len(s) == 1 for s in owners.values()), owners


@pytest.fixture(autouse=True)
def _restore_logging():
    """main() points the package logger at this test's captured stderr; undo it
    so later tests do not log into a closed stream."""
    logger = logging.getLogger("totalseg_bids")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


# ---------------------------------------------------------------- legacy command line
def test_legacy_command_line(phantom_ds, cli):
    parent = phantom_ds.parent
    labels = seg_list(parent)
    assert len(labels) == 16  # 4 subject-sessions x (T1w, T2w) x (sacrum, L5)
    write_txt(parent / "train_sacrum.txt", labels)
    proc = cli("init_data_config", "--txt", "train_sacrum.txt", "--type", "LABEL", SEVERAL,
               "--split-validation", "0.1", "--split-test", "0.1", cwd=parent)
    assert proc.returncode == 0, proc.stderr
    out = parent / "train_sacrum.json"
    cfg = json.loads(out.read_text(encoding="utf-8"))
    assert cfg["TYPE"] == "LABEL" and cfg["CONTRASTS"] == "t1_t2"
    assert cfg["DATASETS_PATH"] == str(parent)
    entries = [e for s in SPLITS for e in cfg[s]]
    assert sorted(str(parent / e) for e in entries) == labels
    assert all(e.startswith("ds/derivatives/ground_truth/") for e in entries)
    assert all(cfg[s] == sorted(cfg[s]) for s in SPLITS)
    assert cfg["SEED"] == 42 and cfg["SPLIT_BY"] == "subject"
    assert cfg["GeneratedBy"]["Name"] == "totalseg_bids.init_data_config"
    assert sum(c["files"] for c in cfg["COUNTS"].values()) == 16
    assert cfg["TRAINING"], "training must not be empty"
    assert_no_leak(cfg)
    cases = load_config(out).cases()
    assert len(cases) == 16
    for case in cases:
        assert case.image.exists() and case.label.exists()
        assert BidsName.parse(case.label).source().filename == case.image.name
        assert case.image.parent.parent.parent.name != "derivatives"


def test_ratios_split_subjects_and_sessions_together(phantom_ds, tmp_path, capsys):
    txt = write_txt(tmp_path / "l.txt", seg_list(phantom_ds.parent))
    out = tmp_path / "o.json"
    proc = run_main(capsys, "--txt", txt, "--type", "LABEL", SEVERAL, "--split-validation", "0.34",
                    "--split-test", "0.33", "-o", out, "--seed", "3")
    assert proc.returncode == 0, proc.stderr
    cfg = json.loads(out.read_text(encoding="utf-8"))
    assert [cfg["COUNTS"][s]["subjects"] for s in SPLITS] == [1, 1, 1]
    assert_no_leak(cfg)  # sub-02's two sessions stay together
    assert cfg["SPLIT_RATIOS"] == {"TRAINING": 0.33, "VALIDATION": 0.34, "TESTING": 0.33}
    by_file = tmp_path / "f.json"
    assert run_main(capsys, "--txt", txt, "--type", "LABEL", SEVERAL, "--split-validation", "0.2",
                    "--split-test", "0.1", "--split-by", "file", "-o", by_file).returncode == 0
    counts = [len(v) for k, v in json.loads(by_file.read_text(encoding="utf-8")).items() if k in SPLITS]
    assert counts == [11, 3, 2]  # 16 files: exact 11.2 / 3.2 / 1.6


def test_relative_paths_comments_duplicates(phantom_ds, tmp_path, monkeypatch, capsys):
    labels = seg_list(phantom_ds.parent)
    rel_to_txt = [os.path.relpath(p, tmp_path / "lists") for p in labels[:6]]
    rel_to_cwd = [os.path.relpath(p, tmp_path) for p in labels[6:]]
    txt = write_txt(tmp_path / "lists" / "train.txt",
                    ["# sacrum training list", ""] + rel_to_txt + ["", rel_to_txt[0], labels[1]] + rel_to_cwd)
    monkeypatch.chdir(tmp_path)
    proc = run_main(capsys, "--txt", txt, "--type", "LABEL", SEVERAL)
    assert proc.returncode == 0, proc.stderr
    # one identical line and one other spelling of a listed file: both counted
    assert "2 duplicate line(s) dropped" in proc.stderr, proc.stderr
    cfg = json.loads((tmp_path / "lists" / "train.json").read_text(encoding="utf-8"))  # legacy default output
    assert sorted(str(tmp_path / e) for s in SPLITS for e in cfg[s]) == labels


def test_duplicate_count_is_every_dropped_line(phantom_ds, tmp_path, capsys):
    labels = seg_list(phantom_ds.parent)
    txt = write_txt(tmp_path / "train.txt", labels + [labels[0]] * 3)
    proc = run_main(capsys, "--txt", txt, "--type", "LABEL", SEVERAL, "-o", tmp_path / "c.json")
    assert proc.returncode == 0, proc.stderr
    assert "3 duplicate line(s) dropped" in proc.stderr, proc.stderr


def test_several_labels_for_one_image_are_refused_naming_them(phantom_ds, tmp_path, capsys):
    other = phantom_ds.parent / "other"
    shutil.copytree(phantom_ds, other, symlinks=True)
    pred = other / "derivatives" / "labels" / "sub-03" / "anat" / "sub-03_T1w_label-sacrum_seg.nii.gz"
    pred.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(other / GT / "sub-03/anat/sub-03_T1w_label-sacrum_seg.nii.gz", pred)
    sacrum = sorted(str(p) for p in phantom_ds.parent.rglob("*label-sacrum_seg.nii.gz") if "CT" not in p.name)
    txt = write_txt(tmp_path / "t.txt", sacrum)
    proc = run_main(capsys, "--txt", txt, "--type", "LABEL", "-o", tmp_path / "c.json")
    assert_one_line_error(proc, "2 labels for other/sub-03/anat/sub-03_T1w.nii.gz", "derivatives/labels/sub-03",
                          "derivatives/ground_truth/sub-03", "--label-dir", "--label", "--allow-several-labels")
    assert not (tmp_path / "c.json").exists()
    proc = run_main(capsys, "--txt", txt, "--type", "LABEL", "--label-dir", "ground_truth", "-o", tmp_path / "c.json")
    assert proc.returncode == 0, proc.stderr
    cfg = json.loads((tmp_path / "c.json").read_text(encoding="utf-8"))
    entries = [e for s in SPLITS for e in cfg[s]]
    assert len(entries) == 16 and all("/derivatives/ground_truth/" in e for e in entries)
    both = write_txt(tmp_path / "b.txt", seg_list(phantom_ds))
    proc = run_main(capsys, "--txt", both, "--type", "LABEL", "-o", tmp_path / "d.json")
    assert_one_line_error(proc, "2 labels for ds/", "label-vertebraeL5", "label-sacrum")
    proc = run_main(capsys, "--txt", both, "--type", "LABEL", "--label", "sacrum", "-o", tmp_path / "d.json")
    assert proc.returncode == 0, proc.stderr
    entries = [e for s in SPLITS for e in json.loads((tmp_path / "d.json").read_text(encoding="utf-8"))[s]]
    assert len(entries) == 8 and all("label-sacrum" in e for e in entries)
    proc = run_main(capsys, "--txt", both, "--type", "LABEL", "--label", "nosuch", "-o", tmp_path / "e.json")
    assert_one_line_error(proc, "--label nosuch", "sacrum, vertebraeL5")


# ---------------------------------------------------------------- BIDS queries
def test_bids_dir_two_datasets_stratified(phantom_ds, tmp_path, capsys):
    other = tmp_path / "other" / "ds2"
    shutil.copytree(phantom_ds, other, symlinks=True)
    out = tmp_path / "q.json"
    proc = run_main(capsys, "--bids-dir", phantom_ds, other, "--label-dir", "ground_truth",
                    "--label-suffix", "label-sacrum_seg", "--contrasts", "T2w", "--type", "LABEL", SEVERAL,
                    "--stratify", "dataset", "--split-validation", "0.34", "--split-test", "0.33", "-o", out)
    assert proc.returncode == 0, proc.stderr
    cfg = json.loads(out.read_text(encoding="utf-8"))
    assert cfg["DATASETS_PATH"] == str(tmp_path) and cfg["CONTRASTS"] == "t2" and cfg["STRATIFY"] == "dataset"
    for split in SPLITS:  # 3 subjects per dataset at ~1/3 each: one subject of each dataset per split
        assert sorted({unit_of(e)[0] for e in cfg[split]}) == ["ds", "other"], split
    entries = [e for s in SPLITS for e in cfg[s]]
    assert len(entries) == 8 and all("_acq-sag_T2w_label-sacrum_seg" in e for e in entries)
    assert all(c.image.exists() for c in load_config(out).cases())


def test_bids_dir_bids_naming(phantom_ds, tmp_path, capsys):
    for src in (phantom_ds / GT).rglob("*_T2w_label-sacrum_seg.nii.gz"):
        name = BidsName.parse(src).source().derivative("sacrum", naming="bids")
        dst = phantom_ds / "derivatives" / "bidslabels" / src.parent.relative_to(phantom_ds / GT) / name.filename
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dst)
    out = tmp_path / "b.json"
    proc = run_main(capsys, "--bids-dir", phantom_ds, "--label-dir", "bidslabels", "--label-suffix",
                    "_label-sacrum_mask", "--type", "LABEL", SEVERAL, "-o", out, "--check-geometry")
    assert proc.returncode == 0, proc.stderr
    cases = load_config(out).cases()
    assert len(cases) == 4
    assert all(c.label.name.endswith("_space-T2w_label-sacrum_mask.nii.gz") and c.image.name.endswith("_T2w.nii.gz")
               for c in cases)


def test_bids_dir_images(phantom_ds, tmp_path, capsys):
    out = tmp_path / "i.json"
    assert run_main(capsys, "--bids-dir", phantom_ds, "--type", "IMAGE", "--contrasts", "T1w", "-o", out,
                    "--check-geometry").returncode == 0
    cfg = load_config(out)
    assert cfg.type == "IMAGE" and cfg.contrasts == "t1"
    cases = cfg.cases()
    assert len(cases) == 4 and all(c.label is None and c.image.name.endswith("_T1w.nii.gz") for c in cases)


def test_bids_dir_needs_output(phantom_ds, capsys):
    proc = run_main(capsys, "--bids-dir", phantom_ds, "--label-dir", "ground_truth",
                    "--label-suffix", "_label-sacrum_seg", "--type", "LABEL", SEVERAL)
    assert_one_line_error(proc, "-o", code=2)


# ---------------------------------------------------------------- bad inputs
def _annex(path: Path, dataset: Path) -> None:
    """Turn ``path`` into a git-annex link whose content was never fetched."""
    key = f"MD5E-s1234--{abs(hash(path.name)):032x}.nii.gz"
    target = dataset / ".git" / "annex" / "objects" / "Xk" / "3q" / key / key
    path.unlink()
    path.symlink_to(os.path.relpath(target, path.parent))


def _bad_case(kind: str, ds: Path, tmp: Path) -> tuple[list[str], list[str], tuple[str, ...], int]:
    """(txt lines, extra args, expected needles, exit code) for one kind of bad input."""
    labels = seg_list(ds.parent)
    if kind == "missing file":
        return labels + [str(ds / GT / "sub-09/anat/sub-09_T2w_label-sacrum_seg.nii.gz")], [], \
            ("1 of 17", "sub-09_T2w_label-sacrum_seg.nii.gz", "file not found"), 1
    if kind == "label without image":
        (ds / "sub-03/anat/sub-03_T1w.nii.gz").unlink()
        return labels, [], ("2 of 16", "no image", "sub-03_T1w.nii.gz"), 1
    if kind == "ratio":
        return labels, ["--split-validation", "0.6", "--split-test", "0.4"], ("--split-validation",), 2
    if kind == "negative ratio":
        return labels, ["--split-test", "-0.1"], ("outside [0, 1)",), 2
    if kind == "mixed type":
        return labels + [str(ds / "sub-01/anat/sub-01_T1w.nii.gz")], [], ("--type LABEL", "an image, not a label"), 1
    if kind == "labels as images":
        return labels, ["--type", "IMAGE"], ("--type IMAGE", "not an image"), 1
    if kind == "not bids":
        extra = tmp / "notes" / "scan.nii.gz"
        extra.parent.mkdir()
        extra.write_bytes(b"x")
        return labels + [str(extra)], [], ("not a BIDS file name",), 1
    if kind == "annexed":
        _annex(ds / GT / "sub-01/anat/sub-01_T1w_label-sacrum_seg.nii.gz", ds)
        _annex(ds / "sub-03/anat/sub-03_acq-sag_T2w.nii.gz", ds)
        return labels, [], ("annexed", "datalad get", "--datalad-get", "sub-01_T1w_label-sacrum_seg"), 1
    if kind == "empty list":
        return ["# nothing yet", ""], [], ("lists no paths",), 1
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["missing file", "label without image", "ratio", "negative ratio", "mixed type",
                                  "labels as images", "not bids", "annexed", "empty list"])
def test_bad_input_one_line_no_json(kind, phantom_ds, tmp_path, capsys):
    lines, extra, needles, code = _bad_case(kind, phantom_ds, tmp_path)
    txt = write_txt(tmp_path / "train.txt", lines)
    args = ["--txt", txt, *extra] + ([] if "--type" in extra else ["--type", "LABEL", SEVERAL])
    proc = run_main(capsys, *args)
    assert_one_line_error(proc, *needles, code=code)
    assert not (tmp_path / "train.json").exists()


@pytest.mark.parametrize("kind", ["folder", "binary", "missing"])
def test_unreadable_txt(kind, tmp_path, cli):
    txt = tmp_path / "train.txt"
    if kind == "folder":
        txt.mkdir()
    elif kind == "binary":
        txt.write_bytes(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\xff\xfe")
    proc = cli("init_data_config", "--txt", txt, "--type", "LABEL", SEVERAL)
    needle = {"folder": "is a folder", "binary": "not a text file", "missing": "path list not found"}[kind]
    assert_one_line_error(proc, str(txt), needle)
    assert not (tmp_path / "train.json").exists()


def test_datalad_get_fetches_instead_of_failing(phantom_ds, tmp_path, monkeypatch):
    label = phantom_ds / GT / "sub-01/anat/sub-01_T1w_label-sacrum_seg.nii.gz"
    content = label.read_bytes()
    _annex(label, phantom_ds)
    fetched: list[Path] = []

    def fake_get(paths, get=False):  # stands in for `datalad get`
        assert get
        for p in paths:
            p.unlink()
            p.write_bytes(content)
            fetched.append(p)
        return list(paths)

    monkeypatch.setattr(idc.checks, "ensure_content", fake_get)  # the file check fetches
    cfg = idc.build_config(seg_list(phantom_ds.parent), datalad_get=True, allow_several_labels=True)
    assert fetched == [label] and sum(len(cfg[s]) for s in SPLITS) == 16


def test_check_geometry(phantom_ds, tmp_path, capsys):
    anat = phantom_ds / GT / "sub-01" / "anat"
    shifted = anat / "sub-01_T1w_label-sacrum_seg.nii.gz"
    vol = load_mask(shifted)
    moved = vol[1].copy()
    moved[:3, 3] += 5.0
    save_mask(vol[0], moved, shifted)
    nonbinary = anat / "sub-01_T1w_label-vertebraeL5_seg.nii.gz"
    data, aff = load_mask(nonbinary)
    save_mask(data * 2, aff, nonbinary)
    empty = anat / "sub-01_acq-sag_T2w_label-sacrum_seg.nii.gz"
    data, aff = load_mask(empty)
    save_mask(np.zeros_like(data), aff, empty)
    txt = write_txt(tmp_path / "g.txt", seg_list(phantom_ds.parent))
    proc = run_main(capsys, "--txt", txt, "--type", "LABEL", SEVERAL, "--check-geometry")
    assert_one_line_error(proc, "3 of 16", "origin differs", "not binary", "empty label", "--check-geometry warn")
    assert not (tmp_path / "g.json").exists()
    proc = run_main(capsys, "--txt", txt, "--type", "LABEL", SEVERAL, "--check-geometry", "warn")
    assert proc.returncode == 0 and proc.stderr.count("not binary") == 1
    assert (tmp_path / "g.json").exists()


def load_mask(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import nibabel as nib

    img = nib.load(str(path))
    return np.asarray(img.dataobj), img.affine


# ---------------------------------------------------------------- config format
def test_reads_legacy_config_with_datasets_path_override(phantom_ds, tmp_path, monkeypatch):
    parent = phantom_ds.parent
    rel = [os.path.relpath(p, parent) for p in seg_list(parent)]
    legacy = tmp_path / "legacy.json"
    legacy.write_text(json.dumps({"TYPE": "LABEL", "CONTRASTS": "t1_t2", "DATASETS_PATH": "/home/olduser/data",
                                  "TRAINING": rel[:12], "VALIDATION": rel[12:14], "TESTING": rel[14:]}, indent=4))
    with pytest.raises(InputError, match="16 config entries unusable"):
        load_config(legacy).cases()
    cases = load_config(legacy, datasets_path=parent).cases()
    assert len(cases) == 16 and all(c.image.exists() for c in cases)
    monkeypatch.setenv("TOTALSEG_BIDS_DATASETS_PATH", str(parent))
    assert [c.image for c in load_config(legacy).cases()] == [c.image for c in cases]


def test_datasets_path_option(phantom_ds, tmp_path, capsys):
    labels = seg_list(phantom_ds.parent)
    out = tmp_path / "d.json"
    assert run_main(capsys, "--txt", write_txt(tmp_path / "d.txt", labels), "--type", "LABEL", SEVERAL,
                    "--datasets-path", phantom_ds, "-o", out).returncode == 0
    cfg = json.loads(out.read_text(encoding="utf-8"))
    assert cfg["DATASETS_PATH"] == str(phantom_ds) and cfg["TRAINING"][0].startswith("derivatives/ground_truth/")
    assert len(load_config(out).cases()) == 16
    proc = run_main(capsys, "--txt", tmp_path / "d.txt", "--type", "LABEL", SEVERAL, "--datasets-path", tmp_path / "x",
                    "-o", tmp_path / "e.json")
    assert_one_line_error(proc, "outside")
    assert not (tmp_path / "e.json").exists()


def test_api_matches_cli_and_round_trips(phantom_ds, tmp_path, capsys):
    labels = seg_list(phantom_ds.parent)
    out = tmp_path / "c.json"
    proc = run_main(capsys, "--txt", write_txt(tmp_path / "c.txt", labels), "--type", "LABEL", SEVERAL,
                    "--seed", "7", "-o", out)
    assert proc.returncode == 0
    cfg = idc.build_config([Path(p) for p in reversed(labels)], type="LABEL", seed=7, allow_several_labels=True)
    written = json.loads(out.read_text(encoding="utf-8"))
    (record,) = [json.loads(line) for line in proc.stdout.splitlines()]
    assert record == {"stage": "init_data_config", "status": "written", "path": str(out), "type": "LABEL",
                      "counts": written["COUNTS"]}
    options = idc.InitConfigOptions(type="label", seed=7, allow_several_labels=True, check_geometry=False)
    assert (options.type, options.check_geometry) == ("LABEL", None)
    assert idc.build_config([Path(p) for p in labels], options)["TRAINING"] == written["TRAINING"]
    with pytest.raises(TypeError):
        idc.build_config(labels, options, seed=8)
    for d in (cfg, written):
        d["GeneratedBy"].pop("Date")
    assert cfg == written
    again = idc.write_config(cfg, tmp_path / "api.json")
    assert load_config(again).extra["SEED"] == 7


# ---------------------------------------------------------------- split properties
ratio_pairs = st.tuples(st.floats(0, 0.6), st.floats(0, 0.6)).filter(lambda r: r[0] + r[1] < 0.95)


@st.composite
def entry_sets(draw):
    """Datasets -> subjects -> files, as config entries."""
    entries = []
    for d in range(draw(st.integers(1, 3))):
        for s, n_files in enumerate(draw(st.lists(st.integers(1, 4), min_size=1, max_size=9))):
            for f in range(n_files):
                path = f"ds{d}/sub-{s:02d}/anat/sub-{s:02d}_run-{f}_T2w.nii.gz"
                entries.append(idc.Entry(path, f"ds{d}", f"{s:02d}"))
    return entries


def _within_one(units: list, ratios, assigned: dict) -> None:
    n = len(units)
    for split, r in zip(SPLITS, ratios):
        got = sum(assigned[u] == split for u in units)
        assert abs(got - n * Fraction(r)) < 1, (split, got, n, r)
    if n:
        assert any(assigned[u] == "TRAINING" for u in units)


@settings(max_examples=150, deadline=None)
@given(entries=entry_sets(), ratio=ratio_pairs, seed=st.integers(0, 2**32), split_by=st.sampled_from(idc.SPLIT_BY),
       stratify=st.sampled_from([None, "dataset"]))
def test_split_properties(entries, ratio, seed, split_by, stratify):
    ratios = idc.validate_ratios(*ratio)
    out = idc.assign_splits(entries, ratios, seed=seed, split_by=split_by, stratify=stratify)
    flat = [p for s in SPLITS for p in out[s]]
    assert Counter(flat) == Counter(e.path for e in entries)  # nothing dropped, nothing duplicated
    split_of = {p: s for s in SPLITS for p in out[s]}
    assigned: dict[tuple[str, str], str] = {}
    for e in entries:
        unit = idc.split_unit(e, split_by)
        assert assigned.setdefault(unit, split_of[e.path]) == split_of[e.path]  # no unit in two splits
    groups = defaultdict(list)
    for unit in assigned:
        groups[unit[0] if stratify else ""].append(unit)
    for units in groups.values():  # per dataset when stratified
        _within_one(units, ratios, assigned)
    shuffled = list(entries)
    random.Random(seed).shuffle(shuffled)
    assert idc.assign_splits(shuffled, ratios, seed=seed, split_by=split_by, stratify=stratify) == out


@settings(max_examples=300, deadline=None)
@given(n=st.integers(0, 500), ratio=ratio_pairs)
def test_split_counts_properties(n, ratio):
    ratios = idc.validate_ratios(*ratio)
    counts = idc.split_counts(n, ratios)
    assert sum(counts) == n and min(counts) >= 0
    assert all(abs(c - n * r) < 1 for c, r in zip(counts, ratios))
    assert n == 0 or counts[0] >= 1


def test_different_seeds_usually_differ():
    entries = [idc.Entry(f"ds/sub-{s:02d}/anat/sub-{s:02d}_T2w.nii.gz", "ds", f"{s:02d}") for s in range(20)]
    ratios = idc.validate_ratios(0.2, 0.2)
    results = [json.dumps(idc.assign_splits(entries, ratios, seed=seed)) for seed in range(10)]
    assert len(set(results)) >= 8
    assert results[3] == json.dumps(idc.assign_splits(entries, ratios, seed=3))


def test_stratification_keeps_dataset_proportions():
    entries = [idc.Entry(f"{d}/sub-{s:02d}/anat/sub-{s:02d}_T2w.nii.gz", d, f"{s:02d}")
               for d, n in (("big", 40), ("small", 10)) for s in range(n)]
    out = idc.assign_splits(entries, idc.validate_ratios(0.2, 0.2), seed=0, stratify="dataset")
    per = {s: Counter(p.split("/")[0] for p in out[s]) for s in SPLITS}
    assert per["TRAINING"] == {"big": 24, "small": 6}
    assert per["VALIDATION"] == {"big": 8, "small": 2} and per["TESTING"] == {"big": 8, "small": 2}
