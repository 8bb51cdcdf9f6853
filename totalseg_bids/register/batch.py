"""The batch step: discover pairs, transfer them in parallel, save with datalad."""

from __future__ import annotations

import shutil
from dataclasses import asdict, replace
from pathlib import Path

from ..core.atomic import ensure_writable_dir
from ..core.bids import sidecar_path
from ..core.datalad import dataset_of, ensure_content, get_requested, save_outputs
from ..core.errors import ExternalToolError, InputError, MissingFileError, UsageError
from ..core.folders import LABELS, REG_LABELS, derivative_dir
from ..core.options import resolve_options
from ..core.parallel import finish, run_tasks, shard
from .case import TransferResult, transfer_label
from .constants import SCT_COMMAND
from .options import RegisterOptions
from .pairing import Pair, explicit_pair, needed_inputs, plan_pairs


def result_record(result: TransferResult) -> dict:
    """One transfer as the batch returns it and the CLI prints it: ``status`` and
    ``path`` (the label written on the MRI grid) first, then the transfer's facts.

    >>> result_record(TransferResult("a_seg.nii.gz", "skipped", "header", "a.nii.gz", "ct_seg.nii.gz"))
    {'status': 'skipped', 'path': 'a_seg.nii.gz', 'method': 'header', 'mri': 'a.nii.gz', \
'ct_label': 'ct_seg.nii.gz', 'transform': None, 'flags': {}, 'seconds': 0.0}
    """
    fields = asdict(result)
    return {"status": fields.pop("status"), "path": fields.pop("output"), **fields}


def transfer_pair(pair: Pair) -> dict:
    """The batch task (module level, picklable): one MRI."""
    if pair.error is not None:
        raise InputError(*pair.error)
    opts = pair.options
    ensure_content(needed_inputs(pair), get=opts.datalad_get)
    result = transfer_label(pair.ct_label, pair.mri, pair.out, method=opts.method, interp=opts.interp,
                            ct_image=pair.ct_image, value=pair.value, kind=pair.kind,
                            classes=dict(pair.classes) if pair.classes else None, own_label=pair.own_label,
                            overwrite=opts.overwrite, qc_dir=opts.qc_dir, raw_root=pair.raw_root,
                            reg_options=opts.reg)
    return result_record(result)


def register_dataset(bids_dir: str | Path, ct_labels: str | Path | None = None, out: str | Path | None = None,
                     options: RegisterOptions | None = None, *, mri: str | Path | None = None,
                     ct_label: str | Path | None = None, **kwargs) -> list[dict]:
    """Transfer the CT labels of a whole dataset (or one explicit pair) to MRI space.

    ``ct_labels`` (the CT labels' derivative folder) defaults to
    ``<bids_dir>/derivatives/labels``, ``out`` to ``<bids_dir>/derivatives/reg-labels``; ``mri`` with
    ``ct_label`` is one explicit pair instead of discovery. Everything else is ``options`` (a
    :class:`RegisterOptions`, or its fields as keyword arguments).
    Returns one record per MRI (``status``, ``path``, ``method``, ``mri``,
    ``ct_label``, ``transform``, ``flags``, ``seconds``). Every MRI runs even
    when some fail; then one BatchError lists the failures and carries the
    other records in ``.done`` (saved first with ``datalad_save``).
    """
    opts = resolve_options(RegisterOptions, options, kwargs).check()
    bids_dir = Path(bids_dir)
    if not bids_dir.is_dir():
        raise MissingFileError("BIDS dataset folder not found", bids_dir, "check --bids-dir")
    ct_labels = Path(ct_labels) if ct_labels else derivative_dir(bids_dir, LABELS)
    out = Path(out) if out else derivative_dir(bids_dir, REG_LABELS)
    if opts.method == "sct" and shutil.which(SCT_COMMAND) is None:
        raise ExternalToolError(f"{SCT_COMMAND} not found on PATH (--method sct needs spinalcordtoolbox)",
                                SCT_COMMAND, "install spinalcordtoolbox, or use --method header")
    if (mri is None) != (ct_label is None):
        raise UsageError("--mri and --ct-label go together", None, "give both, or neither for the whole dataset")
    # what each pair carries: the datalad choice resolved once, no scheduler (it stays here)
    carried = replace(opts, datalad_get=get_requested(opts.datalad_get), scheduler=None)
    if mri is not None:
        pairs = [explicit_pair(mri, ct_label, bids_dir, out, carried)]
    else:
        if not ct_labels.is_dir():
            raise MissingFileError("label folder not found", ct_labels,
                                   "run the CT segmentation first or pass --path-label")
        pairs = shard(plan_pairs(bids_dir, ct_labels, out, carried), opts.num_parts, opts.part_id)
    # one check before any work: one error line naming the files and `datalad get`, or one fetch
    ensure_content(list(dict.fromkeys(p for pair in pairs if pair.error is None for p in needed_inputs(pair))),
                   get=carried.datalad_get)
    ensure_writable_dir(out)
    outcomes = run_tasks(transfer_pair, pairs, keys=[p.key for p in pairs], jobs=opts.jobs,
                         executor=opts.executor, scheduler=opts.scheduler, desc="register")
    if opts.datalad_save:  # what completed is saved also when other MRIs failed
        _save([o.value for o in outcomes if o.ok], out, opts)
    return finish(outcomes, "MRI images")


def _save(results: list[dict], out: Path, opts: RegisterOptions) -> None:
    """One datalad save of everything this run wrote (labels, sidecars, transforms)."""
    written = [r for r in results if r["status"] == "written"]
    files: list[str] = []
    for r in written:
        files += [r["path"], str(sidecar_path(r["path"]))] + ([r["transform"]] if r["transform"] else [])
    if files:
        files.append(str(out / "dataset_description.json"))
        save_outputs(dataset_of(out), files, opts.save_message or f"totalseg_bids.register: {len(written)} "
                                                                       f"label(s) transferred to MRI space "
                                                                       f"({opts.method})")
