"""Plan and preprocess once, put the split file in place, train every fold of every configuration,
then let nnU-Net pick the best configuration.

nnU-Net's own command-line tools do the work, each in a subprocess with the
``nnUNet_*`` variables set, exactly as a user would run them; this module only
adds the checks (variables set, dataset converted, folds in the split file,
all before any planning) and the glue that users otherwise forget (split file,
trainer folder, device, ``--npz`` for ensembling, ``nnUNetv2_find_best_configuration``
once every fold is trained).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..core.options import resolve_options
from ..nnunet import paths
from ..nnunet import train as nnunet_train
from ..nnunet.dataset import install_splits, read_folds, split_file
from ..nnunet.engine import choose_device
from ..nnunet.naming import (
    INFERENCE_INFORMATION,
    SPLITS_FILE,
    find_dataset,
    fold_folder,
    is_model_identifier,
    model_identifier,
    parse_model_identifier,
)
from ..nnunet.train import BestConfiguration, read_best_configuration
from .case import train_fold
from .folds import requested_folds
from .options import TrainOptions

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """One record per configuration (its model folder, the folds trained now and those skipped) and
    nnU-Net's choice when find_best_configuration ran."""

    models: list[dict] = field(default_factory=list)
    best: BestConfiguration | None = None

    def records(self) -> list[dict]:
        """The stdout records: the model folders, then the choice."""
        return [*self.models, *([self.best.record()] if self.best else [])]


def train(dataset_id: str, options: TrainOptions | None = None, **kwargs) -> TrainResult:
    """Check the folds, plan/preprocess (with nnU-Net's integrity check), copy the split file, train each
    fold of each configuration, then run find_best_configuration when every fold is trained.

    ``options`` (or its fields as keyword arguments): see :class:`TrainOptions`.
    """
    opts = resolve_options(TrainOptions, options, kwargs)
    raw, pre, results = paths.require_all()
    ds_dir = find_dataset(raw, dataset_id, "run python -m totalseg_bids.convert_config_to_nnunet first")
    split = split_file(ds_dir, pre)
    available = len(read_folds(split)) if split is not None else None
    folds = requested_folds(opts.folds, available, split or ds_dir / SPLITS_FILE)
    device = opts.device or choose_device("auto", mps=False)
    env = paths.tool_env(device=device)
    models = {c: results / ds_dir.name / model_identifier(opts.trainer, opts.plans, c) for c in opts.configurations}
    todo = [(c, f) for c in opts.configurations for f in folds
            if opts.overwrite or not nnunet_train.fold_complete(models[c] / fold_folder(f), opts.save_npz)]
    log.info("%s, configuration(s) %s, fold(s) %s, trainer %s, plans %s, device %s; %d run(s) to do", ds_dir.name,
             " ".join(opts.configurations), " ".join(map(str, folds)), opts.trainer, opts.plans, device, len(todo))
    if opts.preprocess and todo:
        nnunet_train.plan_and_preprocess(dataset_id, opts.configurations, env)
    install_splits(ds_dir, pre)
    result = TrainResult()
    for configuration, model in models.items():
        states = {f: train_fold(dataset_id, model, configuration, f, opts, device, env) for f in folds}
        result.models.append(_model_record(model, dataset_id, configuration, opts, states))
    if opts.find_best:
        result.best = find_best(dataset_id, results / ds_dir.name, opts, list(range(available or 0)), env,
                                again=bool(todo))
    return result


def _model_record(model: Path, dataset_id: str, configuration: str, opts: TrainOptions, states: Mapping) -> dict:
    """The stdout record of one configuration's model folder."""
    trained = [f for f, s in states.items() if s != "complete"]
    return {"status": "written" if trained else "skipped", "path": str(model), "dataset_id": dataset_id,
            "configuration": configuration, "folds": list(states), "trained": trained, "trainer": opts.trainer,
            "plans": opts.plans}


def trained_configurations(results_dataset: Path, trainer: str, plans: str, folds: Sequence[int],
                           npz: bool = False) -> list[str]:
    """The configurations of ``trainer``/``plans`` whose every fold in ``folds`` is complete."""
    found = []
    for folder in sorted(results_dataset.glob(f"{trainer}__{plans}__*")) if results_dataset.is_dir() else []:
        if folder.is_dir() and is_model_identifier(folder.name) and all(
                nnunet_train.fold_complete(folder / fold_folder(f), npz) for f in folds):
            found.append(parse_model_identifier(folder.name)[2])
    return found


def find_best(dataset_id: str, results_dataset: Path, opts: TrainOptions, folds: Sequence[int],
              env: Mapping[str, str], again: bool = True) -> BestConfiguration | None:
    """``nnUNetv2_find_best_configuration`` over every configuration whose folds are all trained, once
    the configurations of this run are among them; None (and why, in the log) otherwise. Without
    ``again`` (nothing trained in this run) an earlier choice of the same configurations is reused."""
    complete = trained_configurations(results_dataset, opts.trainer, opts.plans, folds)
    waiting = [c for c in opts.configurations if c not in complete]
    if not folds or waiting:
        log.info("find_best_configuration runs once folds %s of %s are trained", " ".join(map(str, folds)),
                 ", ".join(waiting or opts.configurations))
        return None
    earlier = _earlier_choice(results_dataset, opts, complete, folds) if not again else None
    if earlier is not None:
        log.info("nnU-Net's choice is up to date: %s", earlier.name)
        return earlier
    ensembling = len(complete) > 1 and complete == trained_configurations(results_dataset, opts.trainer, opts.plans,
                                                                          folds, npz=True)
    if len(complete) > 1 and not ensembling:
        log.warning("ensembles not considered: some folds have no validation probabilities (train with --npz)")
    best = nnunet_train.find_best_configuration(dataset_id, results_dataset, complete, opts.trainer, opts.plans,
                                                folds, env, ensembling)
    steps = "; ".join(best.postprocessing) or "none"
    log.info("nnU-Net's choice: %s (cross-validation Dice %s, %s after post-processing: %s)", best.name,
             _fmt(best.dice), _fmt(best.dice_postprocessed), steps)
    return best


def _earlier_choice(results_dataset: Path, opts: TrainOptions, complete: Sequence[str],
                    folds: Sequence[int]) -> BestConfiguration | None:
    """The recorded choice when it was made over these folds and configurations (status ``skipped``)."""
    path = results_dataset / INFERENCE_INFORMATION
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        considered = sorted((m["trainer"], m["plans"], m["configuration"]) for m in info["considered_models"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if list(info.get("folds", [])) != list(folds) or considered != sorted(
            (opts.trainer, opts.plans, c) for c in complete):
        return None
    return replace(read_best_configuration(path), status="skipped")


def _fmt(value: float | None) -> str:
    """A Dice for the log.

    >>> _fmt(0.912345), _fmt(None)
    ('0.9123', '?')
    """
    return "?" if value is None else f"{value:.4f}"
