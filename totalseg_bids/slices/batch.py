"""The batch step: check the cases, read every label once (class values), export every case in
parallel, then the class table, the nnU-Net metadata and the manifest last."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..core import cli
from ..core.atomic import atomic_write_text, ensure_writable_dir
from ..core.config import SPLIT_NAMES
from ..core.datalad import ensure_content, get_requested
from ..core.derivatives import label_class_names
from ..core.errors import BatchError
from ..core.options import resolve_options
from ..core.parallel import finish, run_tasks
from ..nnunet.dataset import dataset_dir
from .case import CaseSlices, SliceJob, export_case, label_values
from .cases import SliceCase, check_channels, check_padding, config_cases
from .classes import class_mapping, classes_tsv
from .manifest import MANIFEST, remove_previous, request, slice_count, up_to_date, write_manifest
from .nnunet2d import nnunet_folds, write_nnunet_metadata
from .options import SlicesOptions


@dataclass
class SlicesResult:
    """One export: ``path`` is its manifest; ``status`` written, or skipped when already up to date."""

    status: str
    path: Path
    cases: int
    slices: int


def export_base(out: str | Path, opts: SlicesOptions) -> Path:
    """Where an export goes: ``out``, or ``out/Dataset<NNN>_<Name>`` for nnunet2d (refusing an id
    another dataset name holds there)."""
    if opts.layout == "nnunet2d":
        return dataset_dir(out, opts.dataset_id, opts.dataset_name)
    return Path(out)


def class_names(cases: Sequence[SliceCase], values: Sequence[int], labels_tsv: Path | None = None) -> dict[int, str]:
    """Names of the label values (:func:`~totalseg_bids.core.derivatives.label_class_names`),
    else ``class<value>``."""
    names = label_class_names([c.label for c in cases if c.label is not None], labels_tsv)
    return {v: names.get(v, f"class{v}") for v in values}


def _task(item: tuple[SliceCase, SliceJob]) -> CaseSlices:
    return export_case(*item)


def _run_batch(func: Callable, items: Sequence, keys: Sequence[str], opts: SlicesOptions, desc: str) -> list:
    return finish(run_tasks(func, items, keys=keys, jobs=opts.jobs, executor=opts.executor,
                            scheduler=opts.scheduler, desc=desc), desc)


def _class_values(cases: Sequence[SliceCase], opts: SlicesOptions) -> list[int]:
    """Every label value of the export, read before anything is written."""
    try:
        return sorted({v for vs in _run_batch(label_values, cases, [c.key for c in cases], opts, "labels")
                       for v in vs})
    except BatchError as exc:
        exc.done = []  # label values are no export: nothing was written
        raise


def export_cases(cases: Sequence[SliceCase], out: str | Path, options: SlicesOptions | None = None,
                 **kwargs: Any) -> SlicesResult:
    """Export every case under ``out`` (nnunet2d: into ``out/Dataset<NNN>_<Name>``).

    A first pass reads every label (checking it and collecting class values)
    before anything is written, so bad input leaves no partial export
    (a BatchError with nothing in ``.done``). A case that fails while slicing
    raises one BatchError whose ``.done`` holds the other cases' slices;
    the manifest is then not written, so a rerun exports again. Annexed inputs
    are fetched with ``datalad_get``; ``datalad_save`` saves the export.
    """
    opts = resolve_options(SlicesOptions, options, kwargs)
    check_channels(cases, opts)
    out = Path(out)
    base = export_base(out, opts)
    job = SliceJob(replace(opts, scheduler=None), out, base if opts.layout == "nnunet2d" else None)
    wanted = request(cases, opts, out, job.dataset_dir)
    if up_to_date(base, wanted, bool(opts.overwrite)):
        return SlicesResult("skipped", base / MANIFEST, len(cases), slice_count(base))
    ensure_content([p for c in cases for p in (*c.images, c.label) if p is not None],
                   get=get_requested(opts.datalad_get))
    check_padding(cases, opts)
    ensure_writable_dir(base)
    if opts.layout == "nnunet2d":  # too few subjects for the folds fails before any slice is written
        nnunet_folds([(c.key, c.subject, SPLIT_NAMES[c.split]) for c in cases if c.split != "TESTING"],
                     opts.folds, opts.seed)
    with cli.saving(opts, [base], f"totalseg_bids.slices: {opts.axis} slices of {len(cases)} case(s)"):
        values = _class_values(cases, opts)
        job = replace(job, mapping=class_mapping(values))
        names = class_names(cases, values, opts.labels_tsv)
        if opts.overwrite:
            remove_previous(base)
        done = _run_batch(_task, [(c, job) for c in cases], [c.key for c in cases], opts, "cases")
        rows = [r for case in done for r in case.rows]
        atomic_write_text(base / "classes.tsv", classes_tsv(job.mapping, names))
        if opts.layout == "nnunet2d":
            write_nnunet_metadata(base, cases[0].images, rows, names, job.mapping, opts.channels, opts.axis,
                                  opts.folds, opts.seed)
        return SlicesResult("written", write_manifest(base, rows, wanted), len(cases), len(rows))


def export_slices(config: str | Path, out: str | Path, options: SlicesOptions | None = None,
                  **kwargs: Any) -> SlicesResult:
    """Export the slices of every case of a data config (see :func:`export_cases`)."""
    opts = resolve_options(SlicesOptions, options, kwargs)
    ensure_content(cli.config_inputs(config, opts.datasets_path), get=get_requested(opts.datalad_get))
    return export_cases(config_cases(Path(config), opts.datasets_path), out, opts)
