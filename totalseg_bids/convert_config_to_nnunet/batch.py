"""Convert a whole config: every case checked (in parallel), then the dataset renamed into place.

* The dataset is built in a hidden temporary folder beside the target and
  renamed into place at the end: a failure leaves no partial dataset. Every
  case is checked even after one fails, and one ``BatchError`` lists all the
  failing cases (its ``done`` is empty: nothing was written).
* ``conversion_request.json`` records the cases, options and input sizes and
  times: rerunning the same command is a no-op ("up to date"); a changed
  config, option or input file is refused naming the difference, and
  ``--overwrite`` converts again.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.atomic import atomic_write_json
from ..core.bids import BidsName, raw_root_of
from ..core.config import Case, check_cases, load_config, read_request, request_difference, request_record
from ..core.datalad import ensure_content, get_requested
from ..core.errors import BatchError, InputError, OutputError, TotalsegBidsError, UsageError
from ..core.nifti import load_nifti
from ..core.options import resolve_options
from ..core.parallel import finish, run_tasks
from ..nnunet import paths
from ..nnunet.dataset import Fold, find_id_conflicts, verify_integrity, write_dataset_json, write_folds
from ..nnunet.naming import SPLITS_FILE, dataset_folder_name
from ..nnunet.splits import FoldCase, check_folds, make_folds, subject_key, validation_fold
from .case import CaseRecord, CaseTask, convert_case
from .labels import label_map
from .mapping import MAPPING_JSON, MAPPING_TSV, read_mapping, write_mapping
from .naming import case_id, channel_names, unique_ids
from .options import DEFAULT_NAME, FILE_ENDING, ConvertOptions, LinkMode
from .values import plain_header

#: Without -j, cohorts of this many cases always use the process pool (benchmarks/RESULTS.md) ...
SERIAL_BELOW = 1000
#: ... and smaller ones use it when their labels hold this many voxels in all: decoding the labels is
#: the per-case work; below this the pool's start-up costs more than it saves (benchmarks/RESULTS.md).
POOL_VOXELS = 150_000_000
#: What the dataset folder was converted from (cases, options, input sizes/times): a rerun compares it.
REQUEST_FILE = "conversion_request.json"
log = logging.getLogger(__name__)


@dataclass
class ConversionResult:
    """Summary of a conversion, for the CLI and for callers (``status``: ``written``, or
    ``skipped`` when the folder was already up to date)."""

    folder: Path
    num_training: int
    num_testing: int
    corrected: int
    seconds: float
    splits_written: list[Path]
    records: list[CaseRecord]
    status: str = "written"
    folds: int = 1

    def record(self, dataset_id: int) -> dict:
        """The stdout record of the dataset folder."""
        return {"status": self.status, "path": str(self.folder), "dataset_id": dataset_id,
                "cases": self.num_training + self.num_testing, "training": self.num_training,
                "testing": self.num_testing, "corrected": self.corrected, "folds": self.folds}


@dataclass
class _Plan:
    """What one conversion is made of, known before any case is placed."""

    config: Path | None
    datasets_path: Path
    contrasts: str
    cases: list[Case]
    labels: dict[str, int]
    remap: dict[int, int] | None
    channels: dict[str, str]
    out: Path
    name: str
    folder_name: str
    request: dict
    ids: list[str]
    folds: list[Fold]

    @property
    def final(self) -> Path:
        """The dataset folder this conversion writes."""
        return self.out / self.folder_name


def convert(config: str | Path, out: str | Path | None, dataset_id: int, name: str = DEFAULT_NAME,
            options: ConvertOptions | None = None, **kwargs) -> ConversionResult:
    """Convert a data config into ``<out>/Dataset<NNN>_<name>/`` (``out`` None: ``$nnUNet_raw``).

    ``options`` (or its fields as keyword arguments): see :class:`ConvertOptions`.
    A case that fails does not stop the others from being checked; then one
    ``BatchError`` lists every failing case and nothing is written.
    """
    t0 = time.perf_counter()
    opts = resolve_options(ConvertOptions, options, kwargs).check()
    plan = plan_conversion(config, out, dataset_id, name, opts)
    if (plan.final.exists() or plan.final.is_symlink()) and not opts.overwrite:
        done = _up_to_date(plan.final, plan.request, plan.config)
        if done is not None:
            return done
    records, splits = _build(plan, opts)
    written = [plan.final / SPLITS_FILE]
    pre = paths.PREPROCESSED.get()
    if pre is not None:
        written.append(write_folds(pre / plan.folder_name, splits))
    corrected = sum(1 for r in records if any("rewritten" in a or "resampled" in a or "compressed" in a
                                              for a in r.actions))
    num_training = sum(r.split != "TESTING" for r in records)
    return ConversionResult(plan.final, num_training, len(records) - num_training, corrected,
                            time.perf_counter() - t0, written, records, folds=len(splits))


def plan_conversion(config: str | Path, out: str | Path | None, dataset_id: int, name: str,
                    opts: ConvertOptions) -> _Plan:
    """Everything checked before a file is placed: names, output folder, cases, label map, channels."""
    folder_name = dataset_folder_name(dataset_id, name)
    out = _output_root(out)
    cfg, cases = _load_cases(config, opts.datasets_path, opts.datalad_get)
    labels, remap = label_map(opts.labels, opts.labels_json, cases)
    channels = channel_names(cases, opts.channels)
    _refuse_id_conflict(dataset_id, name, out)
    check_cases(cases, cfg.path)
    ids = unique_ids([case_id(name, _source_dataset(c.image), c.name) for c in cases])
    folds = _folds(cases, ids, opts, cfg.path)
    request = request_record(cases, {"name": name, "labels": labels, "remap": remap or {},
                                     "channels": channels, "reader": opts.reader, "link": opts.link,
                                     "form_tolerance": opts.form_tolerance, "folds": len(folds),
                                     "seed": opts.seed if len(folds) > 1 else None})
    return _Plan(cfg.path, cfg.datasets_path, cfg.contrasts, cases, labels, remap, channels, out, name,
                 folder_name, request, ids, folds)


def fold_cases(cases: Sequence[Case], ids: Sequence[str]) -> list[FoldCase]:
    """The cases as :mod:`totalseg_bids.nnunet.splits` sees them: id, subject of a dataset, split."""
    out = []
    for c, cid in zip(cases, ids):
        name = BidsName.try_parse(c.image)
        out.append(FoldCase(cid, subject_key(_source_dataset(c.image), name.subject if name else None, cid),
                            c.split))
    return out


def _folds(cases: Sequence[Case], ids: Sequence[str], opts: ConvertOptions, config: Path | None) -> list[Fold]:
    """The folds of ``splits_final.json``, checked against the rules before any file is placed."""
    units = fold_cases(cases, ids)
    try:
        folds = make_folds(units, opts.folds, opts.seed)
        check_folds(folds, units, complete=len(folds) > 1)
    except InputError as exc:
        raise InputError(exc.problem, config, exc.fix) from None
    if len(folds) > 1:
        log.info("%d folds of the TRAINING/VALIDATION cases, by subject (seed %d)", len(folds), opts.seed)
    return folds


def _build(plan: _Plan, opts: ConvertOptions) -> tuple[list[CaseRecord], list[Fold]]:
    """Place every case in a hidden working folder, write the dataset's files, rename it into place."""
    work = _work_dir(plan.out, plan.folder_name)
    try:
        tasks = _tasks(plan.cases, plan.ids, work, opts.link, tuple(sorted(plan.labels.values())), plan.remap,
                       opts.form_tolerance)
        records = _convert_all(tasks, [str(c.image) for c in plan.cases], opts.jobs)
        num_training = sum(r.split != "TESTING" for r in records)
        write_dataset_json(work, plan.channels, plan.labels, num_training, FILE_ENDING, opts.reader, plan.name,
                           totalseg_bids={"config": str(plan.config), "contrasts": plan.contrasts,
                                          "link": opts.link, "mapping": MAPPING_TSV, "folds": len(plan.folds),
                                          "seed": plan.request["options"]["seed"]})
        write_mapping(work, records, plan.datasets_path, len(plan.channels), validation_fold(plan.folds))
        write_folds(work, plan.folds)
        atomic_write_json(work / REQUEST_FILE, plan.request)
        if opts.verify:
            verify_integrity(work, opts.jobs or 1)
        _move_into_place(work, plan.final, plan.out, plan.folder_name)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return records, plan.folds


def _refuse_id_conflict(dataset_id: int, name: str, out: Path) -> None:
    """A dataset id already taken by another dataset name, here or in the nnU-Net folders, is refused."""
    conflicts = find_id_conflicts(dataset_id, name, [out, *paths.set_folders()])
    if conflicts:
        raise OutputError(f"dataset id {dataset_id:03d} already belongs to {conflicts[0].name}", conflicts[0],
                          "choose another -d (or remove that dataset)")


def _output_root(out: str | Path | None) -> Path:
    """``--out``, else ``$nnUNet_raw``, as an absolute path."""
    root = Path(out) if out else paths.RAW.get()
    if root is None:
        raise UsageError("no output folder: --out is not given and nnUNet_raw is not set", None,
                         "pass --out DIR or export nnUNet_raw=DIR")
    return root.expanduser().absolute()


def _load_cases(config: str | Path, datasets_path: str | Path | None, datalad_get: bool):
    """The config and its cases, refusing configs nnU-Net cannot train from;
    annexed inputs get their content (or a clear error)."""
    cfg = load_config(config, datasets_path, require=("TRAINING",))
    cases = cfg.cases(check_exists=False)  # annexed content is fetched (or refused) below
    if not cases:
        raise InputError("the config lists no cases", cfg.path, "add TRAINING/VALIDATION/TESTING entries")
    unlabelled = [c for c in cases if c.label is None and c.split != "TESTING"]
    if unlabelled:
        raise InputError(f"{len(unlabelled)} training case(s) without a label (e.g. {unlabelled[0].image})",
                         cfg.path, "use a LABEL config or object entries with a LABEL")
    if not any(c.split != "TESTING" for c in cases):
        raise InputError("no TRAINING or VALIDATION case", cfg.path, "add training cases to the config")
    all_files = [p for c in cases for p in (*c.images, *([c.label] if c.label else []))]
    ensure_content([p for p in all_files if Path(p).is_symlink() or Path(p).exists()], get=get_requested(datalad_get))
    return cfg, cfg.cases()  # every entry exists now: the same checks as without datalad


def _work_dir(out: Path, folder_name: str) -> Path:
    """A hidden folder beside the target, renamed into place at the end."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".tmp-{folder_name}-", dir=out))
        work.chmod(_default_dir_mode())  # mkdtemp makes 0700; the dataset is shared like any folder
    except OSError as exc:
        raise OutputError(f"cannot write ({exc.strerror})", out, "choose a writable --out") from None
    return work


def _tasks(cases: Sequence[Case], ids: Sequence[str], work: Path, link: LinkMode, allowed: tuple[int, ...],
           remap: dict[int, int] | None, form_tolerance: float) -> list[CaseTask]:
    """One task per case, and the split folders they write into."""
    for sub in ("imagesTr", "labelsTr", "imagesTs"):
        (work / sub).mkdir()
    if any(c.split == "TESTING" and c.label for c in cases):
        (work / "labelsTs").mkdir()
    return [CaseTask(i, c.split, tuple(c.images), c.label, work, link, allowed, remap, form_tolerance)
            for i, c in zip(ids, cases)]


def _convert_all(tasks: Sequence[CaseTask], keys: Sequence[str], jobs: int | None) -> list[CaseRecord]:
    """Run every case; one BatchError lists every case that failed.

    Its ``done`` is empty: the cases that were placed live in the working folder,
    which the caller removes, so no output of them exists.
    """
    if jobs is None:
        jobs = _default_jobs(tasks)
    outcomes = run_tasks(convert_case, list(tasks), keys=list(keys), jobs=jobs, desc="convert")
    try:
        return finish(outcomes, "case(s)")
    except BatchError as exc:
        failed = [item for item, _msg in exc.failures]
        shown = ", ".join(failed[:5]) + (", ..." if len(failed) > 5 else "")
        raise BatchError(f"{len(failed)} of {len(outcomes)} case(s) failed, so no dataset was written: {shown}",
                         None, "fix the cases named above and rerun", failures=exc.failures) from None


def _default_jobs(tasks: Sequence[CaseTask]) -> int | None:
    """1 (serial) or None (all cores) when ``-j`` is not given, from the cohort
    size and the first label's voxel count (one header read)."""
    if len(tasks) >= SERIAL_BELOW:
        return None
    first = next((t.label for t in tasks if t.label is not None), None)
    if first is None or len(tasks) < 8:
        return 1
    head = plain_header(first)
    try:
        voxels = int(np.prod(head.shape if head is not None else load_nifti(first, check_forms=False).shape))
    except TotalsegBidsError:  # the case itself reports it
        return 1
    return None if voxels * len(tasks) >= POOL_VOXELS else 1


def _move_into_place(work: Path, final: Path, out: Path, folder_name: str) -> None:
    """Rename the finished dataset into place, replacing an older one."""
    if final.exists() or final.is_symlink():
        old = Path(tempfile.mkdtemp(prefix=f".old-{folder_name}-", dir=out))
        os.replace(final, old / "ds")
        os.replace(work, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(work, final)


def _up_to_date(final: Path, request: dict, config: Path | None) -> ConversionResult | None:
    """The existing conversion when ``request`` made it and every file is there;
    otherwise an OutputError naming what differs (``--overwrite`` replaces it)."""
    old = read_request(final / REQUEST_FILE)
    if old is None:
        raise OutputError("dataset folder already exists (not made by this module, or by an older version)",
                          final, "pass --overwrite to replace it")
    diff = request_difference(old, request)
    if diff:
        raise OutputError(f"dataset folder was converted from another request ({diff})", final,
                          f"pass --overwrite to convert {config or 'the config'} again, or choose another -d")
    try:
        cases = read_mapping(final)
    except InputError:
        cases = None
    missing = None if cases is None else [p for c in cases for p in (*c["nnunet_images"], c["nnunet_label"])
                                          if p and not (final / p).exists()]
    if cases is None or missing:
        raise OutputError(f"dataset folder is incomplete ({missing[0] if missing else MAPPING_JSON} missing)",
                          final, "pass --overwrite to convert it again")
    log.info("%s is up to date with %s; nothing to do", final, config or "the config")
    records = [CaseRecord(c["case_id"], c["split"], c["images"], c["label"], c["nnunet_images"],
                          c["nnunet_label"], c.get("actions", [])) for c in cases]
    ntr = sum(r.split != "TESTING" for r in records)
    return ConversionResult(final, ntr, len(records) - ntr, 0, 0.0, [final / SPLITS_FILE], records, "skipped",
                            folds=int(request["options"].get("folds") or 1))


def _default_dir_mode() -> int:
    """0o777 minus the process umask (what ``mkdir`` would have given)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o777 & ~mask


def _source_dataset(image: Path) -> str:
    """The dataset an image comes from: its BIDS dataset's folder, else the folder it sits in."""
    if any(p.name.startswith("sub-") for p in image.parents):
        return raw_root_of(image).name
    return image.parent.name
