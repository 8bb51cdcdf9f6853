"""The demo's nnU-Net trainer: nnU-Net's own training of a small network, in about a minute on 2 CPU cores.

Why: ``bash scripts/demo.sh`` must reach its summary in minutes on a laptop,
with a real nnU-Net training and prediction in it. nnU-Net's planned network
(32 to 320 features per stage) costs seconds per iteration on a CPU; with at
most 16 features per stage (the planned depth, kernels and strides kept) an
iteration costs a fraction of that, so 4 epochs of 25 iterations fit, and
the phantom sacrum is learnt well enough that the prediction Dice means
something. Everything else (data loading, augmentation, losses, final
validation, the saved plans the predictor rebuilds the network from) is
nnU-Net's own; seeded like the other quick trainers.

Imported by nnU-Net as a top-level module from ``nnUNet_extTrainer``; keep imports absolute.
"""

import copy

import torch

try:  # nnU-Net imports the trainers as top-level modules of nnUNet_extTrainer's folder
    from nnUNetTrainer_2epochs_10iters import nnUNetTrainer_2epochs_10iters
except ImportError:  # imported as part of the package (its doctests)
    from .nnUNetTrainer_2epochs_10iters import nnUNetTrainer_2epochs_10iters

#: Most features per stage of the demo's network.
MAX_FEATURES = 16


def small_network(plans: dict, configuration: str, max_features: int = MAX_FEATURES) -> dict:
    """``plans`` with the configuration's network capped at ``max_features`` per stage.

    >>> p = {"configurations": {"3d": {"architecture": {"arch_kwargs": {"features_per_stage": [32, 64, 320]}}}}}
    >>> small_network(p, "3d")["configurations"]["3d"]["architecture"]["arch_kwargs"]["features_per_stage"]
    [16, 16, 16]
    """
    plans = copy.deepcopy(plans)
    arch = plans["configurations"][configuration].get("architecture", {}).get("arch_kwargs", {})
    if "features_per_stage" in arch:
        arch["features_per_stage"] = [min(int(f), max_features) for f in arch["features_per_stage"]]
    return plans


class nnUNetTrainer_demo(nnUNetTrainer_2epochs_10iters):
    """4 epochs x 25 iterations (5 validation iterations) of a network of at most 16 features per
    stage, patch at most 32x48x48 voxels, seeded."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):  # noqa: B008 nnUNetTrainer's own signature
        super().__init__(small_network(plans, configuration), configuration, fold, dataset_json, device)
        self.num_epochs = 4
        self.num_iterations_per_epoch = 25
        self.num_val_iterations_per_epoch = 5
