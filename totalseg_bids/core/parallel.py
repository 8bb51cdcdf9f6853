"""Run per-subject tasks inline, in a local process pool, on a Dask cluster, or on Dask workers
that are SLURM jobs submitted for the batch.

Tasks must be module-level functions taking one picklable item. A failing task
becomes an :class:`Outcome` with its error message; the others continue, and
:func:`finish` is how every stage ends a batch: the results of the tasks that
succeeded, or one :class:`BatchError` listing the failures (and carrying those
results, so the caller can still save and report them).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, TypeVar

from .errors import BatchError, TotalsegBidsError, UsageError
from .progress import progress
from .slurm import slurm_cluster

log = logging.getLogger(__name__)
T = TypeVar("T")

#: SLURM worker jobs of ``--executor slurm`` when ``-j`` is not given.
SLURM_DEFAULT_JOBS = 4


@dataclass
class Outcome:
    """What became of one task."""

    key: str
    ok: bool
    value: Any = None
    error: str | None = None


def default_jobs() -> int:
    """Worker count when ``-j`` is not given: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def _call(func: Callable[[T], Any], item: T) -> tuple[bool, Any]:
    """Run one task, turning any error into a message (runs in the worker)."""
    try:
        return True, func(item)
    except TotalsegBidsError as exc:
        return False, str(exc)
    except MemoryError:
        return False, "out of memory; use fewer --jobs"
    except Exception as exc:  # noqa: BLE001 - one bad item must not stop the batch
        log.debug("task failed", exc_info=True)
        return False, f"unexpected {type(exc).__name__}: {' '.join(str(exc).split())[:300]}"


def shard(items: Sequence[T], num_parts: int = 1, part_id: int = 0) -> list[T]:
    """Every ``num_parts``-th item starting at ``part_id`` (stable across runs).

    >>> shard(list(range(7)), 3, 1)
    [1, 4]
    """
    if num_parts < 1 or not 0 <= part_id < num_parts:
        raise UsageError(f"--part-id must be in [0, {num_parts - 1}] and --num-parts >= 1", None,
                         "e.g. --num-parts 4 --part-id 0")
    return list(items[part_id::num_parts])


def run_tasks(func: Callable[[T], Any], items: Sequence[T], keys: Sequence[str] | None = None,
              jobs: int | None = None, executor: str = "local", scheduler: Any = None,
              desc: str | None = None) -> list[Outcome]:
    """Run ``func`` on every item; outcomes come back in input order.

    ``executor='dask'`` submits to ``scheduler`` (an address or a
    ``dask.distributed.Client``/cluster object); ``executor='slurm'`` submits
    ``jobs`` Dask workers as SLURM jobs (:func:`.slurm.slurm_cluster`) and
    cancels them at the end. Tasks must be idempotent so a failed one can be
    resubmitted.
    """
    items = list(items)
    keys = [str(k) for k in keys] if keys is not None else [str(i) for i in items]
    results: dict[int, tuple[bool, Any]] = {}
    if executor == "dask":
        results = _run_dask(func, items, keys, scheduler, desc)
    elif executor == "slurm":
        results = _run_slurm(func, items, keys, jobs, desc) if items else {}
    elif executor != "local":
        raise UsageError(f"unknown executor {executor!r}", None, "use local, dask or slurm")
    else:
        jobs = default_jobs() if jobs is None else jobs
        if jobs < 1:
            raise UsageError("--jobs must be >= 1", None, "e.g. -j 4")
        jobs = min(jobs, len(items))
        if jobs <= 1:
            for i, item in enumerate(progress(items, total=len(items), desc=desc)):
                results[i] = _call(func, item)
        else:
            results = _run_pool(func, items, jobs, desc)
    return [Outcome(keys[i], ok, value if ok else None, None if ok else value)
            for i, (ok, value) in sorted(results.items())]


def _pool_round(func, items, todo: list[int], jobs: int, desc) -> tuple[dict, list[int]]:
    """One pool over ``todo``: results of the items that finished, and the
    indices whose worker died (their pool is broken, so they ran nowhere)."""
    from concurrent.futures.process import BrokenProcessPool

    ctx = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
    results: dict[int, tuple[bool, Any]] = {}
    died: list[int] = []
    with ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=ctx) as pool:
        futures = {pool.submit(_call, func, items[i]): i for i in todo}
        for fut in progress(as_completed(futures), total=len(futures), desc=desc):
            i = futures[fut]
            try:
                results[i] = fut.result()
            except BrokenProcessPool:
                died.append(i)
            except Exception as exc:  # noqa: BLE001 - e.g. an unpicklable result
                results[i] = (False, f"unexpected {type(exc).__name__}: {exc}")
    return results, sorted(died)


def _run_pool(func, items, jobs: int, desc) -> dict[int, tuple[bool, Any]]:
    """Run in a process pool; a worker that dies (killed, out of memory) breaks
    the whole pool, so the items it took down run again in a fresh pool, one
    item per pool, so that only the item that kills its worker again fails."""
    results, died = _pool_round(func, items, list(range(len(items))), jobs, desc)
    if died:
        log.warning("a worker process died; retrying %d unfinished item(s) once", len(died))
    for i in died:
        retried, again = _pool_round(func, items, [i], 1, None)
        results.update(retried)
        if again:
            results[i] = (False, "worker process died twice (killed or out of memory)")
    return results


def _run_slurm(func, items, keys, jobs: int | None, desc) -> dict[int, tuple[bool, Any]]:
    """The Dask path on worker jobs submitted for this batch (no more jobs than items),
    cancelled when it ends, also on failure or Ctrl-C."""
    jobs = SLURM_DEFAULT_JOBS if jobs is None else jobs
    if jobs < 1:
        raise UsageError("--jobs must be >= 1", None, "e.g. -j 4 (the number of SLURM worker jobs)")
    jobs = min(jobs, len(items))
    cluster = slurm_cluster(jobs)
    try:
        log.info("SLURM: %d Dask worker job(s) submitted", jobs)
        return _run_dask(func, items, keys, cluster, desc)
    finally:
        try:
            cluster.close()
        except Exception as exc:  # noqa: BLE001 - the results stand; say what may be left behind
            log.warning("closing the SLURM workers failed (%s); check squeue for dask-worker jobs", exc)


def _run_dask(func, items, keys, scheduler, desc) -> dict[int, tuple[bool, Any]]:
    try:
        from dask.distributed import Client
    except ImportError:
        raise UsageError("--executor dask needs dask.distributed", None,
                         "pip install 'totalseg_bids[dask]'") from None
    own_client = False
    if scheduler is None:
        raise UsageError("--executor dask needs --scheduler ADDRESS", None,
                         "start a scheduler (dask scheduler) and pass its address")
    if isinstance(scheduler, Client):
        client = scheduler
    elif hasattr(scheduler, "scheduler_address"):  # a cluster object
        client, own_client = Client(scheduler), True
    else:
        try:
            client, own_client = Client(scheduler, timeout="30s"), True
        except (OSError, TimeoutError) as exc:
            raise UsageError(f"cannot reach the Dask scheduler ({exc})", str(scheduler),
                             "check the address and that the scheduler runs") from None
    try:
        _wait_for_workers(client, scheduler)
        futures = {client.submit(_call, func, item, key=f"totalseg_bids-{keys[i]}-{os.getpid()}-{i}",
                                 pure=False): i for i, item in enumerate(items)}
        try:
            return _collect_dask(client, futures, desc)
        except KeyboardInterrupt:  # Ctrl-C: no task of this run starts any more (running ones finish)
            client.cancel(list(futures))
            raise
    finally:
        if own_client:
            client.close()


#: Seconds to wait for Dask workers (``--dask-timeout``), at start and whenever all are lost.
DASK_TIMEOUT = 120.0


def _worker_count(client) -> int:
    return len(client.scheduler_info().get("workers", {}))


def _wait_for_workers(client, scheduler) -> None:
    """Say how many workers are connected; wait up to DASK_TIMEOUT for the first."""
    from dask.distributed import TimeoutError as DaskTimeout  # noqa: A001

    if not _worker_count(client):
        log.info("waiting up to %gs for Dask workers (--dask-timeout)", DASK_TIMEOUT)
        try:
            client.wait_for_workers(1, timeout=DASK_TIMEOUT)
        except (DaskTimeout, TimeoutError, OSError):
            raise UsageError(f"no Dask worker connected within {DASK_TIMEOUT:g}s", str(scheduler),
                             "start workers (dask worker ADDRESS) or raise --dask-timeout") from None
    log.info("Dask: %d worker(s) connected", _worker_count(client))


def _collect_dask(client, futures: dict, desc) -> dict[int, tuple[bool, Any]]:
    """Gather results as they finish; when every worker is gone for longer than
    DASK_TIMEOUT the unfinished items fail instead of hanging forever."""
    from dask.distributed import wait

    results: dict[int, tuple[bool, Any]] = {}
    pending = set(futures)
    bar = progress(range(len(futures)), total=len(futures), desc=desc)
    lost_since: float | None = None
    while pending:
        try:
            done, pending = wait(list(pending), timeout=1.0, return_when="FIRST_COMPLETED")
        except TimeoutError:
            done = set()
        for fut in done:
            try:
                results[futures[fut]] = fut.result()
            except Exception as exc:  # noqa: BLE001
                results[futures[fut]] = (False, f"dask task failed ({type(exc).__name__}: {exc})")
            bar.update(1)
        if _worker_count(client):
            lost_since = None
        elif lost_since is None:
            lost_since = time.monotonic()
            log.warning("all Dask workers lost; waiting up to %gs for one", DASK_TIMEOUT)
        elif time.monotonic() - lost_since > DASK_TIMEOUT:
            for fut in pending:
                results[futures[fut]] = (False, f"no Dask worker for {DASK_TIMEOUT:g}s (all lost)")
            client.cancel(list(pending))
            break
    bar.close()
    return results


def raise_for_failures(outcomes: Sequence[Outcome], what: str = "items") -> None:
    """Raise one BatchError summarising the failed outcomes, if any (``done``: the others' values)."""
    failed = [o for o in outcomes if not o.ok]
    if failed:
        shown = ", ".join(o.key for o in failed[:5]) + (", ..." if len(failed) > 5 else "")
        raise BatchError(f"{len(outcomes) - len(failed)} of {len(outcomes)} {what} done, "
                         f"{len(failed)} failed: {shown}", None,
                         "rerun the same command to retry: finished items are skipped",
                         failures=[(o.key, o.error or "failed") for o in failed],
                         done=[o.value for o in outcomes if o.ok])


def finish(outcomes: Sequence[Outcome], what: str = "items") -> list:
    """The values of a batch whose tasks all succeeded; otherwise one BatchError.

    >>> finish([Outcome("a", True, 1), Outcome("b", True, 2)])
    [1, 2]
    >>> try:
    ...     finish([Outcome("a", True, 1), Outcome("b", False, error="b: unreadable")], "cases")
    ... except BatchError as exc:
    ...     print(exc.problem, exc.done, exc.failures)
    1 of 2 cases done, 1 failed: b [1] [('b', 'b: unreadable')]
    """
    raise_for_failures(outcomes, what)
    return [o.value for o in outcomes]
