"""The session's SLURM itself: the daemons run as the user who starts them (root in CI's container:
``SlurmUser=root``, munged with ``--force``), and a job runs as that user too; where SLURM is missing,
starting it fails with the reason and the fix (the ``slurm`` fixture turns that into a failed test)."""

from __future__ import annotations

import getpass
import os
from pathlib import Path

import pytest

from totalseg_bids.testing import slurm as local_slurm


def test_missing_slurm_is_reported_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(local_slurm, "binary", lambda name: None if name == "slurmd" else f"/usr/sbin/{name}")
    with pytest.raises(local_slurm.SlurmUnavailable, match="slurmd not found; install Debian's slurm-wlm"):
        local_slurm.LocalSlurm(tmp_path / "c").start()
    assert not (tmp_path / "c").exists()


@pytest.mark.slow
@pytest.mark.slurm
def test_daemons_and_jobs_run_as_this_user(slurm):  # noqa: F811
    for name, proc in slurm.procs.items():
        status = Path(f"/proc/{proc.pid}/status").read_text(encoding="utf-8").splitlines()
        uid = next(line.split()[1] for line in status if line.startswith("Uid:"))
        assert int(uid) == os.getuid(), name
    conf = slurm.conf.read_text(encoding="utf-8")
    assert f"SlurmUser={getpass.getuser()}\n" in conf and "ProctrackType=proctrack/linuxproc\n" in conf
    assert "TaskPlugin=task/none\n" in conf and "cgroup" not in conf
    job = slurm.client("srun", "--quiet", "id", "-u", timeout=60)
    assert job.stdout.split() == [str(os.getuid())]
