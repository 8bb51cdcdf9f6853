"""The files one CT gets, whether they are complete, their records and their provenance."""

from __future__ import annotations

from pathlib import Path

from ..core.bids import derivative_path, dseg_tsv_path
from ..core.derivatives import generated_by, output_complete
from ..totalsegmentator import EXECUTABLE, totalseg_command
from .job import CtJob


def planned_outputs(job: CtJob) -> list[Path]:
    """The label files this CT gets (sidecars and ``.tsv`` go beside them)."""
    opts = job.options
    if opts.combine:
        return [derivative_path(job.ct, job.out, opts.combine, kind="dseg", naming=opts.naming)]
    return [derivative_path(job.ct, job.out, c, kind="seg", naming=opts.naming) for c in opts.classes]


def outputs_complete(job: CtJob) -> bool:
    """All labels and their sidecars (and the dseg's ``.tsv``) are present."""
    outs = planned_outputs(job)
    if not all(output_complete(p) for p in outs):
        return False
    if job.options.combine:
        return dseg_tsv_path(outs[0]).is_file()
    return True


def output_records(job: CtJob, status: str) -> list[dict]:
    """One result per label file of this CT: ``status``, ``path``, the CT and the label name
    (a class, or the ``--combine`` name)."""
    names = [job.options.combine] if job.options.combine else list(job.options.classes)
    return [{"status": status, "path": str(out), "ct": str(job.ct), "label": name}
            for name, out in zip(names, planned_outputs(job))]


def tool_entry(job: CtJob) -> dict:
    """The sidecar's ``GeneratedBy`` entry of TotalSegmentator: version, task, classes and flags,
    or where existing outputs were imported from."""
    opts = job.options
    if opts.from_existing is not None:
        return generated_by("TotalSegmentator", None, Task=opts.task, Classes=list(opts.classes),
                            Description=f"imported from existing TotalSegmentator outputs "
                                        f"({opts.from_existing.name}/)")
    cmd = totalseg_command(EXECUTABLE, "<image>", "<out>", opts.task, opts.classes, opts.device, opts.fast)
    extra = {"Weights": job.weights} if job.weights else {}
    return generated_by("TotalSegmentator", job.version, Task=opts.task, Classes=list(opts.classes),
                        ClassIds={c: job.class_ids[c] for c in opts.classes if c in job.class_ids},
                        Fast=opts.fast, Device=opts.device, Flags=cmd[5:], **extra)
