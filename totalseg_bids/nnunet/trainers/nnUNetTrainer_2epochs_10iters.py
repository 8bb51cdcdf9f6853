"""A tiny nnU-Net trainer: 2 epochs of 10 training and 5 validation iterations.

Why: a standard nnU-Net epoch (250 iterations) takes minutes on a CPU, far too
long for a test suite, while 2 x 10 iterations on phantom volumes train in
about a minute and already segment the phantom sacrum. Everything else
(network, augmentation, losses, final validation) is nnU-Net's own, so a model
trained with it exercises the real training and inference code paths.

This file is imported by nnU-Net as a top-level module from the folder named
in ``nnUNet_extTrainer``; keep imports absolute.
"""

import copy
import os
import random

import numpy as np
import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

#: Largest patch (voxels per axis) the quick trainer uses: CPU time grows with the patch volume.
MAX_PATCH = (32, 48, 48)
#: The same for 2D configurations (pixels per axis): a 2D step is cheap, the network deep.
MAX_PATCH_2D = (128, 128)
#: Environment variable holding the seed of a quick training (default :data:`DEFAULT_SEED`).
SEED_ENV = "TOTALSEG_BIDS_TRAIN_SEED"
DEFAULT_SEED = 12345


def training_seed(env=None) -> int:
    """The seed a quick training uses: ``TOTALSEG_BIDS_TRAIN_SEED`` or :data:`DEFAULT_SEED`.

    >>> training_seed({}), training_seed({"TOTALSEG_BIDS_TRAIN_SEED": "7"})
    (12345, 7)
    """
    env = os.environ if env is None else env
    return int(env.get(SEED_ENV) or DEFAULT_SEED)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators: weight initialisation, patch sampling and
    augmentation in the main process then repeat from run to run."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capped_patch(patch, strides, cap=None):
    """Patch no larger than ``cap``, kept a multiple of the network's total stride per axis.

    In 2D every axis keeps at least twice the total stride: a one-pixel
    bottleneck has a single spatial element, which instance normalisation refuses.

    >>> capped_patch([32, 64, 80], [[1, 1, 1], [1, 2, 2], [2, 2, 2], [2, 2, 2], [2, 2, 2]])
    [32, 48, 48]
    >>> capped_patch([16, 40, 40], [[1, 1, 1], [2, 2, 2]])
    [16, 40, 40]
    >>> capped_patch([512, 512], [[1, 1]] + [[2, 2]] * 7)
    [256, 256]
    """
    if cap is None:
        cap = MAX_PATCH if len(patch) == 3 else MAX_PATCH_2D
    floor = 2 if len(patch) == 2 else 1
    out = []
    for axis, size in enumerate(patch):
        total = 1
        for stride in strides:
            total *= int(stride[axis])
        out.append(int(min(size, max(floor * total, cap[axis] // total * total))))
    return out


class nnUNetTrainer_2epochs_10iters(nnUNetTrainer):
    """nnUNetTrainer with 2 epochs x 10 iterations (5 validation iterations) and a
    patch of at most 32x48x48 voxels (the plan's patch otherwise), so it trains
    in a minute or two on a laptop CPU. The capped patch is saved in the
    model's plans, so inference uses the same one.

    Twenty iterations leave a model whose quality depends on which patches it
    happened to see, so the quick trainers are seeded (:func:`training_seed`):
    the network's initial weights, the main process's sampling and every
    augmentation worker (nnU-Net starts its workers unseeded) repeat, and a
    smoke training that works once works again on the same machine. Its final
    validation runs without test-time mirroring (:meth:`perform_actual_validation`)."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):  # noqa: B008 nnUNetTrainer's own signature
        plans = copy.deepcopy(plans)
        cfg = plans["configurations"][configuration]
        strides = cfg.get("architecture", {}).get("arch_kwargs", {}).get("strides")
        if strides and "patch_size" in cfg:
            cfg["patch_size"] = capped_patch(cfg["patch_size"], strides)
        self.seed = training_seed()
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = 2
        self.num_iterations_per_epoch = 10
        self.num_val_iterations_per_epoch = 5

    def initialize(self):
        """nnU-Net's set-up, from the seed: the network's initial weights are drawn here."""
        seed_everything(self.seed)
        super().initialize()

    def perform_actual_validation(self, save_probabilities: bool = False):
        """nnU-Net's final validation without test-time mirroring: in 3D mirroring costs 8 forward passes per
        window, most of a quick training's time on a CPU. Only the validation is affected: the checkpoint keeps
        the mirroring axes, so ``predict --tta`` mirrors as with any nnU-Net model."""
        axes = self.inference_allowed_mirroring_axes
        self.inference_allowed_mirroring_axes = None
        try:
            super().perform_actual_validation(save_probabilities)
        finally:
            self.inference_allowed_mirroring_axes = axes

    def get_dataloaders(self):
        """nnU-Net's loaders, with each augmentation worker restarted on its own seed."""
        seed_everything(self.seed + 1)
        loaders = super().get_dataloaders()
        for offset, loader in enumerate(loaders):
            seeds = getattr(loader, "seeds", None)
            if seeds is not None and hasattr(loader, "restart"):
                loader.seeds = [self.seed + 100 * (offset + 1) + worker for worker in range(len(seeds))]
                loader.restart()
        return loaders
