#!/usr/bin/env python3
"""Run ``totalseg_bids.register`` on a SLURM cluster through Dask (dask-jobqueue).

Each SLURM job is one Dask worker process; every MRI becomes one Dask task
(``totalseg_bids.core.parallel.run_tasks`` with ``executor="dask"``), so the
cluster can grow and shrink while the batch runs. Outputs are per MRI and
finished ones are skipped: after a failure (a worker lost, a pre-empted job)
run the same command again and only what is missing is redone.

    python scripts/slurm/dask_jobqueue_example.py --path-img /data/ds --jobs 8 --method rigid
    python scripts/slurm/dask_jobqueue_example.py --path-img /data/ds --local   # try it on one machine

Requirements: ``pip install 'totalseg_bids[dask]'`` (dask.distributed, dask-jobqueue), the
same Python environment on the compute nodes (the workers import totalseg_bids), and the
dataset on a filesystem the nodes share. With ``--datalad-get``/``--datalad-save`` the
inputs are fetched once before the tasks start and the outputs saved in one commit at the
end, by this (the client) process: the workers never touch git.

The same from the command line, against a scheduler started by other means
(``dask scheduler`` + ``dask worker`` inside an allocation, or the address this script prints):

    python -m totalseg_bids.register --path-img /data/ds --executor dask --scheduler tcp://host:8786
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def make_cluster(args: argparse.Namespace):
    """A SLURMCluster of ``args.jobs`` one-process workers (or a LocalCluster with ``--local``)."""
    if args.local:
        from dask.distributed import LocalCluster

        return LocalCluster(n_workers=args.jobs, threads_per_worker=1, processes=True, dashboard_address=None)
    from dask_jobqueue import SLURMCluster

    cluster = SLURMCluster(
        queue=args.queue,                 # SLURM partition (None: the site default)
        account=args.account,
        cores=1, processes=1,             # one worker process, one thread: one task at a time per job
        job_cpu=args.cores,               # --cpus-per-task (SimpleITK uses 2 threads per registration)
        memory=args.memory,               # per job; a rigid registration of a 1 mm CT needs ~2-4 GB
        walltime=args.walltime,
        job_name="tsb-register",
        log_directory=str(args.log_dir),  # SLURM logs of the worker jobs
        # workers must not inherit the client's thread settings: one task, `cores` threads
        job_script_prologue=[f"export OMP_NUM_THREADS={args.cores}",
                             f"export ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS={args.cores}"],
    )
    cluster.scale(jobs=args.jobs)         # submit the worker jobs (or cluster.adapt(minimum_jobs=1, maximum_jobs=N))
    return cluster


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--path-img", type=Path, required=True, help="BIDS dataset (shared filesystem)")
    p.add_argument("--method", default="header", help="register --method (header, rigid, affine)")
    p.add_argument("--label", default="sacrum")
    p.add_argument("--jobs", type=int, default=4, help="SLURM jobs (= Dask workers)")
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--memory", default="8GB")
    p.add_argument("--walltime", default="02:00:00")
    p.add_argument("--queue", default=None)
    p.add_argument("--account", default=None)
    p.add_argument("--log-dir", type=Path, default=Path("dask-logs"))
    p.add_argument("--datalad-get", action="store_true", help="fetch annexed inputs first (client side)")
    p.add_argument("--datalad-save", action="store_true", help="one datalad commit at the end (client side)")
    p.add_argument("--local", action="store_true", help="a LocalCluster instead of SLURM, to try the script")
    args = p.parse_args(argv)

    from dask.distributed import Client

    from totalseg_bids.core.cli import emit
    from totalseg_bids.core.errors import TotalsegBidsError
    from totalseg_bids.register import LabelSpec, RegisterOptions, register_dataset

    t0 = time.perf_counter()
    with make_cluster(args) as cluster, Client(cluster) as client:
        print(f"dask scheduler {cluster.scheduler_address}; dashboard {client.dashboard_link}", file=sys.stderr)
        if not args.local:
            client.wait_for_workers(1, timeout=3600)  # SLURM queue wait; tasks start as workers arrive
        try:
            # run_tasks(transfer_pair, pairs, executor="dask", scheduler=client) underneath:
            # one task per MRI, results in input order, failures collected into one BatchError
            options = RegisterOptions(spec=LabelSpec(name=args.label), method=args.method, executor="dask",
                                      scheduler=client, datalad_get=args.datalad_get,
                                      datalad_save=args.datalad_save)
            results = register_dataset(args.path_img, options=options)
        except TotalsegBidsError as exc:
            emit("register", getattr(exc, "done", []))  # the MRIs that completed (a BatchError's .done)
            print(f"dask_jobqueue_example: error: {exc}", file=sys.stderr)
            for item, message in getattr(exc, "failures", []):
                print(f"  {item}: {message}", file=sys.stderr)
            return 1
    emit("register", results)  # one JSON line per MRI, as `python -m totalseg_bids.register` prints
    written = sum(r["status"] == "written" for r in results)
    print(f"{written} written, {len(results) - written} skipped in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
