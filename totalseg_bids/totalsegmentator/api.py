"""TotalSegmentator's Python API in one long-lived process per worker, instead of one program start per image.

Each ``TotalSegmentator`` command starts an interpreter and imports torch,
nnU-Net and TotalSegmentator before it reads its image; a run over a cohort
pays that once per image. :class:`ApiRunner` starts
:mod:`totalseg_bids.totalsegmentator.server` once (a process of its own:
TotalSegmentator rewrites the ``nnUNet_*`` variables of its process, which
must never be one of ours that runs nnU-Net) and hands it one image after the
other. :func:`runner` keeps one per process of ours (the main one, or each
pool or Dask worker), closed when that process ends.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from multiprocessing import util as mp_util
from pathlib import Path

from ..core.errors import ExternalToolError
from .command import (
    EXECUTABLE,
    find_executable,
    is_package_program,
    last_line,
    looks_like_missing_weights,
    run,
    totalseg_command,
)
from .weights import WEIGHTS_FIX

log = logging.getLogger(__name__)

SERVER = "totalseg_bids.totalsegmentator.server"
#: TotalSegmentator's nnU-Net export workers per image: one image at a time needs one.
SAVING_THREADS = 1


def api_arguments(image: str | Path, out_dir: str | Path, task: str, classes: Sequence[str], device: str,
                  fast: bool) -> dict:
    """The keyword arguments of ``totalsegmentator.python_api.totalsegmentator`` that do what
    :func:`~totalseg_bids.totalsegmentator.command.totalseg_command` asks of the program.

    >>> api_arguments("ct.nii.gz", "/o", "total", ["sacrum"], "cpu", True)["roi_subset"]
    ['sacrum']
    >>> api_arguments("ct.nii.gz", "/o", "body", ["skin"], "gpu", False)["roi_subset"] is None
    True
    """
    return {"input": str(image), "output": str(out_dir), "task": task,
            "roi_subset": list(classes) if task.startswith("total") else None, "device": device, "fast": fast,
            "quiet": True, "nr_thr_saving": SAVING_THREADS}


class ApiRunner:
    """One server process, started on first use and restarted if it dies."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen | None = None
        self._log: Path | None = None  # what TotalSegmentator prints, in a folder made at the first start

    def _start(self) -> subprocess.Popen:
        if self._log is None:
            self._log = Path(tempfile.mkdtemp(prefix="totalseg_bids-api-")) / "totalsegmentator.log"
        env = dict(os.environ)
        pkg_root = str(Path(__file__).resolve().parents[2])  # this checkout, also when not installed
        env["PYTHONPATH"] = os.pathsep.join([pkg_root, *filter(None, [env.get("PYTHONPATH")])])
        with open(self._log, "ab") as early:  # what it prints before it redirects its own output there
            proc = subprocess.Popen([sys.executable, "-m", SERVER, str(self._log)], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=early, encoding="utf-8", env=env)
        self._proc = proc
        self._answer(proc, None)  # the server says it is ready once TotalSegmentator is imported
        return proc

    def _answer(self, proc: subprocess.Popen, image: Path | None) -> dict:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line:
            return json.loads(line)
        code = proc.wait()
        self._proc = None
        log.debug("TotalSegmentator worker output:\n%s", self.output())
        raise ExternalToolError(f"the TotalSegmentator worker process ended (exit {code}: "
                                f"{last_line(self.output()) or 'no output'})", image or EXECUTABLE,
                                "rerun with -vv to see its full output; check the memory of this machine")

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def output(self) -> str:
        """What TotalSegmentator printed in this runner so far (its log)."""
        if self._log is None or not self._log.is_file():
            return ""
        return self._log.read_text(encoding="utf-8", errors="replace")

    def run(self, arguments: dict, image: Path, task: str, fast: bool) -> None:
        """Run one request; a failure is one error naming ``image`` (missing weights said so)."""
        proc = self._proc if self._proc is not None and self._proc.poll() is None else self._start()
        assert proc.stdin is not None
        log.info("TotalSegmentator API: %s", json.dumps(arguments))
        try:
            proc.stdin.write(json.dumps(arguments) + "\n")
            proc.stdin.flush()
        except BrokenPipeError:
            self._proc = None
        answer = self._answer(proc, image)
        if answer.get("ok"):
            return
        output = answer.get("output", "")
        log.debug("TotalSegmentator output:\n%s", output)
        error = answer.get("error", "")
        if looks_like_missing_weights(output, error):
            raise ExternalToolError(f"TotalSegmentator weights for task {task!r}{' (--fast)' if fast else ''} are "
                                    f"not installed and could not be downloaded ({error[:120]})", image,
                                    WEIGHTS_FIX.format(task=task))
        raise ExternalToolError(f"TotalSegmentator failed ({error[:200] or 'no output'})", image,
                                "rerun with -vv to see its full output")

    def close(self) -> None:
        """End the server (it ends at the end of its input) and remove its log."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            try:
                proc.stdin.close()  # type: ignore[union-attr]
                proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()
        if self._log is not None:
            shutil.rmtree(self._log.parent, ignore_errors=True)
            self._log = None


_RUNNERS: dict[int, ApiRunner] = {}


def runner() -> ApiRunner:
    """This process's runner (a forked worker never uses its parent's)."""
    pid = os.getpid()
    if pid not in _RUNNERS:
        _RUNNERS.clear()  # inherited from a parent by fork: not ours to use or close
        _RUNNERS[pid] = ApiRunner()
        # atexit for the main process, a multiprocessing finaliser for pool workers (they skip atexit)
        atexit.register(close_runner)
        mp_util.Finalize(None, close_runner, exitpriority=10)
    return _RUNNERS[pid]


def close_runner() -> None:
    """End this process's runner, if it has one."""
    current = _RUNNERS.pop(os.getpid(), None)
    if current is not None:
        current.close()


def segment(image: Path, out_dir: Path, task: str, classes: Sequence[str], device: str, fast: bool) -> None:
    """Label ``image`` into ``out_dir`` (one ``<class>.nii.gz`` per class): through this process's
    API runner when the program on PATH is this environment's TotalSegmentator, else by running
    that program (another installation, a wrapper), which then reports for itself."""
    exe = find_executable()
    if is_package_program(exe):
        runner().run(api_arguments(image, out_dir, task, classes, device, fast), image, task, fast)
    else:
        run(totalseg_command(exe, image, out_dir, task, classes, device, fast), image, task, fast)
