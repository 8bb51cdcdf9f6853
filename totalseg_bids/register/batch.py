"""The batch step: discover pairs, transfer them in parallel, save with datalad."""

from __future__ import annotations

from dataclasses import replace
import shutil
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from ..core.atomic import ensure_writable_dir
from ..core.bids import sidecar_path
from ..core.datalad import dataset_of, ensure_content, get_requested, save_outputs
from ..core.errors import ExternalToolError, InputError, MissingFileError, UsageError
from ..core.parallel import raise_for_failures, run_tasks
from .constants import DEFAULT_CONTRASTS, DEFAULT_CT_SUFFIXES, INTERPOLATIONS, METHODS, SCT_COMMAND
from .options import RegOptions
from .pairing import LabelSpec, Pair, explicit_pair, needed_inputs, plan_pairs
from .transfer import transfer_label


def transfer_pair(pair: Pair) -> dict:
    """The batch task (module level, picklable): one MRI."""
    if pair.error is not None:
        raise InputError(*pair.error)
    ensure_content(needed_inputs(pair), get=pair.datalad_get)
    result = transfer_label(pair.ct_label, pair.mri, pair.out, method=pair.method, interp=pair.interp,
                            ct_image=pair.ct_image, value=pair.value, kind=pair.kind,
                            classes=dict(pair.classes) if pair.classes else None, own_label=pair.own_label,
                            overwrite=pair.overwrite, qc_dir=pair.qc_dir, raw_root=pair.raw_root,
                            reg_options=pair.reg_options)
    return asdict(result)


def register_dataset(path_img: str | Path, path_label: str | Path | None = None, path_out: str | Path | None = None,
                     spec: LabelSpec = LabelSpec(), method: str = "header", interp: str = "nearest",
                     contrasts: Sequence[str] = DEFAULT_CONTRASTS,
                     ct_suffixes: Sequence[str] = DEFAULT_CT_SUFFIXES, naming: str = "neuropoly",
                     overwrite: bool = False, jobs: int | None = None, executor: str = "local",
                     scheduler=None, qc_dir: str | Path | None = None, datalad_get: bool = False,
                     datalad_save: bool = False, mri: str | Path | None = None,
                     ct_label: str | Path | None = None, save_message: str | None = None,
                     mri_label_origins: Sequence[str] = (), reg_options: RegOptions | None = None) -> list[dict]:
    """Transfer the CT labels of a whole dataset (or one explicit pair) to MRI space.

    ``mri_label_origins`` names the label origins (``Manual``, ``nnU-Net``,
    ``TotalSegmentator``, ``any``; read from each sidecar's ``GeneratedBy``) of
    labels already on an MRI that are used instead of the CT label; by
    default the CT label is always transferred.
    Failures of single MRIs are collected and raised together as a
    BatchError after the others finished (and were saved).
    """
    path_img = Path(path_img)
    if not path_img.is_dir():
        raise MissingFileError("BIDS dataset folder not found", path_img, "check --path-img")
    path_label = Path(path_label) if path_label else path_img / "derivatives" / "labels"
    path_out = Path(path_out) if path_out else path_img / "derivatives" / "reg-labels"
    if method not in METHODS or interp not in INTERPOLATIONS:
        raise UsageError(f"unknown method/interpolation {method!r}/{interp!r}", None,
                         f"use --method {'|'.join(METHODS)} and --interp {'|'.join(INTERPOLATIONS)}")
    if method == "sct" and shutil.which(SCT_COMMAND) is None:
        raise ExternalToolError(f"{SCT_COMMAND} not found on PATH (--method sct needs spinalcordtoolbox)",
                                SCT_COMMAND, "install spinalcordtoolbox, or use --method header")
    get = get_requested(datalad_get)
    reg_options = (reg_options or RegOptions()).check()
    common = {"method": method, "interp": interp, "overwrite": overwrite,
                  "qc_dir": str(qc_dir) if qc_dir else None, "datalad_get": get}
    if (mri is None) != (ct_label is None):
        raise UsageError("--mri and --ct-label go together", None, "give both, or neither for the whole dataset")
    if mri is not None:
        pairs = [explicit_pair(Path(mri), Path(ct_label), path_img, path_out, spec, naming, **common)]
    else:
        if not path_label.is_dir():
            raise MissingFileError("label folder not found", path_label,
                                   "run the CT segmentation first or pass --path-label")
        pairs = plan_pairs(path_img, path_label, path_out, spec, contrasts, ct_suffixes, naming, method,
                           interp, overwrite, Path(qc_dir) if qc_dir else None, get, tuple(mri_label_origins))
    pairs = [replace(p, reg_options=reg_options) for p in pairs]
    # one check before any work: one error line naming the files and `datalad get`, or one fetch
    ensure_content(list(dict.fromkeys(p for pair in pairs if pair.error is None for p in needed_inputs(pair))),
                   get=get)
    ensure_writable_dir(path_out)
    outcomes = run_tasks(transfer_pair, pairs, keys=[p.key for p in pairs], jobs=jobs, executor=executor,
                         scheduler=scheduler, desc="register")
    results = [o.value for o in outcomes if o.ok]
    if datalad_save:
        _save(results, path_out, method, save_message)
    raise_for_failures(outcomes, "MRI images")
    return results


def _save(results: list[dict], path_out: Path, method: str, save_message: str | None) -> None:
    """One datalad save of everything this run wrote (labels, sidecars, transforms)."""
    written = [r for r in results if r["status"] == "written"]
    files: list[str] = []
    for r in written:
        files += [r["output"], str(sidecar_path(r["output"]))] + ([r["transform"]] if r["transform"] else [])
    if files:
        files.append(str(path_out / "dataset_description.json"))
        save_outputs(dataset_of(path_out), files, save_message or f"totalseg_bids.register: {len(written)} "
                                                                  f"label(s) transferred to MRI space ({method})")
