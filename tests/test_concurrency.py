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

from conftest import REPO


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
    assert not [p for p in root.rglob(".tmp-*")], "temporaries left"
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
    desc = json.loads((out / "dataset_description.json").read_text())
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
    json.loads((out / "dataset_description.json").read_text())
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
    cfg = json.loads(out.read_text())
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
