"""Crash safety: SIGKILL a running batch, then re-run.

A batch is started as a real process, stopped right after its first output is in place under its
final name (its file-placing calls are wrapped to wait there), killed there with SIGKILL, and then:

* no truncated or half-written file is present under a final name: every
  ``.nii.gz`` loads completely, every ``.json`` parses (``.tmp-*`` files are
  allowed, they are temporaries by name);
* re-running the same command completes (exit 0) and adds no ``.tmp-*`` of its
  own (the killed run's are ignored: temporaries by name, skipped by indexes);
* the outputs then equal those of an uninterrupted run (voxel data, affines,
  sidecars apart from their dates).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from support import REPO, run_module

TMP_PREFIX = ".tmp-"


def clone_subject(ds: Path, src: str, dst: str) -> None:
    """Copy subject ``src`` (raw files and derivatives) as subject ``dst``, renaming files."""
    for root in [ds, *[p for p in (ds / "derivatives").iterdir() if p.is_dir()]]:
        folder = root / f"sub-{src}"
        if not folder.is_dir():
            continue
        for f in folder.rglob("*"):
            if f.is_file():
                rel = f.relative_to(root).as_posix().replace(f"sub-{src}", f"sub-{dst}")
                out = root / rel
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, out)


@pytest.fixture(scope="module")
def six_subjects(phantom_template, tmp_path_factory) -> Path:
    """Six subjects (eight subject/sessions) without generating new phantoms."""
    ds = tmp_path_factory.mktemp("crash") / "ds"
    shutil.copytree(phantom_template, ds, symlinks=True)
    clone_subject(ds, "01", "04")
    clone_subject(ds, "03", "05")
    clone_subject(ds, "01", "06")
    return ds


def final_files(root: Path) -> list[Path]:
    """Files under final names (not inside a ``.tmp-*`` staging folder)."""
    return sorted(p for p in root.rglob("*") if p.is_file()
                  and not any(part.startswith(TMP_PREFIX) for part in p.relative_to(root).parts))


def assert_no_half_written(root: Path) -> None:
    for p in final_files(root):
        if p.name.endswith(".nii.gz"):
            img = nib.load(str(p))
            np.asanyarray(img.dataobj)  # raises on a truncated gzip stream
        elif p.suffix == ".json":
            json.loads(p.read_text(encoding="utf-8"))


def comparable(root: Path) -> dict[str, object]:
    """File -> content that must be equal between two runs (dates and paths removed)."""
    out = {}
    for p in final_files(root):
        rel = p.relative_to(root).as_posix()
        if p.name.endswith(".nii.gz"):
            img = nib.load(str(p))
            out[rel] = (np.asanyarray(img.dataobj).tobytes(), np.round(img.affine, 6).tobytes(),
                        str(img.get_data_dtype()))
        elif p.suffix == ".json":
            out[rel] = _strip(json.loads(p.read_text(encoding="utf-8")))
        elif p.is_symlink():
            out[rel] = os.path.basename(os.readlink(p))
        else:
            out[rel] = p.read_bytes()
    return out


def _strip(obj):
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in ("Date", "seconds", "DATASETS_PATH")}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    if isinstance(obj, str):
        return obj.split("/ds/", 1)[-1]
    return obj


#: Run a stage with its file-placing calls wrapped: once a file matching PATTERN is in place under
#: a final name, the process says so (the READY file) and stops there, so the test kills it at that
#: exact point, mid-batch, whatever the machine's speed.
PAUSING_RUNNER = """
import fnmatch, os, runpy, shutil, sys, time
ready, pattern, module, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]

def pause_after(real):
    def placed(src, dst, *a, **k):
        out = real(src, dst, *a, **k)
        name = os.path.basename(os.fspath(dst))
        if fnmatch.fnmatch(name, pattern) and not name.startswith(".tmp-"):
            open(ready, "w").close()
            time.sleep(3600)
        return out
    return placed

os.replace, os.link, os.symlink = pause_after(os.replace), pause_after(os.link), pause_after(os.symlink)
shutil.copyfile = pause_after(shutil.copyfile)
sys.argv = [module, *args]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def kill_after_first_output(module: str, args, pattern: str = "*.nii.gz", timeout: float = 120) -> int:
    """Run ``python -m totalseg_bids.<module> args`` (one process: ``-j 1``) until its first output matching
    ``pattern`` is in place, then SIGKILL it there. Returns the exit code (``-SIGKILL``); a run that ends
    before its first output fails the test."""
    ready = Path(os.environ.get("TMPDIR", "/tmp")) / f"ready-{os.getpid()}-{time.monotonic_ns()}"
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               TOTALSEG_BIDS_NO_PROGRESS="1")
    proc = subprocess.Popen([sys.executable, "-c", PAUSING_RUNNER, str(ready), pattern, f"totalseg_bids.{module}",
                             *map(str, args)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ready.exists(), f"no output matching {pattern} appeared: {proc.poll()} {proc.stderr.read()[-2000:]!r}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
        proc.stderr.close()
        ready.unlink(missing_ok=True)
    return proc.returncode


# ---------------------------------------------------------------- register
def test_register_killed_mid_batch_then_rerun(six_subjects, tmp_path):
    ref_ds, ds = tmp_path / "ref" / "ds", tmp_path / "killed" / "ds"
    shutil.copytree(six_subjects, ref_ds, symlinks=True)
    shutil.copytree(six_subjects, ds, symlinks=True)
    out = ds / "derivatives" / "reg-labels"
    code = kill_after_first_output("register", ["--path-img", ds, "-j", "1"])
    assert code == -signal.SIGKILL
    n_nifti = len([p for p in final_files(out) if p.name.endswith(".nii.gz")])
    assert 1 <= n_nifti < 16, n_nifti  # killed in the middle: some but not all of 16 MRIs
    assert_no_half_written(out)

    stale = set(out.rglob(TMP_PREFIX + "*"))
    rerun = run_module("register", "--path-img", ds, "-j", "1")
    assert rerun.returncode == 0, rerun.stderr
    assert set(out.rglob(TMP_PREFIX + "*")) <= stale, "the re-run left temporaries of its own"
    ref = run_module("register", "--path-img", ref_ds, "-j", "1")
    assert ref.returncode == 0, ref.stderr
    assert_no_half_written(out)
    got, want = comparable(out), comparable(ref_ds / "derivatives" / "reg-labels")
    assert sorted(got) == sorted(want)
    assert got == want


# ---------------------------------------------------------------- convert_config_to_nnunet
def _config(ds: Path, path: Path) -> Path:
    labels = sorted((ds / "derivatives" / "ground_truth").rglob("*_T[12]w_label-sacrum_seg.nii.gz"))
    rel = [p.relative_to(ds.parent).as_posix() for p in labels]
    subjects = sorted({p.name.split("_")[0] for p in labels})
    test_subjects = subjects[-2:]
    cfg = {"TYPE": "LABEL", "CONTRASTS": "t1_t2", "DATASETS_PATH": str(ds.parent),
           "TRAINING": [r for r in rel if not any(f"/{s}/" in r for s in test_subjects)],
           "VALIDATION": [], "TESTING": [r for r in rel if any(f"/{s}/" in r for s in test_subjects)]}
    path.write_text(json.dumps(cfg, indent=2))
    return path


def test_convert_killed_mid_dataset_then_rerun(six_subjects, tmp_path):
    cfg = _config(six_subjects, tmp_path / "config.json")
    raw, ref_raw = tmp_path / "raw", tmp_path / "ref_raw"
    raw.mkdir()
    ref_raw.mkdir()
    args = ["--config", cfg, "-dnum", "11", "-dname", "Crash", "--link", "copy", "-j", "1"]
    code = kill_after_first_output("convert_config_to_nnunet", [*args, "--path-out", raw])
    assert code == -signal.SIGKILL
    assert_no_half_written(raw)

    stale = set(raw.rglob(TMP_PREFIX + "*"))
    rerun = run_module("convert_config_to_nnunet", *args, "--path-out", raw)
    assert rerun.returncode == 0, rerun.stderr
    assert set(raw.rglob(TMP_PREFIX + "*")) <= stale, "the re-run left temporaries of its own"
    ref = run_module("convert_config_to_nnunet", *args, "--path-out", ref_raw)
    assert ref.returncode == 0, ref.stderr
    assert_no_half_written(raw)
    got, want = comparable(raw), comparable(ref_raw)
    assert sorted(got) == sorted(want)
    assert got == want
