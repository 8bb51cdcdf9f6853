"""datalad / git-annex integration with the real tools, no mocks.

Core level: annexed files without content are detected, reported with the
``datalad get`` command, fetched on request, and outputs are saved in one
commit. Stage level: ``register`` on a clone without content, with
``--datalad-get`` / ``--datalad-save``, under ``datalad run`` (through
``scripts/lib/datalad_run.sh``) and ``datalad rerun``.

git needs an identity to commit and CI machines may have none: every test here
runs with ``GIT_AUTHOR_*``/``GIT_COMMITTER_*`` set in the environment, which the
datalad/git subprocesses inherit.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support import REPO, assert_one_line_error, run_module
from support.datalad import IDENTITY, QUIET, check_shared_options, git, n_commits

from totalseg_bids.core import datalad as cdl
from totalseg_bids.core.errors import AnnexContentMissingError, ExternalToolError
from totalseg_bids.core.nifti import check_input_file, load_image, load_label, save_mask

dl = pytest.importorskip("datalad.api", reason="the datalad extra is part of the test install")

@pytest.fixture(scope="module", autouse=True)
def git_identity():
    """A git identity for this module's commits (CI may have no ~/.gitconfig)."""
    assert cdl.git_annex_available(), "git-annex is required (scripts/install.sh installs it)"
    with pytest.MonkeyPatch.context() as mp:
        for key, value in IDENTITY.items():
            mp.setenv(key, value)
        mp.delenv(cdl.GET_ENV, raising=False)
        yield


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def annexed_niftis(ds: Path) -> list[Path]:
    """Every annexed ``.nii.gz`` of a dataset (raw and derivatives), sorted."""
    return sorted(p for p in ds.rglob("*.nii.gz") if ".git" not in p.relative_to(ds).parts)


@pytest.fixture(scope="module")
def origin(tmp_path_factory) -> Path:
    """A datalad dataset holding a 2-subject phantom, every file annexed and saved.

    CT at 2 mm keeps generation at a few seconds; the register stage does not
    care about the CT resolution.
    """
    from totalseg_bids.testing.phantoms import generate

    path = tmp_path_factory.mktemp("datalad") / "origin"
    dl.create(path=str(path), cfg_proc=None, **QUIET)
    generate(path, subjects=2, ct_spacing=2.0, seed=3)
    dl.save(dataset=str(path), message="phantom dataset", **QUIET)
    assert git(path, "status", "--porcelain") == ""
    # no lock or temporary files end up in the dataset (a clone would hold dangling links)
    assert not [f for f in git(path, "ls-files").splitlines()
                if Path(f).name.startswith((".tmp-", ".totalseg_bids", ".lock"))]
    return path


@pytest.fixture
def clone(origin, tmp_path) -> Path:
    """A clone of ``origin``: every annexed file is a broken symlink, gettable from origin."""
    path = tmp_path / "clone"
    dl.clone(source=str(origin), path=str(path), **QUIET)
    return path


# ------------------------------------------------------------------ core level
def test_drop_last_copy_leaves_broken_links(tmp_path):
    ds = tmp_path / "ds"
    dl.create(path=str(ds), cfg_proc=None, **QUIET)
    files = [ds / "sub-01" / "anat" / f"sub-01_{s}.nii.gz" for s in ("T1w", "T2w", "CT")]
    for i, f in enumerate(files):
        f.parent.mkdir(parents=True, exist_ok=True)
        save_mask(np.full((3, 4, 5), i + 1, np.uint8), np.eye(4), f)
    dl.save(dataset=str(ds), message="three images", **QUIET)
    assert all(f.is_symlink() and f.exists() for f in files)
    assert cdl.missing_content(files) == []
    assert cdl.is_datalad_dataset(files[0]) and cdl.dataset_of(files[0]) == ds
    assert not cdl.is_datalad_dataset(tmp_path / "elsewhere" / "x.nii.gz")

    # a plain drop refuses: this is the only copy
    res = dl.drop(path=str(files[0]), dataset=str(ds), on_failure="ignore", return_type="list", **QUIET)
    assert [r["status"] for r in res if r.get("action") == "drop"] != ["ok"] and files[0].exists()
    dl.drop(path=[str(f) for f in files[:2]], dataset=str(ds), reckless="kill", **QUIET)

    assert [f.is_symlink() and not f.exists() for f in files] == [True, True, False]
    assert cdl.missing_content(files) == files[:2]
    for reader in (load_image, load_label, check_input_file):
        with pytest.raises(AnnexContentMissingError) as err:
            reader(files[0])
        assert f"datalad get {files[0]}" in str(err.value) and "\n" not in str(err.value)
    assert load_label(files[2]).data.max() == 3

    with pytest.raises(AnnexContentMissingError) as err:
        cdl.ensure_content(files, get=False)
    msg = str(err.value)
    assert "\n" not in msg and "2 file(s)" in msg and "--datalad-get" in msg
    assert f"datalad get {files[0]} {files[1]}" in msg
    assert isinstance(err.value, FileNotFoundError)

    # no other copy exists: getting fails with one clear error, not a gzip error
    with pytest.raises((AnnexContentMissingError, ExternalToolError)) as err:
        cdl.ensure_content(files, get=True)
    assert "\n" not in str(err.value) and str(files[0]) in str(err.value)


def test_get_in_clone_fetches_exactly_the_requested_files(origin, clone, monkeypatch):
    niftis = annexed_niftis(clone)
    assert len(niftis) >= 12 and cdl.missing_content(niftis) == niftis
    wanted = [p for p in niftis if p.name.endswith("_T2w.nii.gz") and "derivatives" not in p.parts
              or p.name.endswith("_CT_label-sacrum_seg.nii.gz") and "labels" in p.parts]
    assert len(wanted) == 4  # 2 subjects x (T2w image, CT label)

    with pytest.raises(AnnexContentMissingError, match="datalad get"):
        cdl.ensure_content(wanted, get=cdl.get_requested(False))
    monkeypatch.setenv(cdl.GET_ENV, "1")
    assert cdl.get_requested(False) and cdl.get_requested(True)
    fetched = cdl.ensure_content(wanted, get=cdl.get_requested(False))

    assert fetched == wanted
    # git-annex stores content by key (checksum): a file identical to a fetched one
    # (the phantom's ground truth equals its CT labels) has its content too
    keys = {os.path.basename(os.readlink(p)) for p in wanted}
    assert cdl.missing_content(niftis) == [p for p in niftis if os.path.basename(os.readlink(p)) not in keys]
    for p in wanted:
        assert sha256(p) == sha256(origin / p.relative_to(clone))
    assert load_image(wanted[0]).data.ndim == 3
    assert cdl.ensure_content(wanted, get=True) == []  # nothing left to fetch
    assert git(clone, "status", "--porcelain") == ""  # get never modifies the dataset


def test_unlocked_pointer_file_detected_and_fetched(tmp_path):
    """Unlocked annexed files without content are small pointer files, not links."""
    src = tmp_path / "src"
    dl.create(path=str(src), cfg_proc=None, **QUIET)
    img = src / "sub-01" / "anat" / "sub-01_T2w.nii.gz"
    img.parent.mkdir(parents=True)
    save_mask(np.arange(60, dtype=np.uint8).reshape(3, 4, 5), np.eye(4), img)
    dl.save(dataset=str(src), message="image", **QUIET)
    # commit the unlocked state with git (``datalad save`` would lock the file again)
    git(src, "annex", "unlock", str(img.relative_to(src)))
    git(src, "commit", "-q", "-m", "unlocked", str(img.relative_to(src)))

    dst = tmp_path / "dst"
    dl.clone(source=str(src), path=str(dst), **QUIET)
    pointer = dst / img.relative_to(src)
    assert not pointer.is_symlink() and pointer.stat().st_size < 1024
    assert cdl.is_annex_pointer(pointer)
    with pytest.raises(AnnexContentMissingError, match="datalad get"):
        load_label(pointer)
    assert cdl.ensure_content([pointer], get=True) == [pointer]
    assert not cdl.is_annex_pointer(pointer)
    assert np.array_equal(load_label(pointer).data, np.arange(60).reshape(3, 4, 5))


def test_save_outputs_is_one_commit_per_batch(clone):
    before = n_commits(clone)
    cdl.save_outputs(clone, [], "nothing")
    assert n_commits(clone) == before
    out = clone / "derivatives" / "reg-labels"
    paths = []
    for sub in ("01", "02"):
        for s in ("sacrum", "total"):
            p = out / f"sub-{sub}" / "anat" / f"sub-{sub}_T2w_label-{s}_seg.nii.gz"
            p.parent.mkdir(parents=True, exist_ok=True)
            save_mask(np.ones((2, 2, 2), np.uint8), np.eye(4), p)
            p.with_name(p.name.replace(".nii.gz", ".json")).write_text(json.dumps({"Sources": []}))
            paths += [p, p.with_name(p.name.replace(".nii.gz", ".json"))]
    (out / "dataset_description.json").write_text("{}")
    paths.append(out / "dataset_description.json")

    cdl.save_outputs(clone, paths, "register: 4 labels")
    assert n_commits(clone) == before + 1
    assert git(clone, "log", "-1", "--format=%s") == "register: 4 labels"
    assert git(clone, "status", "--porcelain") == ""
    changed = git(clone, "show", "--name-only", "--format=", "HEAD").splitlines()
    assert sorted(changed) == sorted(str(p.relative_to(clone)) for p in paths)
    assert git(clone, "log", "-1", "--format=%an") == IDENTITY["GIT_AUTHOR_NAME"]


# --------------------------------------------------------- scripts/lib/datalad_run.sh
RUN_STEP = REPO / "scripts" / "lib" / "datalad_run.sh"


def run_step(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """``source datalad_run.sh; run_step ARGS`` in a strict bash, as the drivers do."""
    script = f'set -euo pipefail; source "{RUN_STEP}"; run_step "$@"'
    full_env = dict(os.environ, **IDENTITY)
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env or {})
    return subprocess.run(["bash", "-c", script, "run_step", *map(str, args)], cwd=cwd, env=full_env,
                          capture_output=True, encoding="utf-8", errors="replace", timeout=300, check=False)


def run_record(ds: Path, rev: str = "HEAD") -> dict:
    """The JSON run record datalad writes into a ``[DATALAD RUNCMD]`` commit message."""
    body = git(ds, "log", "-1", "--format=%B", rev)
    assert body.startswith("[DATALAD RUNCMD]") and "=== Do not change lines below ===" in body, body
    return json.loads(body.split("=== Do not change lines below ===")[1].split("^^^ Do not change")[0])


def test_run_step_direct_and_under_datalad_run(tmp_path):
    upper = ["python3", "-c", ("import pathlib as p; o = p.Path('out dir'); o.mkdir(exist_ok=True); "
                               "(o / 'o.txt').write_text(p.Path('in.txt').read_text(encoding='utf-8').upper())")]
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "in.txt").write_text("abc\n")
    proc = run_step(plain, "in.txt", "--", "out dir", "--", *upper, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (plain / "out dir" / "o.txt").read_text(encoding="utf-8") == "ABC\n" and not (plain / ".git").exists()

    ds = tmp_path / "ds"
    dl.create(path=str(ds), cfg_proc=None, **QUIET)
    (ds / "in.txt").write_text("abc\n")
    dl.save(dataset=str(ds), message="input", **QUIET)
    before = n_commits(ds)
    proc = run_step(ds, "in.txt", "--", "out dir", "--", *upper, cwd=tmp_path,
                    env={"TOTALSEG_BIDS_RUN_MESSAGE": "uppercase step"})
    assert proc.returncode == 0, proc.stderr
    assert n_commits(ds) == before + 1 and git(ds, "status", "--porcelain") == ""
    assert git(ds, "log", "-1", "--format=%s") == "[DATALAD RUNCMD] uppercase step"
    record = run_record(ds)
    assert record["inputs"] == ["in.txt"] and record["outputs"] == ["out dir"] and record["pwd"] == "."
    assert record["cmd"].startswith("python3 -c ") and record["exit"] == 0
    assert (ds / "out dir" / "o.txt").read_text(encoding="utf-8") == "ABC\n"

    # a failing command fails the step (and datalad records nothing)
    proc = run_step(ds, "--", "--", "python3", "-c", "raise SystemExit(3)", cwd=tmp_path)
    assert proc.returncode != 0 and n_commits(ds) == before + 1
    # usage errors
    for bad in ([ds, "in.txt"], [ds, "--", "x"], [ds, "--", "--"], [tmp_path / "nope", "--", "--", "true"]):
        proc = run_step(*bad, cwd=tmp_path)
        assert proc.returncode == 2 and "run_step: error:" in proc.stderr, (bad, proc.stderr)


# ------------------------------------------------------------------ stage level
MRI_GLOBS = ("sub-*/anat/*_T1w.nii.gz", "sub-*/anat/*_T2w.nii.gz")
CT_LABEL_GLOB = "derivatives/labels/sub-*/anat/*_CT_label-sacrum_seg.nii.gz"


def key_of(path: Path) -> str:
    """The git-annex key of an annexed (locked) file: the name its symlink points to."""
    return os.path.basename(os.readlink(path))


def keys_present(ds: Path) -> set[str]:
    """Keys whose content this repository holds."""
    return set(git(ds, "annex", "find", "--in", "here", "--format=${key}\\n").split())


def register_inputs(ds: Path, ct_images: bool = False) -> list[Path]:
    globs = MRI_GLOBS + (CT_LABEL_GLOB,) + (("sub-*/anat/*_CT.nii.gz",) if ct_images else ())
    return sorted(p for g in globs for p in ds.glob(g))


@pytest.mark.slow
def test_register_in_clone_without_get_then_get_and_save(clone, cli):
    inputs = register_inputs(clone)
    assert len(inputs) == 6 and keys_present(clone) == set()
    proc = cli("register", "--path-img", clone, env=IDENTITY)
    assert_one_line_error(proc, "annexed file content is not present", "datalad get", str(clone))
    assert keys_present(clone) == set()

    before = n_commits(clone)
    proc = cli("register", "--path-img", clone, "--datalad-get", "--datalad-save", "-j", "1", env=IDENTITY)
    assert proc.returncode == 0, proc.stderr
    assert n_commits(clone) == before + 1
    message = git(clone, "log", "-1", "--format=%B")
    # the message is the command line: the stage and its arguments
    assert message.startswith("python -m totalseg_bids.register --path-img ") and "--datalad-save" in message
    assert git(clone, "status", "--porcelain") == ""
    saved = git(clone, "show", "--name-only", "--format=", "HEAD").splitlines()
    assert sorted(saved) == sorted(str(p.relative_to(clone)) for p in (clone / "derivatives" / "reg-labels").rglob("*")
                                   if p.is_file() or p.is_symlink())
    assert sum(s.endswith("_label-sacrum_seg.nii.gz") for s in saved) == 4
    # exactly the inputs (MRIs and CT labels; no CT image for --method header) were fetched
    assert keys_present(clone) == {key_of(p) for p in inputs} | {key_of(clone / s) for s in saved}


@pytest.mark.slow
def test_register_rigid_gets_the_ct_image_too(clone, cli):
    mri = clone / "sub-01" / "anat" / "sub-01_acq-sag_T2w.nii.gz"
    label = clone / "derivatives" / "labels" / "sub-01" / "anat" / "sub-01_CT_label-sacrum_seg.nii.gz"
    ct = clone / "sub-01" / "anat" / "sub-01_CT.nii.gz"
    proc = cli("register", "--path-img", clone, "--mri", mri, "--ct-label", label, "--method", "rigid",
               "--path-out", clone.parent / "rigid", env={**IDENTITY, cdl.GET_ENV: "1"})
    assert proc.returncode == 0, proc.stderr
    assert keys_present(clone) == {key_of(mri), key_of(label), key_of(ct)}
    assert len(list((clone.parent / "rigid").rglob("*_xfm.txt"))) == 1


@pytest.mark.slow
def test_register_under_datalad_run_then_rerun_reproduces(clone, monkeypatch):
    inputs = [*MRI_GLOBS, CT_LABEL_GLOB]
    cmd = [sys.executable, "-m", "totalseg_bids.register", "--path-img", ".", "-j", "1"]
    proc = run_step(clone, *inputs, "--", "derivatives/reg-labels", "--", *cmd, cwd=clone.parent)
    assert proc.returncode == 0, proc.stderr
    assert git(clone, "log", "-1", "--format=%s") == "[DATALAD RUNCMD] totalseg_bids: register step"
    record = run_record(clone)
    assert record["cmd"].endswith("-m totalseg_bids.register --path-img . -j 1 --overwrite") and record["exit"] == 0
    assert record["inputs"] == inputs and record["outputs"] == ["derivatives/reg-labels"]
    assert record["pwd"] == "."
    assert git(clone, "status", "--porcelain") == ""
    out = clone / "derivatives" / "reg-labels"
    first = {str(p.relative_to(clone)): sha256(p) for p in sorted(out.rglob("*.nii.gz"))}
    sidecars = {str(p.relative_to(clone)): p for p in sorted(out.rglob("*.json"))}
    first_json = {k: json.loads(p.read_text(encoding="utf-8")) for k, p in sidecars.items()}
    assert len(first) == 4

    # replay the run on a branch started at its parent commit: the outputs are made anew
    run_commit = git(clone, "rev-parse", "HEAD")
    monkeypatch.setenv("PYTHONPATH", str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    dl.rerun(revision=run_commit, onto="", branch="rerun-check", dataset=str(clone), **QUIET)
    assert git(clone, "rev-parse", "--abbrev-ref", "HEAD") == "rerun-check"
    assert git(clone, "rev-parse", "HEAD") != run_commit
    assert git(clone, "rev-parse", "HEAD^") == git(clone, "rev-parse", f"{run_commit}^")
    assert {str(p.relative_to(clone)): sha256(p) for p in sorted(out.rglob("*.nii.gz"))} == first
    # identical annex keys = identical bytes; sidecars differ in their dates only
    assert git(clone, "diff", "--name-only", run_commit, "HEAD", "--", "*.nii.gz") == ""

    def undated(d):
        return {k: undated(v) for k, v in d.items() if k != "Date"} if isinstance(d, dict) else (
            [undated(v) for v in d] if isinstance(d, list) else d)
    for rel, before in first_json.items():
        assert undated(json.loads((clone / rel).read_text(encoding="utf-8"))) == undated(before), rel


def docs_block(marker: str) -> str:
    """The first ```bash block of docs/scaling.md that contains ``marker``, verbatim."""
    text = (REPO / "docs" / "scaling.md").read_text(encoding="utf-8")
    blocks = [b.split("```", 1)[0] for b in text.split("```bash\n")[1:]]
    return next(b for b in blocks if marker in b)


@pytest.mark.slow
def test_documented_run_step_with_sessions_then_rerun_in_place_is_clean(tmp_path):
    """The docs/scaling.md example, verbatim, on a dataset with ses-* folders; an in-place
    ``datalad rerun`` recomputes (the record carries --overwrite) and changes nothing."""
    from totalseg_bids.testing.phantoms import generate

    ds = tmp_path / "ds"
    dl.create(path=str(ds), cfg_proc=None, **QUIET)
    generate(ds, subjects=2, sessions=2, mixed_sessions=True, ct_spacing=2.0, seed=3)
    dl.save(dataset=str(ds), message="phantom dataset", **QUIET)
    assert list(ds.glob("sub-*/ses-*/anat/*_T[12]w.nii.gz"))
    env = dict(os.environ, **IDENTITY, bids=str(ds), SOURCE_DATE_EPOCH="1700000000",
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    script = "set -euo pipefail\n" + docs_block("run_step").replace("-j 4", "-j 1")
    proc = subprocess.run(["bash", "-c", script], cwd=REPO, env=env, capture_output=True, encoding="utf-8",
                          errors="replace", timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    record = run_record(ds)
    assert record["cmd"].endswith("--overwrite")
    out = ds / "derivatives" / "reg-labels"
    mris = sorted(ds.glob("sub-*/**/anat/*_T[12]w.nii.gz"))
    labels = sorted(out.rglob("*_seg.nii.gz"))
    assert len(labels) == len(mris) and any("ses-" in str(p) for p in labels)
    head = git(ds, "rev-parse", "HEAD")

    proc = subprocess.run(["datalad", "rerun"], cwd=ds, env=env, capture_output=True, encoding="utf-8",
                          errors="replace", timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    assert git(ds, "rev-parse", "HEAD") == head  # deterministic: no change, no commit
    assert git(ds, "status", "--porcelain") == ""
    assert f"{len(mris)} written, 0 skipped" in proc.stdout + proc.stderr  # really recomputed
    assert "save (notneeded" in proc.stdout


CROP_CT = ("--path-img", ".", "--contrasts", "CT", "--roi-dir", "labels", "--roi-label", "sacrum",
           "--naming", "bids", "-j", "1")


def test_crop_takes_the_shared_datalad_options(clone):
    """crop refuses absent content naming --datalad-get, fetches with
    TOTALSEG_BIDS_DATALAD_GET=1, saves with --datalad-save, and a resumed run
    (everything skipped) saves what an earlier run left unsaved and says so."""
    env = {**IDENTITY, "TOTALSEG_BIDS_NO_PROGRESS": "1"}
    proc = run_module("crop", *CROP_CT, env=env, cwd=clone)
    assert_one_line_error(proc, "annexed file content is not present", "--datalad-get")

    # fetched through the environment variable; outputs left unsaved
    proc = run_module("crop", *CROP_CT, env={**env, "TOTALSEG_BIDS_DATALAD_GET": "1"}, cwd=clone)
    assert proc.returncode == 0, proc.stderr
    assert git(clone, "status", "--porcelain", "--untracked-files=all")
    before = n_commits(clone)
    # resumed: every image skipped, yet --datalad-save saves the unsaved outputs in one commit
    proc = run_module("crop", *CROP_CT, "--datalad-save", env=env, cwd=clone)
    assert proc.returncode == 0, proc.stderr
    assert "already done" in proc.stderr and "--datalad-save: saved" in proc.stderr
    assert n_commits(clone) == before + 1 and git(clone, "status", "--porcelain") == ""
    saved = git(clone, "show", "--name-only", "--format=", "HEAD").splitlines()
    assert "derivatives/cropped/.bidsignore" in saved
    assert any(f.endswith("_desc-cropped_CT.nii.gz") for f in saved)
    # nothing left to save: no commit, and it says so
    proc = run_module("crop", *CROP_CT, "--datalad-save", env=env, cwd=clone)
    assert proc.returncode == 0 and "everything is saved already" in proc.stderr, proc.stderr
    assert n_commits(clone) == before + 1


# ------------------------------------------ the shared options in every stage
def ct_label_config(ds: Path) -> Path:
    """A LABEL config (outside the dataset) of the CT sacrum labels: images and labels annexed."""
    labels = sorted(str(p.relative_to(ds.parent)) for p in ds.glob(CT_LABEL_GLOB))
    cfg = ds.parent / "ct_sacrum.json"
    cfg.write_text(json.dumps({"TYPE": "LABEL", "CONTRASTS": "", "DATASETS_PATH": str(ds.parent),
                               "TRAINING": labels[:1], "VALIDATION": labels[1:]}))
    return cfg


def test_stats_takes_the_shared_datalad_options(clone):
    cfg = ct_label_config(clone)
    check_shared_options(clone, "stats", ["--config", cfg, "-o", "derivatives/stats/stats.tsv",
                                          "--json", "derivatives/stats/stats.json", "-j", "1"],
                         ["derivatives/stats/"])
    assert json.loads((clone / "derivatives" / "stats" / "stats.json").read_text(encoding="utf-8"))


def test_slices_takes_the_shared_datalad_options(clone):
    saved = check_shared_options(clone, "slices", ["--config", ct_label_config(clone), "--out", "derivatives/slices",
                                                   "--only-labelled", "--empty-fraction", "0", "--window", "bone",
                                                   "-j", "1"], ["derivatives/slices/"])
    assert "derivatives/slices/slices.tsv" in saved and any(f.endswith(".png") for f in saved)


def test_convert_takes_the_shared_datalad_options(clone):
    """An nnU-Net raw folder kept inside the dataset is saved there like any other output."""
    saved = check_shared_options(clone, "convert_config_to_nnunet",
                                 ["--config", ct_label_config(clone), "--path-out", "derivatives/nnUNet_raw",
                                  "-dnum", "321", "-j", "1"], ["derivatives/nnUNet_raw/"])
    assert any(f.endswith("dataset.json") for f in saved) and any("/labelsTr/" in f for f in saved), saved


def test_qc_takes_the_shared_datalad_options(clone):
    labels = [str(p.relative_to(clone)) for p in sorted(clone.glob(CT_LABEL_GLOB))]
    saved = check_shared_options(clone, "qc", ["--labels", *labels, "--qc", "derivatives/qc"], ["derivatives/qc/"])
    assert "derivatives/qc/index.html" in saved


def test_segment_ct_from_existing_takes_the_shared_datalad_options(clone):
    """The CTs are annexed; the imported TotalSegmentator outputs live outside the dataset."""
    from totalseg_bids.core.nifti import load_label as read

    existing = clone.parent / "ts_out"
    for ct in sorted(clone.glob("sub-*/anat/*_CT.nii.gz")):
        label = clone / "derivatives" / "labels" / ct.parent.relative_to(clone) / ct.name.replace(
            "_CT.nii.gz", "_CT_label-sacrum_seg.nii.gz")
        cdl.ensure_content([label], get=True)
        lab = read(label)
        (existing / ct.name[:-7]).mkdir(parents=True)
        save_mask(lab.data, lab.affine, existing / ct.name[:-7] / "sacrum.nii.gz")
    saved = check_shared_options(clone, "segment_ct", ["--path-img", ".", "--from-existing", existing,
                                                       "--path-out", "derivatives/imported", "-j", "1"],
                                 ["derivatives/imported/"], per_item=True)
    assert sum(f.endswith("_label-sacrum_seg.nii.gz") for f in saved) == 2
    assert "derivatives/imported/dataset_description.json" in saved


def test_register_resumed_save_takes_the_shared_datalad_options(clone):
    saved = check_shared_options(clone, "register", ["--path-img", ".", "--contrasts", "T2w", "-j", "1"],
                                 ["derivatives/reg-labels/"])
    assert sum(f.endswith("_T2w_label-sacrum_seg.nii.gz") for f in saved) == 2


@pytest.mark.slow
def test_demo_data_pipeline_under_datalad_run_reruns_identically(tmp_path):
    """The demo's deterministic stages, each a ``run_step`` (``datalad run``) in one dataset:
    phantoms, TotalSegmentator outputs imported by segment_ct, register (rigid),
    init_data_config, convert_config_to_nnunet. ``datalad rerun`` of the whole range
    recomputes every step and finds nothing to commit: byte-identical outputs."""
    ds = tmp_path / "ds"
    dl.create(path=str(ds), cfg_proc=None, **QUIET)
    py, env = sys.executable, {"SOURCE_DATE_EPOCH": "1700000000", "TOTALSEG_BIDS_NO_PROGRESS": "1"}
    start = git(ds, "rev-parse", "HEAD")
    stand_in = ("from pathlib import Path; "
                "from totalseg_bids.testing.demo import stand_in_totalsegmentator_output as s; "
                "s(Path('.'), Path('sourcedata/totalseg'))")
    steps = [
        ["--", "sub-01", "sub-02", "derivatives/ground_truth", "--", py, "-m", "totalseg_bids.phantoms",
         "--out", ".", "--subjects", "2", "--seed", "0", "--ct-spacing", "2", "--misalign-mm", "4",
         "--misalign-deg", "3", "--misalign-fraction", "0.5", "--no-ct-labels", "-q"],
        ["derivatives/ground_truth", "--", "sourcedata/totalseg", "--", py, "-c", stand_in],
        ["sourcedata/totalseg", "sub-*/anat/*_CT.nii.gz", "--", "derivatives/labels", "--", py, "-m",
         "totalseg_bids.segment_ct", "--path-img", ".", "--classes", "sacrum", "--from-existing",
         "sourcedata/totalseg", "-j", "1"],
        ["sub-*/**/anat/*", "derivatives/labels", "--", "derivatives/reg-labels", "--", py, "-m",
         "totalseg_bids.register", "--path-img", ".", "--method", "rigid", "-j", "1"],
        ["derivatives/reg-labels", "--", "code/config.json", "--", py, "-m", "totalseg_bids.init_data_config",
         "--bids-dir", ".", "--label-dir", "reg-labels", "--label-suffix", "_label-sacrum_seg", "--type",
         "LABEL", "--split-validation", "0.25", "--split-test", "0.25", "--seed", "0", "-o", "code/config.json"],
        ["code/config.json", "--", "code/nnUNet_raw", "--", py, "-m", "totalseg_bids.convert_config_to_nnunet",
         "--config", "code/config.json", "--path-out", "code/nnUNet_raw", "-dnum", "501", "-dname", "Sacrum",
         "--labels", "sacrum"],
    ]
    for step in steps:
        proc = run_step(ds, *step, cwd=tmp_path, env=env)
        assert proc.returncode == 0, (step, proc.stderr[-3000:])
    assert git(ds, "status", "--porcelain") == ""
    head = git(ds, "rev-parse", "HEAD")
    assert n_commits(ds) == int(git(ds, "rev-list", "--count", start)) + len(steps)
    assert len(list((ds / "code" / "nnUNet_raw").rglob("*.nii.gz"))) >= 4
    assert len(list((ds / "derivatives" / "reg-labels").rglob("*_xfm.txt"))) == 4

    full_env = dict(os.environ, **IDENTITY, **env,
                    PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(["datalad", "rerun", "--since", start], cwd=ds, env=full_env, capture_output=True,
                          encoding="utf-8", errors="replace", timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert git(ds, "rev-parse", "HEAD") == head, git(ds, "log", "--stat", f"{head}..HEAD")  # nothing changed
    assert git(ds, "status", "--porcelain", "--untracked-files=all") == ""
    # every step ran again (register recomputed its 4 labels) and no save found anything to commit
    assert proc.stdout.count("run(ok):") == len(steps), proc.stdout[-3000:]
    assert f"save (notneeded: {len(steps)})" in proc.stdout, proc.stdout[-3000:]
    assert "4 written, 0 skipped" in proc.stdout + proc.stderr
