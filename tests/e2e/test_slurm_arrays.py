"""The SLURM array scripts against a real SLURM (``slurm`` fixture): the README's commands, then the faults
a cluster brings.

``register_array.sbatch`` with ``--array=0-3`` on the phantom dataset (8 MRIs, rigid registration, a
fraction of a second per MRI on phantoms) and ``predict_array.sbatch`` with the session's tiny nnU-Net: every output
written once, by the task whose part it is, byte-identical to a ``-j 1`` run (``SOURCE_DATE_EPOCH`` fixes the
sidecars' dates); an ``afterok`` job saves the batch in one datalad commit holding only the outputs. Faults:
``scancel`` of half the array while its tasks write, then a resubmission of only the failed indices; a task
killed by its time limit (``--time=1``, SLURM's minimum of one minute) while it writes an output; the node
set down under a running task (requeue).

The time-limited job is submitted when the module starts and runs beside the other tests: it spends its
minute waiting on the derivative folder's lock, which the test holds (a writer that stalls mid-output on a
slow shared filesystem), so it is killed between an output's mask and its sidecar. The prediction test comes
first: the session's tiny nnU-Net (trained on first use) is then ready before that job starts, so SLURM still
knows the job (MinJobAge) when its test looks at it.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.slurm import (
    assert_nothing_half_written,
    job_env,
    job_field,
    readme_block,
    run_block,
    submit_dir,
    task_log,
    task_records,
    wait_for,
    wait_job_end,
)

from totalseg_bids import register as reg
from totalseg_bids.core.derivatives import LOCK_NAME
from totalseg_bids.core.locks import file_lock
from totalseg_bids.core.parallel import shard
from totalseg_bids.predict import collect_inputs, predict, resolve_model

pytestmark = [pytest.mark.slow, pytest.mark.slurm]

EPOCH = "1700000000"  # SOURCE_DATE_EPOCH: sidecars of every run byte-identical
IDENTITY = {"GIT_AUTHOR_NAME": "totalseg_bids tests", "GIT_AUTHOR_EMAIL": "tests@totalseg-bids.invalid",
            "GIT_COMMITTER_NAME": "totalseg_bids tests", "GIT_COMMITTER_EMAIL": "tests@totalseg-bids.invalid"}
PARTS = 4


def copy_dataset(template: Path, dst: Path) -> Path:
    shutil.copytree(template, dst, symlinks=True)
    return dst


def reg_labels(ds: Path) -> Path:
    return ds / "derivatives" / "reg-labels"


def parts_of(ds: Path) -> list[set[str]]:
    """The outputs each array index must write: register's pairing, every PARTS-th pair."""
    pairs = reg.plan_pairs(ds, ds / "derivatives" / "labels", reg_labels(ds), method="rigid",
                           contrasts=["T1w", "T2w"])
    assert len(pairs) == 8 and all(p.error is None for p in pairs)
    return [{p.out for p in shard(pairs, PARTS, i)} for i in range(PARTS)]


def assert_same_bytes(reference: Path, out: Path) -> None:
    """The same files, byte for byte (masks, transforms, sidecars, dataset_description.json), nothing else
    (no lock file, no temporary)."""
    files = lambda root: {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if not p.is_dir()}  # noqa: E731
    expected, found = files(reference), files(out)
    assert sorted(found) == sorted(expected)
    assert [rel for rel in expected if found[rel] != expected[rel]] == []


def git(ds: Path, *args: str) -> list[str]:
    return subprocess.run(["git", "-C", str(ds), *args], capture_output=True, encoding="utf-8",
                          check=True).stdout.split()


def sbatch(submit: Path, env: dict, *args: str) -> str:
    """Submit from ``submit``; the job id."""
    proc = subprocess.run(["sbatch", "--parsable", *args], cwd=submit, env=env, capture_output=True,
                          encoding="utf-8", timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().split(";")[0]


@pytest.fixture(scope="module")
def reference(phantom_template, tmp_path_factory) -> Path:
    """``register --method rigid -j 1`` on a copy of the phantom dataset: its reg-labels folder."""
    ds = copy_dataset(phantom_template, tmp_path_factory.mktemp("reference") / "ds")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOURCE_DATE_EPOCH", EPOCH)
        reg.register_dataset(ds, method="rigid", jobs=1)
    return reg_labels(ds)


@dataclass
class Stalled:
    """The time-limited array: its dataset, submit folder and id, the masks its tasks had written when
    they stalled, and the lock they wait on."""

    ds: Path
    submit: Path
    jobid: str
    masks: list[Path]
    lock: contextlib.ExitStack

    def release(self) -> None:
        self.lock.close()


@pytest.fixture(scope="module", autouse=True)
def stalled(slurm, phantom_template, tmp_path_factory) -> Stalled:  # noqa: F811
    """A 4-task array with ``--time=1`` whose tasks stall after writing their first mask (submitted first,
    so its minute passes while the other tests run)."""
    base = tmp_path_factory.mktemp("time_limit")
    ds = copy_dataset(phantom_template, base / "ds")
    submit = submit_dir(base)
    env = job_env(slurm, BIDS=str(ds), SOURCE_DATE_EPOCH=EPOCH)
    with contextlib.ExitStack() as lock:
        lock.enter_context(file_lock(reg_labels(ds) / LOCK_NAME))
        jobid = sbatch(submit, env, f"--array=0-{PARTS - 1}", "--time=1", "scripts/slurm/register_array.sbatch")
        lock.callback(slurm.client, "scancel", jobid, check=False)
        masks = wait_for(lambda: list(reg_labels(ds).rglob("*_seg.nii.gz")) if
                         len(list(reg_labels(ds).rglob("*_seg.nii.gz"))) == PARTS else None, 60, "a mask per task")
        yield Stalled(ds, submit, jobid, masks, lock)


def test_predict_array_matches_one_process(slurm, trained_model, tmp_path):  # noqa: F811
    """README: predict_array.sbatch with 4 tasks (one GPU slot each) on 4 T2w images; each image predicted
    once, by its own task, the same bytes as one ``predict -j 1`` run."""
    copies = []
    for name in ("ds", "ref"):
        ds = copy_dataset(trained_model.bids, tmp_path / name / "phantom")
        shutil.rmtree(ds / "sub-01")
        copies.append(ds)
    ds, ref = copies
    with pytest.MonkeyPatch.context() as mp:  # the -j 1 run, in this process
        mp.setenv("SOURCE_DATE_EPOCH", EPOCH)
        predict(collect_inputs(bids_dir=ref, contrasts=["T2w"]), resolve_model(trained_model.model_dir), tta=False,
                jobs=1)
    env = job_env(slurm, **{k: v for k, v in trained_model.env.items() if k.startswith("nnUNet_")},
                  BIDS=str(ds), CONTRASTS="T2w", MODEL_DIR=str(trained_model.model_dir), EXTRA_ARGS="--no-tta",
                  SOURCE_DATE_EPOCH=EPOCH)
    submit = submit_dir(tmp_path)
    jobid = run_block(readme_block("predict array"), submit, env).stdout.split()[-1]  # "Submitted batch job N"

    records = task_records(submit, jobid, "tsb-predict")
    assert sorted(records) == ["0", "1", "2", "3"]
    images = sorted(str(case[0]) for case in collect_inputs(bids_dir=ds, contrasts=["T2w"]))
    gpus = set()
    for index, rs in records.items():  # every 4th image from the index-th: one each
        assert [r["status"] for r in rs] in (["written"], ["empty"]), rs
        gpus |= set(re.findall(rf"part {index} of 4 on (\S+)", task_log(submit, jobid, index, "tsb-predict")))
        assert Path(rs[0]["path"]).name.startswith(Path(images[int(index)]).name[:-len(".nii.gz")])
    assert gpus == {"0", "1", "2", "3"}  # CUDA_VISIBLE_DEVICES: a GPU slot of its own per task
    for rs in records.values():
        out = Path(rs[0]["path"])
        twin = ref / out.relative_to(ds)
        assert out.read_bytes() == twin.read_bytes(), out
        assert out.with_suffix("").with_suffix(".json").read_bytes() == \
            twin.with_suffix("").with_suffix(".json").read_bytes()


def test_register_array_then_one_datalad_commit(slurm, phantom_template, reference, tmp_path):  # noqa: F811
    """README: 4 array tasks, then ``afterok`` datalad save: one commit with exactly the outputs."""
    dl = pytest.importorskip("datalad.api", reason="the datalad extra is part of the test install")
    ds = copy_dataset(phantom_template, tmp_path / "ds")
    quiet = {"result_renderer": "disabled"}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in IDENTITY.items():
            mp.setenv(key, value)
        dl.create(path=str(ds), force=True, cfg_proc=None, **quiet)
        dl.save(dataset=str(ds), message="phantom dataset", **quiet)
    before = git(ds, "rev-parse", "HEAD")[0]
    submit = submit_dir(tmp_path)
    env = job_env(slurm, BIDS=str(ds), SOURCE_DATE_EPOCH=EPOCH, **IDENTITY)
    save = run_block(readme_block("register array"), submit, env).stdout.split()[-1]  # "Submitted batch job N"
    wait_job_end(slurm, save)
    assert job_field(slurm, save, "JobState") == ["COMPLETED"], (submit / f"slurm-{save}.out").read_text()
    jobid = next(submit.glob("tsb-register-*_0.log")).name.split("-")[2].split("_")[0]
    records = task_records(submit, jobid)
    assert sorted(records) == [str(i) for i in range(PARTS)]
    written = [r["path"] for rs in records.values() for r in rs if r["status"] == "written"]
    assert len(written) == len(set(written)) == 8  # every output once
    for index, part in enumerate(parts_of(ds)):  # each task wrote its own part, nothing else
        assert {r["path"] for r in records[str(index)]} == part
    assert_same_bytes(reference, reg_labels(ds))
    assert git(ds, "rev-list", "--count", f"{before}..HEAD") == ["1"]
    committed = set(git(ds, "diff", "--name-only", before, "HEAD"))
    assert committed == {str(p.relative_to(ds)) for p in reg_labels(ds).rglob("*") if not p.is_dir()}
    assert git(ds, "status", "--porcelain") == []


def test_cancel_half_the_array_then_resubmit_the_failed(slurm, phantom_template, reference, tmp_path):  # noqa: F811
    """scancel of tasks 2 and 3 once each has written an output; failed_tasks.sh lists them; resubmitting
    only those completes the dataset. Runs with the O_EXCL lock files (the fallback for filesystems that
    refuse flock) shared by the array tasks."""
    ds = copy_dataset(phantom_template, tmp_path / "ds")
    parts = parts_of(ds)
    submit = submit_dir(tmp_path)
    env = job_env(slurm, BIDS=str(ds), SOURCE_DATE_EPOCH=EPOCH, TOTALSEG_BIDS_LOCK="excl")
    jobid = sbatch(submit, env, f"--array=0-{PARTS - 1}", "scripts/slurm/register_array.sbatch")
    for part in parts[2:]:
        wait_for(lambda part=part: any(Path(p).exists() for p in part), 60, "a first output of tasks 2 and 3", 0.05)
    slurm.client("scancel", f"{jobid}_2", f"{jobid}_3")
    states = wait_job_end(slurm, jobid)
    assert states == {"0": "COMPLETED", "1": "COMPLETED", "2": "CANCELLED", "3": "CANCELLED"}, states
    assert_nothing_half_written(reg_labels(ds))
    assert all(Path(p).exists() for p in parts[0] | parts[1])
    assert not all(Path(p).exists() for p in parts[2] | parts[3])

    proc = run_block(readme_block("resubmit failed tasks"), submit, {**env, "jobid": jobid})
    again = proc.stdout.split()[-1]
    records = task_records(submit, again)
    assert sorted(records) == ["2", "3"]  # only the failed indices, each with its own part again
    for index in ("2", "3"):
        assert {r["path"] for r in records[index]} == parts[int(index)]
    # what the cancel cut short is written again (a task may have finished its part just before the cancel)
    assert any(r["status"] == "written" for index in ("2", "3") for r in records[index])
    assert_same_bytes(reference, reg_labels(ds))


def test_time_limit_kill_leaves_no_partial_output(slurm, stalled, reference):  # noqa: F811
    """Tasks killed at their time limit while writing (mask written, sidecar not yet): SIGTERM removes
    those masks, the logs and failed_tasks.sh report the tasks, a resubmission completes the dataset."""
    states = wait_job_end(slurm, stalled.jobid, timeout=170)
    assert states == {str(i): "TIMEOUT" for i in range(PARTS)}, states
    for index in range(PARTS):
        log = task_log(stalled.submit, stalled.jobid, index)
        assert "DUE TO TIME LIMIT" in log and "totalseg_bids.register: terminated" in log, log
    assert not any(mask.exists() for mask in stalled.masks)
    assert not list(reg_labels(stalled.ds).rglob("*.nii.gz")) and not list(reg_labels(stalled.ds).rglob("*_seg.json"))
    assert_nothing_half_written(reg_labels(stalled.ds))
    stalled.release()
    env = job_env(slurm, BIDS=str(stalled.ds), SOURCE_DATE_EPOCH=EPOCH)
    proc = run_block(readme_block("resubmit failed tasks"), stalled.submit, {**env, "jobid": stalled.jobid})
    again = proc.stdout.split()[-1]
    assert sorted(task_records(stalled.submit, again)) == ["0", "1", "2", "3"]
    assert_same_bytes(reference, reg_labels(stalled.ds))


def test_node_down_during_a_task_is_survived_by_requeue(slurm, phantom_template, reference, tmp_path):  # noqa: F811
    """``scontrol update nodename=... state=down`` while the tasks write: SLURM requeues them, they run
    again once the node is back, and the dataset ends complete and identical."""
    wait_for(lambda: not slurm.jobs(), 120, "an empty queue (the node is this test's alone)")
    ds = copy_dataset(phantom_template, tmp_path / "ds")
    submit = submit_dir(tmp_path)
    env = job_env(slurm, BIDS=str(ds), SOURCE_DATE_EPOCH=EPOCH)
    jobid = sbatch(submit, env, "--array=0-1", "scripts/slurm/register_array.sbatch")
    try:
        wait_for(lambda: any(reg_labels(ds).rglob("*_seg.nii.gz")), 60, "a first output", 0.05)
        slurm.client("scontrol", "update", f"nodename={slurm.node}", "state=down", "reason=lost in a test")
        wait_for(lambda: set(job_field(slurm, jobid, "Restarts")) == {"1"}, 30, "the tasks to be requeued")
        wait_for(lambda: slurm.node_state().startswith("down") and "completing" not in slurm.node_state(), 30,
                 "the node to be down")
    finally:
        slurm.client("scontrol", "update", f"nodename={slurm.node}", "state=resume", check=False)
    states = wait_job_end(slurm, jobid, timeout=120)
    assert states == {"0": "COMPLETED", "1": "COMPLETED"}, states
    assert set(job_field(slurm, jobid, "Restarts")) == {"1"}
    assert_nothing_half_written(reg_labels(ds))
    assert_same_bytes(reference, reg_labels(ds))
    slurm.wait_idle()
