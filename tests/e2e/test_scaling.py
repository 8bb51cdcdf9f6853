"""Scaling out: ``register`` gives byte-identical outputs inline (-j 1),
in a local process pool (-j 2) and on a real ``dask.distributed.LocalCluster``
(worker processes), through the CLI (``--executor dask --scheduler ADDRESS``) and
the Python API (a cluster or Client object); per-subject outputs are idempotent,
so a lost task is simply resubmitted.

nibabel writes gzip headers with mtime 0 and no file name, so equal NIfTI
content means equal file bytes; sidecars differ only in ``GeneratedBy[].Date``
(and the timing field of rigid registration).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from support import REPO, assert_same_outputs, run_module

from totalseg_bids import register as reg
from totalseg_bids.register.cli import main as register_main

distributed = pytest.importorskip("dask.distributed", reason="the dask extra is part of the test install")

@pytest.fixture
def dask_env(monkeypatch):
    """Worker processes (spawned) and CLI subprocesses must import this checkout."""
    monkeypatch.setenv("PYTHONPATH", str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("TOTALSEG_BIDS_NO_PROGRESS", "1")


@pytest.fixture
def cluster(dask_env):
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=40) as c:
        yield c


@pytest.mark.slow
def test_header_identical_inline_pool_and_dask(phantom_ds, cluster, tmp_path):
    outs = {name: tmp_path / name for name in ("j1", "j2", "dask_cli", "dask_api")}
    r1 = reg.register_dataset(phantom_ds, out=outs["j1"], jobs=1)
    assert len(r1) == 8 and all(r["status"] == "written" for r in r1)

    proc = run_module("register", "--path-img", phantom_ds, "--path-out", outs["j2"], "-j", "2")
    assert proc.returncode == 0, proc.stderr
    proc = run_module("register", "--path-img", phantom_ds, "--path-out", outs["dask_cli"],
                      "--executor", "dask", "--scheduler", cluster.scheduler_address)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 8

    with distributed.Client(cluster) as client:
        with distributed.get_task_stream(client) as stream:
            r_api = reg.register_dataset(phantom_ds, out=outs["dask_api"], executor="dask", scheduler=client)
        assert len(r_api) == 8
        ran = [t for t in stream.data if str(t["key"]).startswith("totalseg_bids-")]
        assert len(ran) == 8 and {t["worker"] for t in ran} <= set(cluster.scheduler_info["workers"])

    for name in ("j2", "dask_cli", "dask_api"):
        assert_same_outputs(outs["j1"], outs[name])

    # idempotent per subject: a lost output is redone alone on resubmission, identically
    lost = outs["dask_api"] / "sub-02" / "ses-01" / "anat" / "sub-02_ses-01_T1w_label-sacrum_seg.nii.gz"
    lost.unlink()
    again = reg.register_dataset(phantom_ds, out=outs["dask_api"], executor="dask", scheduler=cluster)
    assert sorted(r["status"] for r in again) == ["skipped"] * 7 + ["written"]
    assert_same_outputs(outs["j1"], outs["dask_api"])


@pytest.mark.slow
def test_rigid_on_dask_equals_local(misaligned_ds, cluster, tmp_path):
    """Seeded rigid registration in a dask worker process gives the -j 1 transform and label."""
    a, b = tmp_path / "j1", tmp_path / "dask"
    ra = reg.register_dataset(misaligned_ds, out=a, method="rigid", contrasts=["T2w"], jobs=1)
    rb = reg.register_dataset(misaligned_ds, out=b, method="rigid", contrasts=["T2w"], executor="dask",
                              scheduler=cluster)
    assert len(ra) == len(rb) == 2 and all(r["transform"] for r in rb)
    assert_same_outputs(a, b)
    assert len(list(b.rglob("*_xfm.txt"))) == 2


def test_dask_without_scheduler_is_usage_error(phantom_ds):
    proc = run_module("register", "--path-img", phantom_ds, "--executor", "dask")
    assert proc.returncode == 2 and "--scheduler" in proc.stderr and "Traceback" not in proc.stderr


def test_executor_slurm_without_sbatch_is_usage_error(phantom_ds, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no SLURM commands here
    assert register_main(["--path-img", str(phantom_ds), "--executor", "slurm"]) == 2
    err = capsys.readouterr().err
    assert "--executor slurm needs SLURM's sbatch" in err and "Traceback" not in err


def test_register_parts_split_the_mris(phantom_ds, tmp_path, capsys):
    """--num-parts/--part-id (what each array task runs): disjoint parts whose union is the whole run."""
    parts = [reg.register_dataset(phantom_ds, out=tmp_path / "parts", jobs=1, num_parts=2, part_id=i)
             for i in range(2)]
    whole = reg.register_dataset(phantom_ds, out=tmp_path / "whole", jobs=1)
    assert [len(p) for p in parts] == [4, 4]  # 8 MRIs, every 2nd from the i-th
    assert sorted(Path(r["path"]).name for p in parts for r in p) == sorted(Path(r["path"]).name for r in whole)
    assert_same_outputs(tmp_path / "whole", tmp_path / "parts")
    assert register_main(["--path-img", str(phantom_ds), "--num-parts", "2", "--part-id", "2"]) == 2
    assert "--part-id" in capsys.readouterr().err


def test_array_scripts_refuse_a_resubmission_that_would_change_the_split(tmp_path):
    """Outside SLURM, the array environment set by hand: a resubmission of indices 1 and 3 without
    NUM_PARTS would split the work differently, so both scripts stop with one line; the real arrays run
    against a real SLURM in test_slurm_arrays.py."""
    import subprocess

    env = dict(os.environ, PYTHON=sys.executable, BIDS=str(tmp_path), METHOD="header", DATALAD_GET="0",
               nnUNet_results=str(tmp_path), MODEL_DIR=str(tmp_path), SLURM_ARRAY_TASK_ID="3",
               SLURM_ARRAY_TASK_MIN="1", SLURM_ARRAY_TASK_MAX="3", SLURM_ARRAY_TASK_COUNT="2",
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    for script in ("register_array.sbatch", "predict_array.sbatch"):
        proc = subprocess.run(["bash", str(REPO / "scripts" / "slurm" / script)], env=env, capture_output=True,
                              encoding="utf-8", errors="replace", timeout=120, check=False)
        assert proc.returncode == 2 and "NUM_PARTS" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stdout == "" and not (tmp_path / "derivatives").exists()
