"""Run a trained nnU-Net on BIDS images and write the masks as BIDS derivatives.

``python -m totalseg_bids.predict --config test_sacrum.json -d 300 -c 3d_fullres``
(or ``--bids-dir DIR --contrasts T1w T2w``, or ``--model-dir DIR``) writes, for
every image, ``<dataset>/derivatives/labels/sub-XX/[ses-YY/]anat/<image stem>
_label-<name>_seg.nii.gz`` (``_dseg`` + ``.tsv`` for several classes) with a
JSON sidecar, on the image's exact grid, ``uint8``, ``qform == sform``.

Why it is built this way:

* The model is loaded **once** (``nnUNetPredictor.initialize_from_trained_
  model_folder``) and every image goes through the same predictor; the seed
  workflow reloaded it for each file. Images whose outputs exist are skipped
  before anything is loaded, so a finished run costs nothing (resume).
* Each image is first read by us (a corrupt or annexed file gives a clear
  one-line error) and then predicted through nnU-Net's own preprocessing and
  export, into a **scratch folder** (nnU-Net writes its own JSON files beside
  predictions). The result is then checked against the image grid, post-
  processed and written atomically into the derivatives. One failing image is
  reported; the others continue, and the batch ends in one ``BatchError``
  listing every failed image (its ``done``: the records of the outputs that
  were written or skipped), after a summary line in the log.
* On the CPU (``-j 1``, the default there) images are predicted one after the
  other in this process: nnU-Net's worker pools would spawn processes that
  each import torch, which costs more than they save on small machines. The
  forward pass runs on every core the process may use, also where
  ``nnUNet_def_n_proc=1`` would make nnU-Net cap it at one thread. With
  ``-j N > 1`` (default on a GPU) each ``--batch-size`` chunk goes to nnU-Net's
  ``predict_from_files`` with N preprocessing/export workers.
* Largest connected component with cc3d (26-connectivity), per label or on the
  union of labels. **Ties** (two components of the same voxel count): the one
  whose first voxel comes first in C-order raster scan of the array (lowest
  i, then j, then k) wins, since cc3d numbers components in that order and
  ``np.argmax`` returns the first maximum. Empty predictions stay empty: the
  file is written, the sidecar says ``"EmptyPrediction": true`` and a warning
  is logged.
* torch and nnunetv2 are imported only inside the functions that run the
  model, after ``nnUNet_extTrainer`` names our trainer folder (nnU-Net needs
  the trainer class to rebuild the network).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core import flags
from ..core import cli
from ..core.bids import dataset_path, derivative_path, label_value, raw_root_of
from ..core.config import SPLITS, load_config
from ..core.datalad import ensure_content, get_requested
from ..core.derivatives import ensure_dataset_description, generated_by, output_complete, write_dseg_tsv, write_sidecar
from ..core.errors import BatchError, InputError, MissingFileError, TotalsegBidsError, UsageError
from ..core.options import options_from_args, resolve_options
from ..core.index import find_images
from ..core.nifti import GRID_ATOL, Grid, load_nifti, nonzero_bbox, read_data, resample_label, save_mask
from ..core.parallel import default_jobs, shard
from ..core.qc_hook import qc_entry

log = logging.getLogger(__name__)  # not __name__: "__main__" under python -m

KEEP_LARGEST = ("per-label", "union", "off")
_FOLDER_RE = re.compile(r"^(?P<trainer>[^_].*?)__(?P<plans>.+?)__(?P<configuration>[^_].*)$")


# ------------------------------------------------------------ pure helpers
def keep_largest(seg: np.ndarray, mode: str = "per-label", connectivity: int = 26) -> tuple[np.ndarray, dict]:
    """Keep the largest connected component, per label or on the union.

    Returns the cleaned map and ``{label: voxels removed}``. Ties: the
    component found first in a C-order raster scan wins (see module doc).

    >>> seg = np.zeros((1, 1, 7), np.uint8); seg[0, 0, [0, 1, 3, 5, 6]] = [1, 1, 1, 2, 2]
    >>> out, removed = keep_largest(seg)
    >>> out[0, 0].tolist(), removed
    ([1, 1, 0, 0, 0, 2, 2], {1: 1})
    >>> keep_largest(seg, "union")[0][0, 0].tolist()  # union: two components of 2 tie, the first wins
    [1, 1, 0, 0, 0, 0, 0]
    >>> tie = np.zeros((1, 1, 5), np.uint8); tie[0, 0, [0, 2]] = 1
    >>> keep_largest(tie)[0][0, 0].tolist()  # two single voxels: the first one wins
    [1, 0, 0, 0, 0]
    """
    if mode not in KEEP_LARGEST:
        raise UsageError(f"unknown --keep-largest {mode!r}", None, f"use one of {', '.join(KEEP_LARGEST)}")
    if mode == "off":
        return seg, {}
    box = nonzero_bbox(seg) if seg.ndim == 3 else None
    if box is None:
        return seg, {}
    # label only the labelled box: a prediction covers a small part of the field of
    # view, and raster order inside the box keeps the tie rule
    window = tuple(slice(int(a), int(b) + 1) for a, b in zip(*box))
    kept, removed = _keep_largest_in(np.ascontiguousarray(seg[window]), mode, connectivity)
    out = np.zeros_like(seg)
    out[window] = kept
    return out, removed


def _keep_largest_in(seg: np.ndarray, mode: str, connectivity: int) -> tuple[np.ndarray, dict]:
    import cc3d

    source = seg if mode == "per-label" else (seg > 0).astype(np.uint8)
    comps, n = cc3d.connected_components(source, connectivity=connectivity, return_N=True)
    if n <= 1:
        return seg, {}
    flat = comps.ravel()
    sizes = np.bincount(flat, minlength=n + 1)
    comp_label = np.zeros(n + 1, dtype=np.int64)
    comp_label[flat] = source.ravel()  # every voxel of a component has its label
    keep = np.zeros(n + 1, dtype=bool)
    for value in np.unique(comp_label[1:]):
        ids = np.flatnonzero(comp_label == value)
        ids = ids[ids > 0]
        keep[ids[np.argmax(sizes[ids])]] = True  # first maximum = first in raster order
    mask = keep[comps]
    out = np.where(mask, seg, 0).astype(seg.dtype)
    removed_vals, removed_counts = np.unique(seg[(seg > 0) & ~mask], return_counts=True)
    return out, {int(v): int(c) for v, c in zip(removed_vals, removed_counts)}


def parse_model_folder(name: str) -> tuple[str, str, str]:
    """Trainer, plans and configuration from nnU-Net's ``<trainer>__<plans>__<configuration>``.

    >>> parse_model_folder("nnUNetTrainer__nnUNetPlans__3d_fullres")
    ('nnUNetTrainer', 'nnUNetPlans', '3d_fullres')
    """
    m = _FOLDER_RE.match(name)
    if not m:
        raise InputError("not an nnU-Net model folder name (<trainer>__<plans>__<configuration>)", name,
                         "give the folder that holds fold_0/, dataset.json and plans.json")
    return m["trainer"], m["plans"], m["configuration"]


def find_dataset_folder(results: Path, dataset: str) -> Path:
    """``Dataset<NNN>_<Name>`` in ``results`` for an id (``300``) or a full name.

    >>> find_dataset_folder(Path("/nonexistent"), "300")
    Traceback (most recent call last):
    ...
    totalseg_bids.core.errors.MissingFileError: /nonexistent: nnUNet_results folder not found; set nnUNet_results or pass --model-dir
    """
    if not results.is_dir():
        raise MissingFileError("nnUNet_results folder not found", results, "set nnUNet_results or pass --model-dir")
    names = sorted(p.name for p in results.iterdir() if p.is_dir() and p.name.startswith("Dataset"))
    if dataset.isdigit():
        prefix = f"Dataset{int(dataset):03d}_"
        hits = [n for n in names if n.startswith(prefix)]
    else:
        hits = [n for n in names if n == dataset]
    if not hits:
        known = ", ".join(names[:5]) or "none"
        raise MissingFileError(f"no trained dataset {dataset} (found: {known})", results,
                               "check -d or nnUNet_results")
    return results / hits[0]


def choose_device(name: str = "auto") -> str:
    """``auto``: cuda when available, else mps, else cpu; a requested device must exist."""
    import torch

    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if name == "auto":
        return "cuda" if cuda else ("mps" if mps else "cpu")
    if (name.startswith("cuda") and not cuda) or (name == "mps" and not mps):
        raise UsageError(f"--device {name} requested but not available", None, "use --device auto or cpu")
    return name


def output_kind(labels: dict[str, Any]) -> str:
    """``seg`` for one foreground label, ``dseg`` for several.

    >>> output_kind({"background": 0, "sacrum": 1}), output_kind({"background": 0, "a": 1, "b": 2})
    ('seg', 'dseg')
    """
    return "seg" if len([k for k in labels if k != "background"]) == 1 else "dseg"


# ------------------------------------------------------------------- model
@dataclass
class Model:
    """A trained model folder and what the sidecars record about it."""

    folder: Path
    dataset: str
    configuration: str
    trainer: str
    plans: str
    folds: tuple[str, ...]
    checkpoint: str
    labels: dict[str, int]
    channels: dict[str, str]
    identity: dict[str, str] = field(default_factory=dict)  # installed name and zip checksum, when known

    @property
    def classes(self) -> dict[int, str]:
        return {int(v): k for k, v in self.labels.items() if k != "background" and not isinstance(v, list)}


def resolve_model(model_dir: str | Path | None = None, dataset: str | None = None,
                  configuration: str = "3d_fullres", trainer: str = "nnUNetTrainer", plans: str = "nnUNetPlans",
                  folds: Sequence[str] = ("0",), checkpoint: str = "checkpoint_final.pth",
                  results: str | Path | None = None) -> Model:
    """Find and check a model folder before anything heavy is loaded."""
    if model_dir is None:
        if dataset is None:
            raise UsageError("give --model-dir or -d DATASET", None, "e.g. -d 300 -c 3d_fullres")
        results = results or os.environ.get("nnUNet_results")
        if not results:
            raise UsageError("-d needs nnUNet_results", None, "export nnUNet_results=DIR or pass --model-dir")
        folder = find_dataset_folder(Path(results), str(dataset)) / f"{trainer}__{plans}__{configuration}"
    else:
        folder = Path(model_dir)
    if not folder.is_dir():
        raise MissingFileError("model folder not found", folder, "check --model-dir / -d -c -tr -p (train it first)")
    for name in ("dataset.json", "plans.json"):
        if not (folder / name).is_file():
            raise MissingFileError(f"model folder has no {name}", folder, "give a trained nnU-Net model folder")
    folds = tuple(str(f) for f in folds)
    for f in folds:
        ck = folder / f"fold_{f}" / checkpoint
        if not ck.is_file():
            raise MissingFileError("checkpoint not found", ck, "check -f and --checkpoint (training finished?)")
    try:
        ds = json.loads((folder / "dataset.json").read_text(encoding="utf-8"))
        pl = json.loads((folder / "plans.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"unreadable model JSON ({exc})", folder, "re-export the model") from None
    tr, pn, cfg = parse_model_folder(folder.name)
    return Model(folder, str(pl.get("dataset_name", folder.parent.name)), cfg, tr, pn, folds, checkpoint,
                 dict(ds.get("labels", {})), dict(ds.get("channel_names", {})))


def _nnunet_env() -> None:
    """Make our trainers findable by nnU-Net (set before importing nnunetv2)."""
    from ..nnunet.trainers import trainer_env

    os.environ.update(trainer_env({"nnUNet_extTrainer": os.environ.get("nnUNet_extTrainer", "")}))


@contextlib.contextmanager
def _nnunet_output() -> Iterator[None]:
    """nnU-Net prints progress to stdout, which is ours for results: send it to
    stderr when debugging, else drop it."""
    target = sys.stderr if log.isEnabledFor(logging.DEBUG) else open(os.devnull, "w")
    try:
        with contextlib.redirect_stdout(target):
            yield
    finally:
        if target is not sys.stderr:
            target.close()


class Engine:
    """One nnUNetPredictor, loaded once, used for every image."""

    def __init__(self, model: Model, device: str = "auto", tta: bool = True, jobs: int | None = None):
        _nnunet_env()
        import torch

        self.device = choose_device(device)
        self.jobs = jobs if jobs is not None else (1 if self.device == "cpu" else min(3, default_jobs()))
        if self.device == "cpu":
            torch.set_num_threads(max(1, default_jobs()))
        from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

        with _nnunet_output():
            self.predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=tta,
                                             perform_everything_on_device=self.device.startswith("cuda"),
                                             device=torch.device(self.device), verbose=False,
                                             verbose_preprocessing=False, allow_tqdm=False)
            try:
                self.predictor.initialize_from_trained_model_folder(
                    str(model.folder), use_folds=tuple(int(f) if f != "all" else f for f in model.folds),
                    checkpoint_name=model.checkpoint)
            except Exception as exc:  # torch.load / architecture errors
                raise InputError(f"cannot load the model ({type(exc).__name__}: {str(exc).splitlines()[0][:150]})",
                                 model.folder, "check the model folder, trainer and checkpoint") from None
        self.file_ending = self.predictor.dataset_json.get("file_ending", ".nii.gz")

    def predict_one(self, images: Sequence[Path], out_truncated: Path) -> Path:
        """Predict one case into ``<out_truncated><file_ending>`` in the scratch folder."""
        import torch
        from nnunetv2.inference.export_prediction import export_prediction_from_logits

        p = self.predictor
        pre = p.configuration_manager.preprocessor_class(verbose=False)
        with _nnunet_output():
            data, _, props = pre.run_case([str(i) for i in images], None, p.plans_manager,
                                          p.configuration_manager, p.dataset_json)
            logits = self._logits(torch.from_numpy(data))
            export_prediction_from_logits(logits, props, p.configuration_manager, p.plans_manager,
                                          p.dataset_json, str(out_truncated), False)
        return Path(str(out_truncated) + self.file_ending)

    def _logits(self, data: Any) -> Any:  # torch tensors (torch is imported lazily)
        """The fold-averaged logits of one preprocessed case, as nnU-Net's
        ``predict_logits_from_preprocessed_data`` computes them, but with the
        torch threads this engine set: nnU-Net caps the forward pass at
        ``nnUNet_def_n_proc`` threads, its worker count (1 on small machines),
        which leaves the other cores idle during the convolutions."""
        import torch

        p = self.predictor
        network = getattr(p.network, "_orig_mod", p.network)  # a torch.compile'd network wraps the module
        total = None
        with torch.inference_mode():
            for params in p.list_of_parameters:
                network.load_state_dict(params)
                part = p.predict_sliding_window_return_logits(data).to("cpu")
                if total is None:
                    total = part
                else:
                    total += part
        return total / len(p.list_of_parameters) if len(p.list_of_parameters) > 1 else total

    def predict_many(self, cases: Sequence[Sequence[Path]], outs: Sequence[Path]) -> None:
        """One ``predict_from_files`` call with nnU-Net's worker processes."""
        with _nnunet_output():
            self.predictor.predict_from_files([[str(i) for i in c] for c in cases], [str(o) for o in outs],
                                              save_probabilities=False, overwrite=True,
                                              num_processes_preprocessing=self.jobs,
                                              num_processes_segmentation_export=self.jobs)


# ---------------------------------------------------------- per-image step
@dataclass
class Item:
    """One prediction to make: input image(s) and the output path."""

    images: tuple[Path, ...]
    output: Path
    raw_root: Path
    derivatives_root: Path

    @property
    def key(self) -> str:
        return str(self.images[0])


def validate_images(images: Sequence[Path]) -> None:
    """Read every channel fully: corrupt or absent data fails here with our
    message instead of deep inside nnU-Net; channels must share one shape."""
    shapes = []
    for path in images:
        img = load_nifti(path)
        data = read_data(img, path)
        if data.ndim != 3:
            raise InputError(f"image is {data.ndim}D, the model needs 3D", path, "give one 3D volume per channel")
        if np.issubdtype(data.dtype, np.floating) and not np.isfinite(data).all():
            raise InputError("image contains NaN or infinite values", path, "replace them before predicting")
        shapes.append(tuple(data.shape))
    if len(set(shapes)) > 1:
        raise InputError(f"channels have different shapes {shapes}", images[0], "resample the channels onto one grid")


def check_writable(folder: Path) -> None:
    """Create ``folder`` and a probe file in it: an output folder that cannot take
    files fails before the model is loaded, not after inference."""
    probe = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".totalseg_bids-probe-", dir=folder)
        os.close(fd)
    except OSError as exc:
        raise InputError(f"output folder is not writable ({exc.strerror or exc})", folder,
                         "fix its permissions, free space or choose another --derivatives") from None
    finally:
        if probe is not None:
            Path(probe).unlink(missing_ok=True)


def preflight(items: Sequence[Item], failures: list[tuple[str, str]]) -> list[Item]:
    """Check every image (readable, 3D, finite, channels on one grid) and every
    output folder before the model loads, so a bad input costs ~0 s.

    Bad images are recorded in ``failures`` and dropped; an unwritable output
    folder stops the run (every image of that dataset would fail the same way).
    """
    for root in sorted({it.derivatives_root for it in items}):
        check_writable(root)
    good = []
    for item in cli.progress(items, desc="check images"):
        try:
            validate_images(item.images)
            good.append(item)
        except TotalsegBidsError as exc:
            failures.append((item.key, str(exc)))
    return good


def announce_mirroring(device: str, tta: bool, n_images: int) -> None:
    """Say once, before predicting, what test-time mirroring costs on the CPU
    (nnU-Net's default, kept: it is cheap on a GPU) and how to turn it off."""
    if tta and device == "cpu":
        log.warning("test-time mirroring is on (nnU-Net's default): on the CPU it makes each of the %d image(s) "
                    "up to ~8x slower in 3D; --no-tta turns it off", n_images)


def to_image_grid(pred_path: Path, image_path: Path) -> tuple[np.ndarray, np.ndarray, str | None]:
    """The prediction as an array on the image's grid, with the image's affine.

    nnU-Net writes predictions in the image's voxel order, but its reader may
    take the geometry from the qform where nibabel takes the sform: with the
    same shape, spacing and axis directions, the voxels are the image's voxels
    and only the header is replaced. Otherwise the prediction is resampled
    through world coordinates (nearest neighbour). Returns (data, affine, note).
    """
    pred_img = load_nifti(pred_path, check_forms=False)
    pred = np.rint(read_data(pred_img, pred_path)).astype(np.uint16)
    image = load_nifti(image_path, check_forms=False)
    grid, pgrid = Grid.of(image), Grid.of(pred_img)
    same_axes = (tuple(pgrid.shape) == tuple(grid.shape) and np.allclose(pgrid.spacing, grid.spacing, atol=GRID_ATOL)
                 and np.allclose(pgrid.direction, grid.direction, atol=GRID_ATOL))
    if same_axes:
        gap = float(np.abs(pgrid.origin - grid.origin).max())
        note = f"nnU-Net's geometry differs by {gap:.3g} mm (qform vs sform); kept the image's" if gap > 0.1 else None
        return pred, grid.affine, note
    return resample_label(pred, pgrid.affine, grid, mode="nearest"), grid.affine, "resampled onto the image grid"


@dataclass
class PostOptions:
    """Post-processing and metadata of every image, derived once from :class:`PredictOptions` and the model."""

    keep: str = "per-label"
    kind: str = "seg"
    classes: dict[int, str] = field(default_factory=dict)
    generated: list[dict] = field(default_factory=list)
    qc_dir: Path | None = None


def finalize(item: Item, pred_path: Path, opts: PostOptions) -> dict:
    """Post-process one scratch prediction and write it (then its sidecar) into the derivatives."""
    data, affine, note = to_image_grid(pred_path, item.images[0])
    if note:
        log.info("%s: %s", dataset_path(item.images[0]), note)
    data, removed = keep_largest(data, opts.keep)
    if opts.kind == "seg":
        data = (data > 0).astype(np.uint8)
    empty = not data.any()
    if empty:
        log.warning("%s: empty prediction (no foreground); written empty and flagged in the sidecar", item.key)
    ensure_dataset_description(item.derivatives_root, item.derivatives_root.name,
                               "Segmentations predicted by nnU-Net through totalseg_bids.predict")
    save_mask(data, affine, item.output)
    if opts.kind == "dseg":
        write_dseg_tsv(item.output, opts.classes)
    extra = {"EmptyPrediction": True} if empty else {}
    if removed:
        extra["RemovedVoxels"] = {opts.classes.get(k, str(k)): v for k, v in removed.items()}
    write_sidecar(item.output, list(item.images), opts.generated, spatial_reference=item.images[0],
                  raw_root=item.raw_root, **extra)
    meta = {"empty": empty, "removed_voxels": removed, "note": note}
    qc_entry(opts.qc_dir, item.images[0], item.output, "predict", meta=meta)
    return meta


# -------------------------------------------------------------- batch step
def collect_inputs(config: str | Path | None = None, split: str = "TESTING", bids_dir: str | Path | None = None,
                   contrasts: Sequence[str] | None = None, datasets_path: str | Path | None = None) -> list[tuple[Path, ...]]:
    """The image lists (one tuple of channels per case) from a config split or a BIDS query."""
    if (config is None) == (bids_dir is None):
        raise UsageError("give either --config or --bids-dir", None, "e.g. --config test_sacrum.json")
    if config is not None:
        cfg = load_config(config, datasets_path)
        splits = list(SPLITS) if split.upper() == "ALL" else [split]
        cases = cfg.cases(splits)
        if not cases:
            raise InputError(f"the config lists no {split} image", cfg.path, "choose another --split")
        return [tuple(c.images) for c in cases]
    if not contrasts:
        raise UsageError("--bids-dir needs --contrasts", None, "e.g. --contrasts T1w T2w")
    files = find_images(bids_dir, contrasts)
    if not files:
        raise InputError(f"no {'/'.join(contrasts)} image found", bids_dir, "check --contrasts and the folder")
    return [(f.path,) for f in files]


@dataclass(frozen=True)
class PredictOptions:
    """Every option of :func:`predict` besides the inputs and the model.

    ``label_name``: the outputs' ``label-`` entity (default: the model's class
    for a binary model, else its dataset name); ``derivatives``: the folder in
    each dataset's ``derivatives/``; ``keep``: largest-component filter (one of
    ``KEEP_LARGEST``); ``tta``: test-time mirroring; ``overwrite``: True, or
    ``"manual"`` to replace hand-corrected labels too; ``num_parts``/``part_id``:
    this run's shard; ``batch_size``: images per predictor call; ``jobs``:
    nnU-Net workers (None: 1 on the CPU, up to 3 on a GPU); ``qc_dir``: QC report
    to add every output to; ``datalad_get``: fetch annexed images first.
    """

    label_name: str | None = None
    derivatives: str = "labels"
    naming: str = "neuropoly"
    keep: str = "per-label"
    device: str = "auto"
    tta: bool = True
    overwrite: bool | str = False
    num_parts: int = 1
    part_id: int = 0
    batch_size: int = 8
    jobs: int | None = None
    qc_dir: str | Path | None = None
    datalad_get: bool = False

    def check(self) -> PredictOptions:
        """Refuse values no image could be predicted with, before anything is read."""
        if self.batch_size < 1:
            raise UsageError("--batch-size must be >= 1", None, "e.g. --batch-size 8")
        if self.keep not in KEEP_LARGEST:
            raise UsageError(f"unknown --keep-largest {self.keep!r}", None, f"use one of {', '.join(KEEP_LARGEST)}")
        if self.label_name is not None:
            label_value(self.label_name)  # raises a usage error on a name without letters or digits
        return self


@dataclass
class PredictSummary:
    """What a run did: outputs written (``empty``: those without foreground), skipped and failed."""

    predicted: list[Path]
    skipped: list[Path]
    empty: list[Path]
    failures: list[tuple[str, str]]
    seconds: float
    model_seconds: float = 0.0
    #: the derivative folders the outputs go to (what ``--datalad-save`` saves)
    roots: list[Path] = field(default_factory=list)

    def records(self) -> list[dict]:
        """One stdout record per output: ``skipped``, ``written``, or ``empty`` (written, no foreground).

        >>> PredictSummary([Path("a"), Path("b")], [Path("c")], [Path("b")], [], 1.0).records()[1:]
        [{'status': 'written', 'path': 'a'}, {'status': 'empty', 'path': 'b'}]
        """
        empty = set(self.empty)
        return ([{"status": "skipped", "path": str(p)} for p in self.skipped]
                + [{"status": "empty" if p in empty else "written", "path": str(p)} for p in self.predicted])

    def log(self) -> None:
        """The run's one summary line (stderr in the CLI)."""
        rate = len(self.predicted) / self.seconds * 60 if self.seconds and self.predicted else 0.0
        log.info("predicted %d, skipped %d (done), empty %d, failed %d in %.1f s (%.1f images/min, "
                 "model load %.1f s)", len(self.predicted), len(self.skipped), len(self.empty),
                 len(self.failures), self.seconds, rate, self.model_seconds)

    def finish(self) -> PredictSummary:
        """This summary when every image succeeded, else one BatchError (``done``: :meth:`records`)."""
        if self.failures:
            total = len(self.predicted) + len(self.skipped) + len(self.failures)
            shown = ", ".join(key for key, _ in self.failures[:5]) + (", ..." if len(self.failures) > 5 else "")
            raise BatchError(f"{len(self.failures)} of {total} image(s) failed: {shown}", None,
                             "fix them and re-run: finished outputs are skipped", failures=self.failures,
                             done=self.records())
        return self


def plan_items(inputs: Sequence[tuple[Path, ...]], nchan: int, label_name: str, kind: str, opts: PredictOptions,
               summary: PredictSummary) -> list[Item]:
    """The images still to predict; completed outputs go to ``summary.skipped``,
    inputs that cannot be planned to ``summary.failures``."""
    overwrite = opts.overwrite
    from ..core.provenance import refuse_manual_overwrite

    items: list[Item] = []
    for images in inputs:
        try:
            if len(images) != nchan:
                raise InputError(f"the model takes {nchan} channel(s), got {len(images)}", images[0],
                                 "list one image per model channel (object entries in the config)")
            raw = raw_root_of(images[0])
            droot = raw / "derivatives" / opts.derivatives
            out = derivative_path(images[0], droot, label_name, kind=kind, naming=opts.naming)
        except TotalsegBidsError as exc:
            summary.failures.append((str(images[0]), str(exc)))
            continue
        if droot not in summary.roots:
            summary.roots.append(droot)
        if output_complete(out) and not overwrite:
            summary.skipped.append(out)
            continue
        try:  # a hand-corrected label survives --overwrite
            refuse_manual_overwrite(out, overwrite)
        except TotalsegBidsError as exc:
            summary.failures.append((str(out), str(exc)))
            continue
        items.append(Item(tuple(images), out, raw, droot))
    outs = [i.output for i in items]
    if len(set(outs)) != len(outs):
        dup = next(o for o in outs if outs.count(o) > 1)
        raise InputError("two inputs would write the same output", dup, "list every image once")
    return items


def default_label_name(model: Model, kind: str) -> str:
    """The ``label-`` entity when none is given: the class of a binary model, else the dataset name."""
    classes = model.classes
    return classes[min(classes)] if kind == "seg" and classes else re.sub(r"^Dataset\d+_", "", model.dataset)


def make_options(model: Model, engine: Engine, kind: str, opts: PredictOptions) -> PostOptions:
    """Post-processing options and the ``GeneratedBy`` records of every sidecar."""
    keep = opts.keep
    nn_meta = {"Dataset": model.dataset, "Configuration": model.configuration, "Trainer": model.trainer,
               "Plans": model.plans, "Folds": list(model.folds), "Checkpoint": model.checkpoint,
               "Device": engine.device, "TTA": bool(opts.tta), "Model": model.identity or None}
    post = {"per-label": "largest connected component per label (26-connectivity, cc3d)",
            "union": "largest connected component of the union of labels (26-connectivity, cc3d)",
            "off": "none"}[keep]
    return PostOptions(keep, kind, model.classes,
                       [generated_by("nnUNet", _nnunet_version(), **nn_meta),
                        generated_by("totalseg_bids", PostProcessing=post, Command="totalseg_bids.predict")],
                       Path(opts.qc_dir) if opts.qc_dir else None)


def run_items(items: Sequence[Item], model: Model, kind: str, options: PredictOptions,
              summary: PredictSummary) -> None:
    """Load the model once and predict ``items`` chunk by chunk through a scratch folder."""
    device = choose_device(options.device)
    announce_mirroring(device, options.tta, len(items))
    tm = time.perf_counter()
    engine = Engine(model, device=device, tta=options.tta, jobs=options.jobs)
    summary.model_seconds = time.perf_counter() - tm
    opts = make_options(model, engine, kind, options)
    batch_size = options.batch_size
    log.info("model loaded in %.1f s on %s; predicting %d image(s)", summary.model_seconds, engine.device,
             len(items))
    scratch = Path(tempfile.mkdtemp(prefix="totalseg_bids-predict-"))
    bar = cli.progress(None, total=len(items), desc="predict")
    try:
        for start in range(0, len(items), batch_size):
            _run_chunk(engine, items[start:start + batch_size], scratch, start, opts, summary, bar)
    finally:
        bar.close()
        shutil.rmtree(scratch, ignore_errors=True)


def shard_inputs(inputs: Sequence[tuple[Path, ...]], opts: PredictOptions) -> list[tuple[Path, ...]]:
    """This run's part of the inputs (``num_parts``/``part_id``), in a stable order."""
    return shard(sorted(inputs, key=lambda c: str(c[0])), opts.num_parts, opts.part_id)


def derivative_roots(inputs: Sequence[tuple[Path, ...]], opts: PredictOptions) -> list[Path]:
    """The derivative folders this run's outputs go to (what ``--datalad-save`` saves),
    known before anything is predicted; inputs outside a BIDS dataset have none."""
    roots: list[Path] = []
    for images in shard_inputs(inputs, opts):
        try:
            root = raw_root_of(images[0]) / "derivatives" / opts.derivatives
        except TotalsegBidsError:
            continue
        if root not in roots:
            roots.append(root)
    return roots


def predict(inputs: Sequence[tuple[Path, ...]], model: Model, options: PredictOptions | None = None,
            **kwargs) -> PredictSummary:
    """Predict every input with one model load; see the module docstring.

    ``options`` (or its fields as keyword arguments): see :class:`PredictOptions`.
    Returns the summary when every image succeeded; otherwise raises one
    ``BatchError`` after the others are done, whose ``done`` holds their records.
    """
    t0 = time.perf_counter()
    opts = resolve_options(PredictOptions, options, kwargs).check()
    kind = output_kind(model.labels)
    label_name = opts.label_name or default_label_name(model, kind)
    label_value(label_name)  # raises a usage error on a name without letters or digits
    summary = PredictSummary([], [], [], [], 0.0)
    items = plan_items(shard_inputs(inputs, opts), len(model.channels) or 1, label_name, kind, opts, summary)
    if summary.skipped:
        log.info("%d output(s) already done, skipped (--overwrite redoes them)", len(summary.skipped))
    if items:
        ensure_content([p for it in items for p in it.images], get=get_requested(opts.datalad_get))
        items = preflight(items, summary.failures)
    if items:
        run_items(items, model, kind, opts, summary)
    summary.seconds = time.perf_counter() - t0
    summary.log()
    return summary.finish()


def _run_chunk(engine: Engine, chunk: Sequence[Item], scratch: Path, offset: int, opts: PostOptions,
               summary: PredictSummary, bar: Any = None) -> None:
    """Predict and finalise one chunk (validated by :func:`preflight`); failures are recorded, not raised."""
    ready = [(item, scratch / f"case{offset + n:06d}") for n, item in enumerate(chunk)]
    if not ready:
        return
    done: dict[int, Path] = {}
    if engine.jobs > 1 and len(ready) > 1:
        try:
            engine.predict_many([it.images for it, _ in ready], [t for _, t in ready])
            done = {n: Path(str(t) + engine.file_ending) for n, (_, t) in enumerate(ready)}
        except Exception as exc:  # noqa: BLE001 - fall back to one by one to find the culprit
            log.warning("batch prediction failed (%s); predicting this chunk image by image", type(exc).__name__)
    for n, (item, trunc) in enumerate(ready):
        t_image = time.perf_counter()
        try:
            pred = done.get(n) or engine.predict_one(item.images, trunc)
            if not pred.is_file():
                raise InputError("nnU-Net wrote no prediction", item.key, "rerun with -vv to see nnU-Net's output")
            meta = finalize(item, pred, opts)
            summary.predicted.append(item.output)
            if meta["empty"]:
                summary.empty.append(item.output)
        except TotalsegBidsError as exc:
            summary.failures.append((item.key, str(exc)))
        except MemoryError:
            summary.failures.append((item.key, f"{item.key}: out of memory; use a smaller --batch-size or a GPU"))
        except Exception as exc:
            log.debug("prediction failed", exc_info=True)
            msg = " ".join(str(exc).split())[:200]
            summary.failures.append((item.key, f"{item.key}: nnU-Net failed ({type(exc).__name__}: {msg}); "
                                               "check the image (rerun with -vv for nnU-Net's output)"))
        finally:
            _image_done(item, time.perf_counter() - t_image, bar)


def _image_done(item: Item, seconds: float, bar: Any) -> None:
    """Advance the per-image bar and log the image's elapsed time (shared by every path)."""
    log.info("%s: %.1f s", dataset_path(item.images[0]), seconds)
    if bar is not None:
        bar.update(1)


def _nnunet_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("nnunetv2")
    except Exception:  # noqa: BLE001
        return None


# --------------------------------------------------------------------- CLI
def get_parser() -> argparse.ArgumentParser:
    p = cli.build_parser(
        "predict", __doc__.splitlines()[0],
        epilog="examples:\n"
               "  python -m totalseg_bids.predict --config test_sacrum "
               "--datasets-path /data -d 300 -c 3d_fullres\n"
               "  python -m totalseg_bids.predict --bids-dir /data/ds --contrasts T1w T2w --model-dir "
               "$nnUNet_results/Dataset300_SacrumDataset/nnUNetTrainer__nnUNetPlans__3d_fullres --num-parts 4 --part-id 0")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", type=Path, help="data config (IMAGE or LABEL); predicts one --split")
    flags.add_bids_dir(src, dest="bids_dir", help="BIDS dataset; predicts every image of --contrasts")
    p.add_argument("--split", default="TESTING", choices=(*SPLITS, "ALL"), help="config split (default TESTING)")
    p.add_argument("--contrasts", nargs="+", metavar="SUFFIX", help="image suffixes for --bids-dir (e.g. T1w T2w)")
    p.add_argument("--datasets-path", type=Path, default=None,
                   help="override the config's DATASETS_PATH (or set TOTALSEG_BIDS_DATASETS_PATH)")
    m = p.add_mutually_exclusive_group(required=True)
    m.add_argument("--model-dir", type=Path, help="nnU-Net model folder <trainer>__<plans>__<configuration>")
    flags.add_dataset_id(m, dest="dataset", type=str, help="dataset id or name in $nnUNet_results (with -c, -tr, -p)")
    m.add_argument("--model", metavar="NAME", help="a model installed with python -m totalseg_bids.model install")
    m.add_argument("--model-zip", type=Path, metavar="FILE",
                   help="a zip written by python -m totalseg_bids.model export")
    p.add_argument("-c", "--configuration", default="3d_fullres")
    p.add_argument("-tr", "--trainer", default=os.environ.get("TOTALSEG_BIDS_NNUNET_TRAINER") or "nnUNetTrainer",
                   help="trainer of the model (default $TOTALSEG_BIDS_NNUNET_TRAINER, else nnUNetTrainer)")
    p.add_argument("-p", "--plans", default="nnUNetPlans")
    p.add_argument("-f", "--folds", nargs="+", default=["0"], help="folds to ensemble (default 0)")
    p.add_argument("--checkpoint", default="checkpoint_final.pth")
    flags.add_device(p)
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=True,
                   help="mirroring test-time augmentation, on by default on every device (nnU-Net's default); "
                        "on the CPU it costs up to ~8x in 3D and a warning says so: --no-tta turns it off")
    p.add_argument("--label-name", default=None,
                   help="label- entity of the outputs (default: the model's label name)")
    p.add_argument("--keep-largest", dest="keep", choices=KEEP_LARGEST, default="per-label",
                   help="largest connected component per label (default), on the union, or off")
    p.add_argument("--derivatives", default="labels", help="derivative folder name (default labels)")
    cli.add_naming_arg(p)
    cli.add_batch_args(p, jobs=True, dask=False)
    p.add_argument("--num-parts", type=int, default=1, help="split the images into N parts (GPUs, cluster jobs)")
    p.add_argument("--part-id", type=int, default=0, help="which part this run does (0-based)")
    p.add_argument("--batch-size", type=int, default=8, metavar="M",
                   help="images per predictor call (and per scratch folder); default 8")
    p.add_argument("--qc", dest="qc_dir", type=Path, default=None, metavar="DIR",
                   help="add every output to the QC report in DIR")
    cli.add_datalad_args(p)
    return p


def _run(args: argparse.Namespace) -> int:
    if args.bids_dir is not None and not args.contrasts:
        raise UsageError("--bids-dir needs --contrasts", None, "e.g. --contrasts T1w T2w")
    with tempfile.TemporaryDirectory(prefix="totalseg_bids-model-") as unpacked:
        identity = {}
        if args.model or args.model_zip:
            from ..model import installed_model, unpack_zip

            args.model_dir, identity = (installed_model(args.model, args.configuration) if args.model
                                        else unpack_zip(args.model_zip, unpacked, args.configuration))
        return _predict_cli(args, identity)


def _predict_cli(args: argparse.Namespace, identity: dict) -> int:
    model = resolve_model(args.model_dir, args.dataset, args.configuration, args.trainer, args.plans,
                          args.folds, args.checkpoint)
    model.identity = identity
    inputs = collect_inputs(args.config, args.split, args.bids_dir, args.contrasts, args.datasets_path)
    opts = options_from_args(PredictOptions, args).check()
    # skipped outputs of a resumed run are saved too; also when some images failed
    with cli.saving(args, derivative_roots(inputs, opts)):
        cli.report("predict", lambda: predict(inputs, model, opts).records())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(get_parser(), argv, _run)
