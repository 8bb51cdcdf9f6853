"""SLURM's conventions, in one place: which part of a batch an array task does, and Dask workers that
are SLURM jobs (``--executor slurm``, through dask-jobqueue).

An array's index is the part it does: ``--array=0-3`` splits a batch into 4 parts, task 2 does every 4th
item from the 3rd (:func:`totalseg_bids.core.parallel.shard`). A resubmission of some indices
(``--array=1,3``) keeps that split only when it knows the original size, so an array whose indices are not
``0..N-1`` needs ``NUM_PARTS``: guessing the size would silently give the tasks other items.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from typing import Any

from .errors import ExternalToolError, UsageError

log = logging.getLogger(__name__)

#: Worker-job resources when the dask-jobqueue configuration (``jobqueue.slurm``) leaves them unset.
WORKER_DEFAULTS: dict[str, Any] = {"cores": 1, "processes": 1, "memory": "4GB"}


def array_part(environ: Mapping[str, str] | None = None) -> tuple[int, int]:
    """``(number of parts, this task's part)`` of a SLURM array task, from its environment.

    >>> array_part({"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "3",
    ...             "SLURM_ARRAY_TASK_COUNT": "4"})
    (4, 2)
    >>> array_part({"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "3",
    ...             "SLURM_ARRAY_TASK_COUNT": "2", "NUM_PARTS": "4"})   # a resubmission of 1 and 3
    (4, 3)
    >>> array_part({})   # outside an array: the whole batch
    (1, 0)
    """
    env = os.environ if environ is None else environ
    if "SLURM_ARRAY_TASK_ID" not in env:
        return 1, 0
    task, low, high = (int(env[f"SLURM_ARRAY_TASK_{k}"]) for k in ("ID", "MIN", "MAX"))
    count = int(env.get("SLURM_ARRAY_TASK_COUNT", high - low + 1))
    if env.get("NUM_PARTS"):
        parts = int(env["NUM_PARTS"])
    elif low == 0 and high + 1 == count:
        parts = count
    else:
        raise UsageError(f"array indices {low}..{high} ({count} tasks) are not 0..N-1, so the original split "
                         "is unknown", None, "set NUM_PARTS to the size of the first array, e.g. "
                         "NUM_PARTS=4 sbatch --array=1,3 ...")
    if not 0 <= task < parts:
        raise UsageError(f"array index {task} is outside the {parts} parts (NUM_PARTS={parts})", None,
                         "use array indices 0..NUM_PARTS-1")
    return parts, task


def worker_options(jobs: int) -> dict[str, Any]:
    """SLURMCluster arguments: dask-jobqueue's configuration (``~/.config/dask/jobqueue.yaml`` or
    ``DASK_JOBQUEUE__SLURM__*`` variables: queue, account, memory, walltime, job_extra_directives, ...)
    wins; :data:`WORKER_DEFAULTS` fill what it leaves unset. Worker threads stay inside the job's CPUs."""
    import dask.config

    options: dict[str, Any] = {}
    for key, value in WORKER_DEFAULTS.items():
        if dask.config.get(f"jobqueue.slurm.{key}", None) is None:
            options[key] = value
    cores = options.get("cores") or dask.config.get("jobqueue.slurm.cores")
    if not dask.config.get("jobqueue.slurm.job-script-prologue", None):
        options["job_script_prologue"] = [f"export OMP_NUM_THREADS={cores}",
                                          f"export ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS={cores}"]
    log.debug("SLURMCluster of %d worker job(s): %s", jobs, options)
    return options


def slurm_cluster(jobs: int) -> Any:
    """A ``dask_jobqueue.SLURMCluster`` with ``jobs`` worker jobs submitted (one Dask worker each).

    Closing it cancels the jobs. Its scheduler runs in this process; the workers import totalseg_bids
    from the same Python environment (sbatch passes this process's environment on)."""
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError:
        raise UsageError("--executor slurm needs dask-jobqueue", None, "pip install 'totalseg_bids[dask]'") from None
    if shutil.which("sbatch") is None:
        raise UsageError("--executor slurm needs SLURM's sbatch, which is not on PATH", None,
                         "run on a machine that submits SLURM jobs (a login node), or use --executor local")
    cluster = SLURMCluster(**worker_options(jobs))
    try:
        check_submission(cluster.job_script())
        cluster.scale(jobs=jobs)
    except BaseException:
        cluster.close()
        raise
    return cluster


def check_submission(job_script: str) -> None:
    """``sbatch --test-only`` of a worker job: SLURM's refusal (partition, account, memory, time) as one
    line now, instead of a wait for workers that never come."""
    with tempfile.NamedTemporaryFile("w", suffix=".sh", prefix="tsb-dask-worker-") as fh:
        fh.write(job_script)
        fh.flush()
        proc = subprocess.run(["sbatch", "--test-only", fh.name], capture_output=True, encoding="utf-8",
                              errors="replace", timeout=120, check=False)
    if proc.returncode != 0:
        reason = " ".join(proc.stderr.split())[-300:] or f"exit {proc.returncode}"
        raise ExternalToolError(f"SLURM refuses the Dask worker job ({reason})", "sbatch",
                         "check dask-jobqueue's jobqueue.slurm settings (queue, account, memory, walltime) "
                         "and that sbatch works here")

def main() -> int:
    """``python -m totalseg_bids.core.slurm``: ``<parts> <part>`` of this array task, for the array scripts."""
    try:
        print(*array_part())
    except UsageError as exc:
        print(f"totalseg_bids.core.slurm: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
