"""Every CT of a dataset: plan the jobs once, check the weights once, run them, one error for the failures."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from ..core.datalad import ensure_content, get_requested
from ..core.errors import BatchError, ExternalToolError, MissingFileError
from ..core.options import resolve_options
from ..core.parallel import Outcome, finish, run_tasks
from ..totalsegmentator import (
    WEIGHTS_FIX,
    check_classes,
    check_weights,
    find_executable,
    is_package_program,
    load_class_map,
    local_weights_description,
    model_spacing,
    resolve_device,
    version,
)
from .case import segment_case
from .images import default_suffixes, find_cts
from .job import CtJob
from .options import SegmentOptions
from .outputs import outputs_complete

log = logging.getLogger(__name__)


def default_out(bids_dir: str | Path) -> Path:
    """``<bids-dir>/derivatives/labels`` (docs/conventions.md section 2)."""
    return Path(bids_dir).absolute() / "derivatives" / "labels"


def segment_dataset(bids_dir: str | Path, out: str | Path | None = None,
                    options: SegmentOptions | None = None, **kwargs) -> list[dict]:
    """Label every CT of ``bids_dir`` into ``out`` (default ``<bids_dir>/derivatives/labels``).

    ``options``: a :class:`SegmentOptions`, or its fields as keyword arguments.
    Returns one record per label file (``status``, ``path``, ``ct``, ``label``).
    Every CT runs even when some fail; then one BatchError lists the failures
    and carries the records of the CTs that completed in ``.done``.
    """
    opts = resolve_options(SegmentOptions, options, kwargs).check()
    bids_dir = Path(bids_dir).absolute()
    out = Path(out).absolute() if out else default_out(bids_dir)
    if opts.from_existing is not None and not opts.from_existing.is_dir():
        raise MissingFileError("--from-existing folder not found", opts.from_existing, "check the path")
    scheduler = opts.scheduler  # stays here: the jobs' options travel to the workers without it
    opts, jobs_list = plan_jobs(bids_dir, out, opts)
    todo = [j for j in jobs_list if opts.overwrite or not outputs_complete(j)]
    if todo and opts.from_existing is None and is_package_program(find_executable()):
        check_weights(opts.task, opts.fast, opts.classes)  # one clear error up front rather than one per CT
    if todo and opts.datalad_get:
        ensure_content([j.ct for j in todo], get=True)
    jobs = opts.jobs
    if jobs is None and opts.from_existing is None:
        jobs = 1  # TotalSegmentator uses all cores / the whole GPU by itself
    outcomes = run_tasks(segment_case, jobs_list, keys=[str(j.ct.relative_to(bids_dir)) for j in jobs_list],
                         jobs=jobs, executor=opts.executor, scheduler=scheduler, desc="segment_ct")
    return finish_segment(outcomes, opts.task, bids_dir)


def _class_ids(opts: SegmentOptions) -> tuple[list[str], dict[str, int], dict[int, str] | None]:
    """The asked classes checked against the installed TotalSegmentator's class map, their ids, the map."""
    class_map = load_class_map(opts.task)
    if class_map is None:
        classes = check_classes(opts.classes, opts.classes, opts.task)
        if opts.combine:
            log.info("--combine without TotalSegmentator's class map: ids 1..%d in --classes order", len(classes))
        return classes, {}, None
    classes = check_classes(opts.classes, class_map.values(), opts.task)
    by_name = {v: k for k, v in class_map.items()}
    return classes, {c: by_name[c] for c in classes}, class_map


def plan_jobs(bids_dir: Path, out: Path, opts: SegmentOptions) -> tuple[SegmentOptions, list[CtJob]]:
    """The options resolved once, and one job per image carrying them: classes checked against the installed
    TotalSegmentator's class map, the device chosen, the datalad choice read, no scheduler."""
    classes, ids, class_map = _class_ids(opts)
    cts = find_cts(bids_dir, opts.ct_suffixes or default_suffixes(opts.task))
    existing = opts.from_existing is not None
    model_mm, weights = model_spacing(opts.task, opts.fast), local_weights_description()
    resolved = replace(opts, classes=tuple(classes), scheduler=None, datalad_get=get_requested(opts.datalad_get),
                       device=opts.device if existing else resolve_device(opts.device))
    tool_version = version()
    return resolved, [CtJob(ct=ct, bids_dir=bids_dir, out=out, options=resolved, class_ids=ids,
                            version=tool_version, task_ids=tuple(sorted(class_map)) if class_map else (),
                            model_mm=model_mm, weights=None if existing else weights)
                      for ct in cts]


def finish_segment(outcomes: Sequence[Outcome], task: str = "total",
                   where: str | Path | None = None) -> list[dict]:
    """The label records of every CT, or one error: when every CT failed for want of weights,
    one line says so instead of the same line per CT; else a BatchError whose ``done``
    holds the records of the CTs that completed.

    >>> finish_segment([Outcome("a", True, [{"status": "written", "path": "a_seg.nii.gz"}])])
    [{'status': 'written', 'path': 'a_seg.nii.gz'}]
    """
    failed = [o for o in outcomes if not o.ok]
    if len(failed) > 1 and len(failed) == len(outcomes) and all(
            "totalseg_download_weights" in (o.error or "") for o in failed):
        raise ExternalToolError(f"TotalSegmentator weights for task {task!r} are not installed and could "
                                f"not be downloaded ({len(failed)} CTs not segmented)", where,
                                WEIGHTS_FIX.format(task=task))
    try:
        per_ct = finish(outcomes, "CT images")
    except BatchError as exc:
        exc.done = [record for records in exc.done for record in records]  # one per label file
        raise
    return [record for records in per_ct for record in records]
