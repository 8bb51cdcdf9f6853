"""One CT: validate, skip when done, run TotalSegmentator (or read its outputs), write atomically."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..core.derivatives import ensure_dataset_description, generated_by, write_dseg_tsv, write_sidecar
from ..core.nifti import Grid, save_mask
from ..core.provenance import refuse_manual_overwrite
from ..core.qc_hook import qc_entry
from ..totalsegmentator import class_files, segment
from .existing import read_existing
from .images import check_ct
from .job import CtJob
from .masks import combine_masks, read_class_file
from .outputs import output_records, outputs_complete, planned_outputs, tool_entry

log = logging.getLogger(__name__)


def run_totalsegmentator(job: CtJob, ct_grid: Grid) -> dict[str, np.ndarray]:
    """Run TotalSegmentator on one CT into a scratch folder and read its masks."""
    opts = job.options
    with tempfile.TemporaryDirectory(prefix="totalseg_bids-") as tmp:
        out_dir = Path(tmp) / "out"
        segment(job.ct, out_dir, opts.task, opts.classes, opts.device, opts.fast)
        files = class_files(out_dir, opts.classes, opts.task, job.ct)
        return {c: read_class_file(f, ct_grid) for c, f in zip(opts.classes, files)}


def _add_qc(job: CtJob, outputs: Sequence[Path]) -> None:
    """Hand each new label to the QC report, when one was asked for."""
    opts = job.options
    for out in outputs:
        qc_entry(opts.qc_dir, job.ct, out, "segment_ct",
                 meta={"task": opts.task, "classes": list(opts.classes), "fast": opts.fast,
                       "source": "existing" if opts.from_existing else "TotalSegmentator"})


def _write(job: CtJob, masks: dict[str, np.ndarray], ct_affine: np.ndarray, outputs: list[Path]) -> None:
    """The label files and their sidecars (sidecars last: a label without one is incomplete)."""
    opts = job.options
    generated = [tool_entry(job), generated_by("totalseg_bids", Step="segment_ct")]
    ensure_dataset_description(job.out, description="CT labels from TotalSegmentator (totalseg_bids.segment_ct)")
    if opts.combine:
        out = outputs[0]
        ids = dict(job.class_ids) or {c: i + 1 for i, c in enumerate(opts.classes)}
        save_mask(combine_masks(masks, ids), ct_affine, out)
        write_dseg_tsv(out, {ids[c]: c for c in opts.classes})
        write_sidecar(out, [job.ct], generated, spatial_reference=job.ct, raw_root=job.bids_dir)
        return
    for cls, out in zip(opts.classes, outputs):
        save_mask(masks[cls], ct_affine, out)
        write_sidecar(out, [job.ct], generated, spatial_reference=job.ct, raw_root=job.bids_dir)


def segment_case(job: CtJob) -> list[dict]:
    """Label one CT; skip it when its outputs are complete (unless overwrite).

    Inputs are checked and every mask is read before the first write, so a bad
    input leaves no partial output. Sidecars are written last. Returns
    :func:`~totalseg_bids.segment_ct.outputs.output_records`.
    """
    outputs = planned_outputs(job)
    if not job.options.overwrite and outputs_complete(job):
        log.info("%s: outputs complete, skipped", job.ct)
        return output_records(job, "skipped")
    for out in outputs:  # a hand-corrected label survives --overwrite
        refuse_manual_overwrite(out, job.options.overwrite)
    ct_grid, ct_affine = check_ct(job.ct, job.model_mm)
    masks = (read_existing(job, ct_grid) if job.options.from_existing is not None
             else run_totalsegmentator(job, ct_grid))
    _write(job, masks, ct_affine, outputs)
    for cls, mask in masks.items():
        if not mask.any():
            log.warning("%s: %s is empty (not in the field of view?)", job.ct, cls)
    _add_qc(job, outputs)
    return output_records(job, "written")
