"""Concurrency: two processes run the same stage on the same dataset at once.

Neither may corrupt an output or fail with an unreadable error: both exit 0, or
one exits 1 with the one-line ``error:`` message. Afterwards every output loads
completely, every JSON (``dataset_description.json`` included) parses, and no
``.tmp-*`` is left.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
from support import REPO


def start(module: str, *args) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               TOTALSEG_BIDS_NO_PROGRESS="1")
    return subprocess.Popen([sys.executable, "-m", f"totalseg_bids.{module}", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, encoding="utf-8", errors="replace")


def run_twice_at_once(module: str, *args, timeout: float = 300) -> list[tuple[int, str]]:
    procs = [start(module, *args), start(module, *args)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=timeout)
        results.append((p.returncode, err))
    return results


def assert_clean_outcomes(results) -> None:
    for code, err in results:
        assert "Traceback" not in err, err
        if code != 0:
            assert code == 1, err
            lines = [line for line in err.splitlines() if ": error: " in line]
            assert len(lines) == 1 and "; " in lines[0] and "internal error" not in lines[0], err
    assert any(code == 0 for code, _ in results), results


def assert_outputs_valid(root: Path) -> int:
    assert not list(root.rglob(".tmp-*")), "temporaries left"
    n = 0
    for p in root.rglob("*"):
        if p.is_file() and p.name.endswith(".nii.gz"):
            np.asanyarray(nib.load(str(p)).dataobj)
            n += 1
        elif p.is_file() and p.suffix == ".json":
            json.loads(p.read_text(encoding="utf-8"))
    return n


def test_two_registers_on_one_dataset(phantom_ds):
    results = run_twice_at_once("register", "--path-img", phantom_ds, "-j", "1")
    assert_clean_outcomes(results)
    out = phantom_ds / "derivatives" / "reg-labels"
    desc = json.loads((out / "dataset_description.json").read_text(encoding="utf-8"))
    assert desc["DatasetType"] == "derivative" and desc["GeneratedBy"][0]["Name"]
    assert assert_outputs_valid(out) == 8  # 4 subject/sessions x (T1w, T2w)
    for label in out.rglob("*_seg.nii.gz"):
        assert label.with_name(label.name.replace(".nii.gz", ".json")).exists(), label


def test_two_segment_ct_from_existing(phantom_ds, tmp_path):
    existing = tmp_path / "ts"
    for gt in (phantom_ds / "derivatives" / "ground_truth").rglob("*_CT_label-sacrum_seg.nii.gz"):
        folder = existing / gt.name.replace("_label-sacrum_seg.nii.gz", "")
        folder.mkdir(parents=True)
        shutil.copyfile(gt, folder / "sacrum.nii.gz")
    out = phantom_ds / "derivatives" / "ts-labels"
    results = run_twice_at_once("segment_ct", "--path-img", phantom_ds, "--from-existing", existing,
                                "--path-out", out, "-j", "1")
    assert_clean_outcomes(results)
    json.loads((out / "dataset_description.json").read_text(encoding="utf-8"))
    assert assert_outputs_valid(out) == 4
    for p in out.rglob("*_seg.nii.gz"):
        gt = next((phantom_ds / "derivatives" / "ground_truth").rglob(p.name))
        assert np.array_equal(np.asanyarray(nib.load(str(p)).dataobj), np.asanyarray(nib.load(str(gt)).dataobj))


def test_two_init_data_config_same_json(phantom_ds, tmp_path):
    out = tmp_path / "cfg" / "sacrum.json"
    results = run_twice_at_once("init_data_config", "--bids-dir", phantom_ds, "--label-dir", "ground_truth",
                                "--label-suffix", "_label-sacrum_seg", "--contrasts", "T1w", "T2w",
                                "--type", "LABEL", "-o", out)
    assert_clean_outcomes(results)
    cfg = json.loads(out.read_text(encoding="utf-8"))
    entries = cfg["TRAINING"] + cfg["VALIDATION"] + cfg["TESTING"]
    assert len(entries) == len(set(entries)) == 8
    assert not list(out.parent.glob(".tmp-*"))


def _die_on(item: tuple[str, str]) -> str:
    """Kill the worker for names starting with ``die`` (always) or ``once``
    (only while its marker file does not exist yet)."""
    import signal

    name, marker_dir = item
    marker = Path(marker_dir) / name
    if name.startswith("die") or (name.startswith("once") and not marker.exists()):
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return name


def test_dead_worker_costs_only_its_item(tmp_path):
    from totalseg_bids.core.errors import BatchError
    from totalseg_bids.core.parallel import raise_for_failures, run_tasks

    names = ["a", "die1", "b", "once1", "c", "d"]
    outcomes = run_tasks(_die_on, [(n, str(tmp_path)) for n in names], keys=names, jobs=2)
    assert [o.key for o in outcomes] == names
    assert {o.key for o in outcomes if not o.ok} == {"die1"}
    assert [o.value for o in outcomes if o.ok] == ["a", "b", "once1", "c", "d"]
    try:
        raise_for_failures(outcomes, "items")
    except BatchError as exc:
        message = str(exc)
    assert "5 of 6 items done, 1 failed: die1" in message
    assert "rerun the same command to retry" in message


def _square(x: int) -> int:
    return x * x


def test_dask_without_workers_fails_after_timeout(monkeypatch, caplog):
    pytest = __import__("pytest")
    distributed = pytest.importorskip("dask.distributed")
    from totalseg_bids.core import parallel
    from totalseg_bids.core.errors import UsageError

    monkeypatch.setattr(parallel, "DASK_TIMEOUT", 2.0)
    with distributed.LocalCluster(n_workers=0, processes=False, silence_logs=40,
                                  dashboard_address=None) as cluster:
        with pytest.raises(UsageError, match="no Dask worker connected within 2s"):
            parallel.run_tasks(_square, [1, 2], executor="dask", scheduler=cluster.scheduler_address)
        cluster.scale(1)
        caplog.set_level("INFO", logger="totalseg_bids")
        outcomes = parallel.run_tasks(_square, [1, 2, 3], executor="dask",
                                      scheduler=cluster.scheduler_address)
    assert [o.value for o in outcomes] == [1, 4, 9]
    assert "Dask: 1 worker(s) connected" in caplog.text


# ------------------------------------------------------------ Ctrl-C, lost workers
def _process_group(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group, read from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text(encoding="utf-8").rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(stat.parent.name))
    return found


def _wait_for(predicate, timeout: float = 120.0, what: str = "condition") -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _interrupt_mid_run(out: Path, *args) -> tuple[int, str]:
    """Start ``register --method rigid ARGS`` in its own process group, press Ctrl-C
    (SIGINT to the whole group, as a terminal does) once the first label is written,
    and return the exit code and stderr; asserts no process of the group survives."""
    import signal

    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               TOTALSEG_BIDS_NO_PROGRESS="1")
    proc = subprocess.Popen([sys.executable, "-m", "totalseg_bids.register", "--path-out", str(out),
                             "--method", "rigid", *map(str, args)], env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, encoding="utf-8", errors="replace")
    try:
        _wait_for(lambda: any(out.rglob("*_seg.nii.gz")) or proc.poll() is not None, what="a first output")
        assert proc.poll() is None, proc.communicate()[1]
        members = _process_group(proc.pid)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    _wait_for(lambda: not _process_group(proc.pid), timeout=15, what=f"the workers of {members} to exit")
    return proc.returncode, err


def _assert_no_partial_outputs(out: Path) -> None:
    leftovers = [p for p in out.rglob("*") if p.name.startswith(".tmp-")]
    assert not leftovers, leftovers
    assert_outputs_valid(out)
    for label in out.rglob("*_seg.nii.gz"):  # a label is only there with its sidecar (written last)
        assert label.with_name(label.name.replace(".nii.gz", ".json")).is_file(), label


def test_ctrl_c_during_a_pool_run(misaligned_ds, tmp_path):
    out = tmp_path / "out"
    code, err = _interrupt_mid_run(out, "--path-img", misaligned_ds, "-j", "2")
    assert code == 130, err
    assert "totalseg_bids.register: interrupted" in err and "Traceback" not in err, err
    _assert_no_partial_outputs(out)


def _dask_processes(tmp_path: Path, workers: int) -> tuple[str, list[subprocess.Popen]]:
    """A ``dask scheduler`` and ``workers`` ``dask worker`` processes (no nanny) on 127.0.0.1."""
    import json as _json

    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    sched_file = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", "0", "--dashboard-address", ":0", "--scheduler-file", str(sched_file)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    _wait_for(lambda: sched_file.is_file() and sched_file.stat().st_size > 0, 60, "the scheduler")
    address = _json.loads(sched_file.read_text(encoding="utf-8"))["address"]
    for _ in range(workers):
        procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--no-nanny",
                                       "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard"],
                                      env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return address, procs


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in reversed(procs):
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()


def test_ctrl_c_during_a_dask_run(misaligned_ds, tmp_path):
    """The client exits 130 at once; the tasks it cancelled leave no partial file on the workers."""
    address, procs = _dask_processes(tmp_path, 2)
    try:
        out = tmp_path / "out"
        code, err = _interrupt_mid_run(out, "--path-img", misaligned_ds, "--executor", "dask", "--scheduler", address)
        assert code == 130, err
        assert "totalseg_bids.register: interrupted" in err and "Traceback" not in err, err
        assert all(p.poll() is None for p in procs)  # the cluster is not the client's to stop
        from dask.distributed import Client

        with Client(address, timeout="30s") as client:  # cancelled tasks that were running finish cleanly
            _wait_for(lambda: not any(client.processing().values()), 120, "the workers to go idle")
    finally:
        _stop(procs)
    _assert_no_partial_outputs(out)


def test_dask_worker_killed_mid_run(misaligned_ds, tmp_path):
    """kill -9 of one of two Dask workers (no nanny) while tasks run: the other worker takes over,
    the run completes with every output, identical to an inline run."""
    import signal

    address, procs = _dask_processes(tmp_path, 2)
    out = tmp_path / "dask"
    try:
        env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                   TOTALSEG_BIDS_NO_PROGRESS="1")
        run = subprocess.Popen([sys.executable, "-m", "totalseg_bids.register", "--path-img", str(misaligned_ds),
                                "--path-out", str(out), "--method", "rigid", "--executor", "dask",
                                "--scheduler", address], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               encoding="utf-8", errors="replace")
        _wait_for(lambda: any(out.rglob("*_seg.nii.gz")) or run.poll() is not None, what="a first output")
        assert run.poll() is None, run.communicate()[1]
        procs[1].send_signal(signal.SIGKILL)  # a worker busy with its task
        stdout, err = run.communicate(timeout=300)
    finally:
        _stop(procs)
    assert run.returncode == 0, err
    assert "Traceback" not in err and len(stdout.splitlines()) == 4, err
    # SIGKILL allows no clean-up: the killed worker's temporaries (hidden .tmp-* names, skipped by every
    # index and by --datalad-save) may stay, but no file under a final name is partial
    stale = list(out.rglob(".tmp-*"))
    assert len(stale) <= 2, stale
    for p in stale:
        p.unlink()
    _assert_no_partial_outputs(out)
    from totalseg_bids import register as reg

    reg.register_dataset(misaligned_ds, out=tmp_path / "j1", method="rigid", jobs=1)
    for label in (tmp_path / "j1").rglob("*_seg.nii.gz"):
        assert (out / label.relative_to(tmp_path / "j1")).read_bytes() == label.read_bytes(), label
