"""One real single-node SLURM per test session, shared by the cluster tests, and the README's cluster commands.

The ``slurm`` fixture starts :class:`totalseg_bids.testing.slurm.LocalSlurm` (munged, slurmctld, slurmd
from Debian's slurm-wlm and munge) and stops it, removing its state, at the end of the session, also
after failures. Where SLURM cannot start, every test that needs it fails with the reason; it never
skips. The README section "On a SLURM cluster" is run block by block, as written, from a submit folder
that links ``scripts/`` to the repository's (sbatch reads the scripts there; job logs land there).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from support import REPO
from totalseg_bids.testing.slurm import LocalSlurm, SlurmUnavailable

SECTION = "## On a SLURM cluster"


@pytest.fixture(scope="session")
def slurm() -> LocalSlurm:
    """The session's SLURM; ``SLURM_CONF`` points every client (sbatch, squeue, dask-jobqueue) at it."""
    # a short root: munged's socket path must stay under the 108 bytes of a UNIX socket name
    root = Path(tempfile.mkdtemp(prefix="tsb-slurm-"))
    cluster = LocalSlurm(root / "c")
    try:
        cluster.start()
    except SlurmUnavailable as exc:
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"SLURM did not start: {exc}", pytrace=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLURM_CONF", str(cluster.conf))
        try:
            yield cluster
        finally:
            cluster.stop()
            shutil.rmtree(root, ignore_errors=True)


def job_env(slurm: LocalSlurm, **extra: str) -> dict[str, str]:
    """The environment of a submission: jobs inherit it (sbatch's default), so they run this checkout
    with this Python, one thread per process, no progress bars."""
    env = dict(os.environ, **slurm.env, PYTHON=sys.executable, TOTALSEG_BIDS_NO_PROGRESS="1", nnUNet_def_n_proc="1",
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    env.update(extra)
    return env


def submit_dir(tmp_path: Path) -> Path:
    """A folder to submit from, as from a checkout: ``scripts`` there is the repository's."""
    folder = tmp_path / "submit"
    folder.mkdir()
    (folder / "scripts").symlink_to(REPO / "scripts")
    return folder


def readme_block(title: str) -> str:
    """The ```bash block of the README's SLURM section whose first line is ``# <title>``."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    for block in re.findall(r"```bash\n(.*?)```", text[start:end if end > 0 else None], flags=re.S):
        if block.startswith(f"# {title}\n"):
            return block
    raise AssertionError(f"README section {SECTION!r} has no bash block starting with '# {title}'")


def run_block(block: str, cwd: Path, env: dict, timeout: float = 170) -> subprocess.CompletedProcess:
    """Run a README block with bash (``-euo pipefail``); the test fails with its output when it fails."""
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=cwd, env=env, capture_output=True,
                          encoding="utf-8", errors="replace", timeout=timeout, check=False)
    assert proc.returncode == 0, f"{block}\nexit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.2):
    """Poll until ``predicate()`` is truthy (and return it); fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def task_states(slurm: LocalSlurm, jobid: str) -> dict[str, str]:
    """``{array index: state}`` of an array job as slurmctld knows it (pending ranges as ``"2-3"``)."""
    out = slurm.client("scontrol", "-o", "show", "job", jobid, check=False).stdout
    return dict(re.findall(r"ArrayTaskId=(\S+).*? JobState=(\S+)", out))


def job_field(slurm: LocalSlurm, jobid: str, name: str) -> list[str]:
    """One field (``Restarts``, ``JobState``, ...) of every record of a job."""
    out = slurm.client("scontrol", "-o", "show", "job", jobid, check=False).stdout
    return re.findall(rf"\b{name}=(\S+)", out)


def wait_job_end(slurm: LocalSlurm, jobid: str, timeout: float = 170) -> dict[str, str]:
    """Wait until no task of ``jobid`` is pending or running; its final task states."""
    wait_for(lambda: jobid not in " ".join(slurm.client("squeue", "-h", "-r", "-o", "%F", check=False).stdout.split()),
             timeout, f"job {jobid} to end", interval=0.3)
    return task_states(slurm, jobid)


def task_records(submit: Path, jobid: str, name: str = "tsb-register") -> dict[str, list[dict]]:
    """``{array index: JSON records}`` from the task logs (``<name>-<job>_<index>.log``)."""
    found = {}
    for log in sorted(submit.glob(f"{name}-{jobid}_*.log")):
        index = log.stem.rsplit("_", 1)[1]
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
        found[index] = [json.loads(line) for line in lines if line.startswith("{")]
    return found


def task_log(submit: Path, jobid: str, index: int | str, name: str = "tsb-register") -> str:
    return (submit / f"{name}-{jobid}_{index}.log").read_text(encoding="utf-8", errors="replace")


def assert_nothing_half_written(root: Path) -> None:
    """Every mask under ``root`` has its sidecar (written last) and no temporary is left."""
    leftovers = list(root.rglob(".tmp-*"))
    assert not leftovers, leftovers
    for mask in root.rglob("*.nii.gz"):
        assert mask.with_name(mask.name[:-len(".nii.gz")] + ".json").is_file(), f"{mask} without its sidecar"
