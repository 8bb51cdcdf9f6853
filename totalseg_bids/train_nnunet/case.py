"""One training run: one configuration, one fold, through ``nnUNetv2_train`` (skipped when complete)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from ..nnunet import train as nnunet_train
from ..nnunet.naming import fold_folder
from .options import TrainOptions

log = logging.getLogger(__name__)


def train_fold(dataset_id: str, model: Path, configuration: str, fold: int, opts: TrainOptions, device: str,
               env: Mapping[str, str]) -> str:
    """Train ``fold`` of ``configuration`` with nnU-Net's own trainer loop; returns what was done
    (``new``, ``continue``, ``validate``, or ``complete`` when the fold was done already)."""
    state = "new" if opts.overwrite else nnunet_train.fold_state(model / fold_folder(fold), opts.save_npz)
    if state == "complete":
        log.info("%s %s: complete, skipped (--overwrite trains it again)", model.name, fold_folder(fold))
    elif state != "new":
        log.info("%s %s: %s", model.name, fold_folder(fold),
                 "continuing from its latest checkpoint" if state == "continue" else "running its validation")
    nnunet_train.train_fold(dataset_id, configuration, fold, opts.trainer, opts.plans, device, env, opts.extra_args,
                            npz=opts.save_npz, state=state)
    return state
