"""Locks on shared filesystems, and SIGTERM (a scheduler's time limit or scancel) during a write.

``core.locks.file_lock`` is ``flock`` where the filesystem allows it and a lock file created with
``O_EXCL`` where it refuses (Lustre without ``flock``, NFS without a lock daemon). The fallback is
tested by forcing it (``TOTALSEG_BIDS_LOCK=excl``) and by a filesystem that refuses: ``fcntl.flock``
raising ``ENOLCK`` as NFS does without lockd (no such mount can be made here). Both serialise
processes exactly as ``flock`` does; lock files left by dead holders are broken.
"""

from __future__ import annotations

import errno
import logging
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import REPO

from totalseg_bids.core import locks
from totalseg_bids.core.cli import sigterm_raises
from totalseg_bids.core.derivatives import LOCK_NAME
from totalseg_bids.core.errors import OutputError, Terminated, UsageError

ROUNDS = 10


def _increment(counter: Path, lock: Path, rounds: int) -> None:
    """Read-modify-write under the lock, slowly enough that unlocked writers would lose updates."""
    for _ in range(rounds):
        with locks.file_lock(lock):
            value = int(counter.read_text())
            time.sleep(0.001)
            counter.write_text(str(value + 1))


def _hammer(tmp_path: Path, processes: int = 3) -> int:
    counter, lock = tmp_path / "counter", tmp_path / "shared" / ".lock"
    counter.write_text("0")
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_increment, args=(counter, lock, ROUNDS)) for _ in range(processes)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
        assert w.exitcode == 0
    assert not lock.exists()  # a lock file exists only while held
    return int(counter.read_text())


def _refusing_flock(monkeypatch) -> list[int]:
    """``fcntl.flock`` as on NFS without a lock daemon; the calls are counted."""
    calls = []

    def flock(fd, op):
        calls.append(op)
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(locks.fcntl, "flock", flock)
    monkeypatch.setattr(locks, "_no_flock", set())
    return calls


@pytest.mark.parametrize("mode", ["auto", "excl"])
def test_lock_serialises_processes(tmp_path, monkeypatch, mode):
    monkeypatch.setenv(locks.LOCK_ENV, mode)
    assert _hammer(tmp_path) == 3 * ROUNDS


def test_filesystem_refusing_flock_falls_back_to_lock_files(tmp_path, monkeypatch, caplog):
    calls = _refusing_flock(monkeypatch)
    monkeypatch.delenv(locks.LOCK_ENV, raising=False)
    with caplog.at_level(logging.WARNING, logger="totalseg_bids"):
        assert _hammer(tmp_path) == 3 * ROUNDS  # the processes inherit the refusing flock
        with locks.file_lock(tmp_path / "shared" / ".lock"):
            assert (tmp_path / "shared" / ".lock").read_text().startswith(socket.gethostname())
    assert len(calls) == 1  # detected once per filesystem, then lock files directly
    assert [r.message for r in caplog.records if "refuses flock" in r.message]
    monkeypatch.setenv(locks.LOCK_ENV, "flock")  # flock demanded: one line naming the way out
    monkeypatch.setattr(locks, "_no_flock", set())
    with pytest.raises(OutputError, match="TOTALSEG_BIDS_LOCK=excl"), locks.file_lock(tmp_path / "other" / ".lock"):
        pass


def test_stale_lock_files_are_broken(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv(locks.LOCK_ENV, "excl")
    lock = tmp_path / ".lock"
    dead = multiprocessing.get_context("fork").Process(target=int)
    dead.start()
    dead.join()
    lock.write_text(f"{socket.gethostname()} {dead.pid} 0 x\n")  # its holder is gone
    t0 = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="totalseg_bids"), locks.file_lock(lock):
        assert time.monotonic() - t0 < 1
    assert "removed a stale lock" in caplog.text
    lock.write_text("node17 4242 0 x\n")  # another host's: stale only once older than the limit
    monkeypatch.setenv("TOTALSEG_BIDS_LOCK_STALE", "0.3")
    t0 = time.monotonic()
    with locks.file_lock(lock):
        assert time.monotonic() - t0 >= 0.25
    assert not lock.exists()


def test_lock_of_a_live_holder_is_waited_for(tmp_path, monkeypatch):
    monkeypatch.setenv(locks.LOCK_ENV, "excl")
    lock = tmp_path / ".lock"
    lock.write_text(f"{socket.gethostname()} {os.getpid()} 0 x\n")  # alive: this process
    monkeypatch.setattr(locks, "STALE_SECONDS", 60.0)
    os.utime(lock, (time.time() - 30, time.time() - 30))
    holder = multiprocessing.get_context("fork").Process(target=lambda: (time.sleep(0.4), lock.unlink()))
    holder.start()
    t0 = time.monotonic()
    with locks.file_lock(lock):
        assert time.monotonic() - t0 >= 0.3
    holder.join()


def test_unknown_lock_mode_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.setenv(locks.LOCK_ENV, "nfs")
    with pytest.raises(UsageError, match="auto, flock, excl"), locks.file_lock(tmp_path / ".lock"):
        pass


def test_sigterm_raises_only_around_the_body():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated), sigterm_raises():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.slow
def test_sigterm_while_writing_removes_the_output_in_progress(phantom_ds):
    """register, stalled between an output's mask and its sidecar (the folder lock held here), gets
    SIGTERM: exit 143 with one line, the mask removed; the rerun completes the output."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    out = phantom_ds / "derivatives" / "reg-labels"
    cmd = [sys.executable, "-m", "totalseg_bids.register", "--path-img", str(phantom_ds), "--method", "header",
           "-j", "1"]
    with locks.file_lock(out / LOCK_NAME):
        run = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, encoding="utf-8")
        deadline = time.monotonic() + 60
        while not list(out.rglob("*_seg.nii.gz")) and time.monotonic() < deadline:
            time.sleep(0.05)
        mask = next(out.rglob("*_seg.nii.gz"))
        time.sleep(0.2)  # waiting on the lock now, mask written, sidecar not
        run.send_signal(signal.SIGTERM)
        stdout, stderr = run.communicate(timeout=60)
    assert run.returncode == 143, stderr
    assert "Traceback" not in stderr and "totalseg_bids.register: terminated" in stderr, stderr
    assert not mask.exists() and not mask.with_name(mask.name.replace(".nii.gz", ".json")).exists()
    assert not list(out.rglob(".tmp-*")) and stdout == ""
    again = subprocess.run(cmd, env=env, capture_output=True, encoding="utf-8", timeout=120, check=False)
    assert again.returncode == 0 and mask.exists(), again.stderr
