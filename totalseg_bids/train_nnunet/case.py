"""One training run: one configuration, one fold, through ``nnUNetv2_train``."""

from __future__ import annotations

from collections.abc import Mapping

from ..nnunet import train as nnunet_train
from .options import TrainOptions


def train_fold(dataset_id: str, fold: str, opts: TrainOptions, device: str, env: Mapping[str, str]) -> None:
    """Train ``fold`` of ``opts.configuration`` with nnU-Net's own trainer loop."""
    nnunet_train.train_fold(dataset_id, opts.configuration, fold, opts.trainer, opts.plans, device, env,
                            opts.extra_args)
