"""Trained models and the prediction engine: find a model folder, check it, and predict with
nnU-Net's own predictor, loaded once.

torch and nnunetv2 are imported only inside the functions that run the model,
after ``nnUNet_extTrainer`` names our trainer folder (nnU-Net needs the trainer
class to rebuild the network).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import InputError, MissingFileError, UsageError
from ..core.parallel import default_jobs
from . import paths
from .naming import (
    CHECKPOINT_FINAL,
    DATASET_JSON,
    DEFAULT_CONFIGURATION,
    DEFAULT_PLANS,
    PLANS_JSON,
    find_dataset,
    fold_folder,
    model_identifier,
    parse_model_identifier,
)

log = logging.getLogger(__name__)


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
        """Foreground value -> name (region labels, whose values are lists, left out)."""
        return {int(v): k for k, v in self.labels.items() if k != "background" and not isinstance(v, list)}


def model_folder(dataset: str | int, configuration: str = DEFAULT_CONFIGURATION, trainer: str = paths.DEFAULT_TRAINER,
                 plans: str = DEFAULT_PLANS, results: str | Path | None = None) -> Path:
    """``nnUNet_results/Dataset<NNN>_<Name>/<trainer>__<plans>__<configuration>`` (not checked)."""
    fix = "check -d and nnUNet_results (train the model first)"
    root = Path(results) if results else paths.RESULTS.require(fix="export nnUNet_results=DIR or pass --model-dir")
    return find_dataset(root, dataset, fix) / model_identifier(trainer, plans, configuration)


def trained_folds(folder: Path, checkpoint: str = CHECKPOINT_FINAL) -> tuple[str, ...]:
    """The folds of a model folder that hold ``checkpoint``: every numbered fold (nnU-Net's
    cross-validation models, ensembled at prediction), else the all-cases ``fold_all``.

    >>> trained_folds(Path("/nonexistent"))
    ()
    """
    numbered = sorted(int(p.parent.name[5:]) for p in folder.glob(f"fold_*/{checkpoint}")
                       if p.parent.name[5:].isdigit())
    if numbered:
        return tuple(str(f) for f in numbered)
    return ("all",) if (folder / fold_folder("all") / checkpoint).is_file() else ()


def resolve_model(model_dir: str | Path | None = None, dataset: str | int | None = None,
                  configuration: str = DEFAULT_CONFIGURATION, trainer: str = paths.DEFAULT_TRAINER,
                  plans: str = DEFAULT_PLANS, folds: Sequence[str | int] | None = None,
                  checkpoint: str = CHECKPOINT_FINAL, results: str | Path | None = None) -> Model:
    """Find and check a model folder before anything heavy is loaded; ``folds`` None: every trained
    fold (:func:`trained_folds`); ``all`` is nnU-Net's model trained on every case (``fold_all``)."""
    if model_dir is None:
        if dataset is None:
            raise UsageError("give --model-dir or -d DATASET", None, "e.g. -d 300 -c 3d_fullres")
        folder = model_folder(dataset, configuration, trainer, plans, results)
    else:
        folder = Path(model_dir)
    if not folder.is_dir():
        raise MissingFileError("model folder not found", folder, "check --model-dir / -d -c -tr -p (train it first)")
    for name in (DATASET_JSON, PLANS_JSON):
        if not (folder / name).is_file():
            raise MissingFileError(f"model folder has no {name}", folder, "give a trained nnU-Net model folder")
    if folds is None:
        folds = trained_folds(folder, checkpoint)
        if not folds:
            raise MissingFileError(f"no trained fold (fold_*/{checkpoint})", folder,
                                   "train the model first (python -m totalseg_bids.train_nnunet)")
    folds = tuple(str(f) for f in folds)
    for fold in folds:
        ck = folder / fold_folder(fold) / checkpoint
        if not ck.is_file():
            raise MissingFileError("checkpoint not found", ck, "check -f and --checkpoint (training finished?)")
    try:
        ds = json.loads((folder / DATASET_JSON).read_text(encoding="utf-8"))
        pl = json.loads((folder / PLANS_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"unreadable model JSON ({exc})", folder, "re-export the model") from None
    tr, pn, cfg = parse_model_identifier(folder.name)
    return Model(folder, str(pl.get("dataset_name", folder.parent.name)), cfg, tr, pn, folds, checkpoint,
                 dict(ds.get("labels", {})), dict(ds.get("channel_names", {})))


def choose_device(name: str = "auto", mps: bool = True) -> str:
    """``auto``: cuda when available, else mps (when ``mps``), else cpu; a requested device must exist."""
    import torch

    cuda = torch.cuda.is_available()
    has_mps = bool(mps and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if name == "auto":
        return "cuda" if cuda else ("mps" if has_mps else "cpu")
    if (name.startswith("cuda") and not cuda) or (name == "mps" and not has_mps):
        raise UsageError(f"--device {name} requested but not available", None, "use --device auto or cpu")
    return name


def nnunet_version() -> str | None:
    """The installed nnunetv2 version (None without nnU-Net)."""
    try:
        from importlib.metadata import version

        return version("nnunetv2")
    except Exception:  # noqa: BLE001 - metadata of a broken install
        return None


@contextlib.contextmanager
def nnunet_output() -> Iterator[None]:
    """nnU-Net prints progress to stdout, which is ours for results: send it to
    stderr when debugging, else drop it."""
    target = sys.stderr if log.isEnabledFor(logging.DEBUG) else open(os.devnull, "w")  # noqa: SIM115 - closed below
    try:
        with contextlib.redirect_stdout(target):
            yield
    finally:
        if target is not sys.stderr:
            target.close()


class Engine:
    """One nnUNetPredictor, loaded once, used for every image."""

    def __init__(self, model: Model, device: str = "auto", tta: bool = True, jobs: int | None = None):
        paths.use_our_trainers()
        import torch

        self.device = choose_device(device)
        self.jobs = jobs if jobs is not None else (1 if self.device == "cpu" else min(3, default_jobs()))
        if self.device == "cpu":
            torch.set_num_threads(max(1, default_jobs()))
        from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

        with nnunet_output():
            self.predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=tta,
                                             perform_everything_on_device=self.device.startswith("cuda"),
                                             device=torch.device(self.device), verbose=False,
                                             verbose_preprocessing=False, allow_tqdm=False)
            try:
                self.predictor.initialize_from_trained_model_folder(
                    str(model.folder), use_folds=tuple(int(f) if f != "all" else f for f in model.folds),
                    checkpoint_name=model.checkpoint)
            except Exception as exc:  # noqa: BLE001 - torch.load / architecture errors
                raise InputError(f"cannot load the model ({type(exc).__name__}: {str(exc).splitlines()[0][:150]})",
                                 model.folder, "check the model folder, trainer and checkpoint") from None
        self.file_ending = self.predictor.dataset_json.get("file_ending", ".nii.gz")

    def predict_one(self, images: Sequence[Path], out_truncated: Path) -> Path:
        """Predict one case into ``<out_truncated><file_ending>`` in the scratch folder."""
        import torch
        from nnunetv2.inference.export_prediction import export_prediction_from_logits

        p = self.predictor
        pre = p.configuration_manager.preprocessor_class(verbose=False)
        with nnunet_output():
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
        first, *rest = p.list_of_parameters  # one per fold: a model has at least one (Model checks it)
        with torch.inference_mode():
            network.load_state_dict(first)
            total = p.predict_sliding_window_return_logits(data).to("cpu")
            for params in rest:
                network.load_state_dict(params)
                total += p.predict_sliding_window_return_logits(data).to("cpu")
        return total / len(p.list_of_parameters) if rest else total

    def predict_many(self, cases: Sequence[Sequence[Path]], outs: Sequence[Path]) -> None:
        """One ``predict_from_files`` call with nnU-Net's worker processes."""
        with nnunet_output():
            self.predictor.predict_from_files([[str(i) for i in c] for c in cases], [str(o) for o in outs],
                                              save_probabilities=False, overwrite=True,
                                              num_processes_preprocessing=self.jobs,
                                              num_processes_segmentation_export=self.jobs)
