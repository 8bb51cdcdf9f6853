"""The trainer of the tiny local TotalSegmentator weights of the ``total`` task (totalseg_bids.testing.tiny_totalseg).

Why: that network learns the phantom head CTs' skull besides the pelvis structures, from
two head CTs beside three pelvis CTs; 10 epochs of 25 iterations give the pelvis as many
patches as the pelvis-only network had in 6 epochs, and the skull enough of its own.

Imported by nnU-Net as a top-level module from ``nnUNet_extTrainer``; keep imports absolute.
"""

import torch
from nnUNetTrainer_tinyTotalSeg import nnUNetTrainer_tinyTotalSeg


class nnUNetTrainer_tinyTotalSegHead(nnUNetTrainer_tinyTotalSeg):
    """10 epochs x 25 iterations, patch at most 32x48x48 voxels."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = 10
