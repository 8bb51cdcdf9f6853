"""``--executor slurm`` against a real SLURM (``slurm`` fixture): Dask workers that are SLURM jobs
(dask-jobqueue's SLURMCluster), submitted for the run and cancelled at its end.

The README's command gives the bytes of a ``-j 1`` run, its workers were SLURM jobs while it ran and none is
left after it; a worker job cancelled while the tasks run (``--method rigid``, seconds per MRI) costs
nothing: its tasks run again on the other worker.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
from support import assert_one_line_error, assert_same_outputs
from support.slurm import job_env, readme_block, run_block, submit_dir, wait_for

from totalseg_bids import register as reg

pytest.importorskip("dask_jobqueue", reason="the dask extra is part of the test install")
pytestmark = [pytest.mark.slow, pytest.mark.slurm]

EPOCH = "1700000000"


def registered(template: Path, dst: Path, method: str) -> Path:
    """A copy of ``template`` registered with ``-j 1``: its reg-labels folder."""
    shutil.copytree(template, dst, symlinks=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOURCE_DATE_EPOCH", EPOCH)
        reg.register_dataset(dst, method=method, jobs=1)
    return dst / "derivatives" / "reg-labels"


class QueueWatch:
    """Polls squeue in a thread: the jobs (name, state) seen while the run lasts."""

    def __init__(self, slurm) -> None:  # noqa: F811
        self.slurm, self.seen, self._stop = slurm, set(), threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            out = self.slurm.client("squeue", "-h", "-o", "%i %j %T", check=False).stdout
            self.seen.update(tuple(line.split()) for line in out.splitlines())
            time.sleep(0.2)

    def __enter__(self) -> QueueWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def workers(self, state: str | None = None) -> set[str]:
        return {job for job, name, st in self.seen if name == "dask-worker" and state in (None, st)}


def test_executor_slurm_matches_one_process_and_releases_its_workers(slurm, phantom_template, tmp_path):  # noqa: F811
    """README: ``register --executor slurm -j 2``: 2 worker jobs ran the tasks, the same bytes as -j 1,
    no job left in the queue after the run."""
    reference = registered(phantom_template, tmp_path / "ref" / "ds", "rigid")
    ds = tmp_path / "ds"
    shutil.copytree(phantom_template, ds, symlinks=True)
    env = job_env(slurm, BIDS=str(ds), SOURCE_DATE_EPOCH=EPOCH)
    with QueueWatch(slurm) as watch:
        proc = run_block(readme_block("dask on slurm"), submit_dir(tmp_path), env)
    assert len(watch.workers("RUNNING")) == 2, watch.seen
    assert "SLURM: 2 Dask worker job(s) submitted" in proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(records) == 8 and {r["status"] for r in records} == {"written"}
    assert_same_outputs(reference, ds / "derivatives" / "reg-labels")
    wait_for(lambda: not slurm.jobs(), 30, "the worker jobs to be released")


def test_a_worker_job_cancelled_mid_run_is_survived(slurm, misaligned_template, tmp_path):  # noqa: F811
    """scancel of one of two worker jobs while both are busy (rigid registration): the run completes with
    every output, identical to -j 1, and releases the other worker."""
    reference = registered(misaligned_template, tmp_path / "ref" / "ds", "rigid")
    ds = tmp_path / "ds"
    shutil.copytree(misaligned_template, ds, symlinks=True)
    env = job_env(slurm, SOURCE_DATE_EPOCH=EPOCH)
    out = ds / "derivatives" / "reg-labels"
    with QueueWatch(slurm) as watch:
        run = subprocess.Popen([env["PYTHON"], "-m", "totalseg_bids.register", "--path-img", str(ds), "--method",
                                "rigid", "--executor", "slurm", "-j", "2"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, encoding="utf-8", errors="replace",
                               cwd=submit_dir(tmp_path))  # where the worker jobs write their slurm-<id>.out
        try:
            wait_for(lambda: any(out.rglob("*_seg.nii.gz")) or run.poll() is not None, 120, "a first output", 0.1)
            assert run.poll() is None, run.communicate()[1]
            victim = min(watch.workers("RUNNING"))
            slurm.client("scancel", victim)
            stdout, stderr = run.communicate(timeout=170)
        finally:
            if run.poll() is None:
                run.kill()
    assert run.returncode == 0, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    assert len(stdout.splitlines()) == 4
    for stale in out.rglob(".tmp-*"):  # a worker killed while writing may leave its hidden temporary
        stale.unlink()
    assert_same_outputs(reference, out)
    wait_for(lambda: not slurm.jobs(), 30, "the worker jobs to be released")


def test_worker_jobs_slurm_refuses_are_one_line(slurm, phantom_ds, tmp_path):  # noqa: F811
    """A partition the cluster does not have: sbatch --test-only refuses the worker job before anything
    waits for workers; one line, exit 1, nothing submitted."""
    env = job_env(slurm, DASK_JOBQUEUE__SLURM__QUEUE="gpu-nowhere")
    proc = subprocess.run([env["PYTHON"], "-m", "totalseg_bids.register", "--path-img", str(phantom_ds),
                           "--executor", "slurm"], env=env, capture_output=True, encoding="utf-8", errors="replace",
                          timeout=120, cwd=tmp_path, check=False)
    assert_one_line_error(proc, "SLURM refuses the Dask worker job", "invalid partition")
    assert not slurm.jobs() and not list((phantom_ds / "derivatives").rglob("reg-labels/**/*.nii.gz"))
