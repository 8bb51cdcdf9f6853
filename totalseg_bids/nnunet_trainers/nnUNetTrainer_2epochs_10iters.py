"""A tiny nnU-Net trainer: 2 epochs of 10 training and 5 validation iterations.

Why: a standard nnU-Net epoch (250 iterations) takes minutes on a CPU, far too
long for a test suite, while 2 x 10 iterations on phantom volumes train in
about a minute and already segment the phantom sacrum. Everything else
(network, augmentation, losses, final validation) is nnU-Net's own, so a model
trained with it exercises the real training and inference code paths.

This file is imported by nnU-Net as a top-level module from the folder named
in ``nnUNet_extTrainer``; keep imports absolute.
"""

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer


class nnUNetTrainer_2epochs_10iters(nnUNetTrainer):
    """nnUNetTrainer with 2 epochs x 10 iterations (5 validation iterations)."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = 2
        self.num_iterations_per_epoch = 10
        self.num_val_iterations_per_epoch = 5
