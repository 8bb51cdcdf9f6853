"""The trainer of the tiny local TotalSegmentator weights (totalseg_bids.testing.tiny_totalseg).

Why: 2 x 10 iterations (nnUNetTrainer_2epochs_10iters) leave the phantom's
smaller structures (sacrum, L5) unlearnt, and TotalSegmentator's
``--roi_subset`` crops with the same tiny model, so a miss there empties
every mask. 6 epochs of 25 iterations learn all four phantom structures in a
few CPU minutes; patch cap and everything else as in the quick trainer.

Imported by nnU-Net as a top-level module from ``nnUNet_extTrainer``; keep imports absolute.
"""

import torch
from nnUNetTrainer_2epochs_10iters import nnUNetTrainer_2epochs_10iters


class nnUNetTrainer_tinyTotalSeg(nnUNetTrainer_2epochs_10iters):
    """6 epochs x 25 iterations, patch at most 32x48x48 voxels."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = 6
        self.num_iterations_per_epoch = 25
        self.num_val_iterations_per_epoch = 5
