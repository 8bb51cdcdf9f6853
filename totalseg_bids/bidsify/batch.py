"""The batch step: plan every file of a download, convert them (``-j`` workers), then the dataset files."""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from ..core.atomic import ensure_writable_dir
from ..core.errors import BatchError, MissingFileError, UsageError
from ..core.options import resolve_options
from ..core.parallel import finish, run_tasks
from .case import convert_item
from .dataset import write_dataset_files
from .options import BidsifyOptions
from .plan import Item, Plan, check_conflicts, series_table, table
from .sources import SOURCES, plan_source

log = logging.getLogger(__name__)


def make_plan(source: str, root: Path, options: BidsifyOptions) -> Plan:
    """The checked plan of ``source`` on ``root`` (nothing is written)."""
    if source not in SOURCES:
        raise UsageError(f"unknown --source {source!r}", None, f"use one of {', '.join(SOURCES)}")
    if not root.is_dir():
        raise MissingFileError("input folder does not exist", root, "pass the downloaded dataset's folder")
    plan = plan_source(source, root, options)
    check_conflicts(plan.items)
    return plan


def _date() -> str:
    """Sidecar date; honours SOURCE_DATE_EPOCH so reruns write the same bytes."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = datetime.fromtimestamp(int(epoch), timezone.utc) if epoch else datetime.now()
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def file_record(out: Path, item: Item, status: str) -> dict:
    """The result of one planned file: where it goes (absolute) and what it comes from.

    >>> file_record(Path("/b"), Item("/src/ct.nii.gz", "sub-1/anat/sub-1_CT.nii.gz"), "planned")["path"]
    '/b/sub-1/anat/sub-1_CT.nii.gz'
    """
    return {"status": status, "path": str(out / item.target), "source": item.source, "kind": item.kind}


def bidsify(source: str, root: Path, out: Path, options: BidsifyOptions | None = None, **kwargs) -> list[dict]:
    """Convert ``root`` into ``out``: one record per file (``written``, ``skipped``
    or, with ``dry_run``, ``planned``), then the dataset folder's.

    Files that fail to convert raise one :class:`BatchError` once the others of
    their phase are done (``done``: their records); the dataset files are then
    not written, so an incomplete conversion never looks finished.
    """
    options = resolve_options(BidsifyOptions, options, kwargs)
    root, out = Path(root).resolve(), Path(out).resolve()
    if out == root or root in out.parents:
        raise UsageError("--out lies inside --in", out, "write the BIDS dataset outside the source tree")
    work = None if options.dry_run or _has_files(out) else out.parent / f".{out.name}.bidsify-tmp"
    if work is not None:  # a new output: DICOM series are converted once, while they are planned
        shutil.rmtree(work, ignore_errors=True)  # what an interrupted run left
        out.parent.mkdir(parents=True, exist_ok=True)
        options = replace(options, work_dir=work)
    try:
        return _bidsify(source, root, out, options)
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)


def _has_files(folder: Path) -> bool:
    """Whether ``folder`` holds anything (a resumed conversion plans with sidecars only, converting
    just what is missing)."""
    return folder.is_dir() and any(folder.iterdir())


def _bidsify(source: str, root: Path, out: Path, options: BidsifyOptions) -> list[dict]:
    plan = make_plan(source, root, options)
    if options.dry_run:
        log.info("planned conversion, nothing written:\n%s",
                 series_table(plan.series) if plan.series else table(plan.items))
        return [*(file_record(out, i, "planned") for i in plan.items), *_skip_records(root, plan.skipped),
                {"status": "planned", "path": str(out), "kind": "dataset", "files": len(plan.items)}]
    ensure_writable_dir(out)
    records = _convert(plan, out, options)
    records += _skip_records(root, plan.skipped)
    for skip in plan.skipped:
        log.warning("not converted: %s (%s, %s, %s files): %s", skip["folder"], skip["SeriesDescription"] or "-",
                    skip["Modality"] or "-", skip["files"], skip["reason"])
    if options.strict and plan.skipped:
        raise BatchError(f"{len(plan.skipped)} series not converted (--strict)", root,
                         "name them in --config or leave out --strict", done=records,
                         failures=[(str(root / s["folder"]), f"{root / s['folder']}: not converted ({s['reason']}); "
                                    "convert it (--config, --keep-derived) or leave out --strict")
                                   for s in plan.skipped])
    write_dataset_files(out, plan, source, options.command)
    counts = {s: sum(r["status"] == s for r in records) for s in ("written", "skipped", "unconverted")
              if s != "unconverted" or plan.skipped}
    log.info("converted %d files, %d already done%s", counts["written"], counts["skipped"],
             f", {len(plan.skipped)} left out (listed above)" if plan.skipped else "")
    return [*records, {"status": "written", "path": str(out), "kind": "dataset", **counts}]


def _skip_records(root: Path, skipped: list[dict]) -> list[dict]:
    """One ``unconverted`` record per series (or folder of strays) left out, with the reason."""
    return [{"status": "unconverted", "path": str(root / s["folder"]), "kind": "series",
             **{k: v for k, v in s.items() if k not in ("folder", "result")}} for s in skipped]


def _convert(plan: Plan, out: Path, options: BidsifyOptions) -> list[dict]:
    """Convert every item; contours are filled on their converted reference image, so images go first."""
    date, outcomes, records = _date(), [], []
    for phase in ([i for i in plan.items if i.kind != "rtstruct"], [i for i in plan.items if i.kind == "rtstruct"]):
        if not phase:
            continue
        done = run_tasks(convert_item, [(i, str(out), date, options.overwrite) for i in phase],
                         keys=[i.target for i in phase], jobs=options.jobs, desc="bidsify")
        for outcome, item in zip(done, phase):
            if outcome.ok:
                outcome.value = _record(out, item, outcome.value)
            elif plan.failures_are_skips and item.kind == "dicom":
                plan.skipped.append(_failed_row(plan, item, outcome.error or "failed"))
                outcome.ok, outcome.value = True, None
        outcomes += done
        records = [r for r in finish(outcomes, "files") if r is not None]
    return records


def _failed_row(plan: Plan, item: Item, error: str) -> dict:
    """The table row of a series that failed to convert, with dcm2niix's complaint as the reason."""
    row = next((r for r in plan.series if r.get("volume") == item.output and r.get("result") == item.target),
               {"folder": item.source, "SeriesDescription": "", "Modality": "", "ImageType": "", "SeriesNumber": "",
                "files": len(item.extra_sources)})
    return {**row, "result": "not converted", "reason": f"conversion failed: {error.split(': ', 1)[-1]}"}


def _record(out: Path, item: Item, value: str | dict) -> dict:
    """The record of a converted item; warnings (dcm2niix's gantry tilt or missing slices, a lossy mask's
    thresholding) logged and kept."""
    status = value if isinstance(value, str) else value["status"]
    record = file_record(out, item, "written" if status == "converted" else "skipped")
    if isinstance(value, dict) and value.get("warnings"):
        record["warnings"] = value["warnings"]
        for warning in value["warnings"]:
            log.warning("%s: %s%s", item.source, "dcm2niix: " if item.kind == "dicom" else "", warning)
    return record
