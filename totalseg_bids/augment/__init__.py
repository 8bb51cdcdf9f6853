"""Augment 2D slices to exact per-split target counts with albumentations.

Reads the output of ``totalseg_bids.slices`` (mmseg folder or nnU-Net 2D
dataset; channels stacked in one file or one file per channel) and writes
``--target-train`` training and ``--target-val`` validation samples: source
slices are drawn evenly across volumes, stratified by "slice has label" so the
split's positive/empty ratio is kept. The recipe's spatial transforms run once
on all channels and the mask (masks nearest-neighbour, never
intensity-adjusted); its intensity transforms run on each image channel with
their own random parameters. TESTING slices are copied, never augmented.
Every sample carries its own seed, so the output bytes do not depend on
``-j``, and ``augment.tsv`` records the source slice, the seed and the applied
transforms with their parameters. Layouts: mmseg, nnunet2d (``dataset.json``
and ``splits_final.json`` keep every sample in its source's split) and the clot
workflow's ``Processed/{Original,Sliced,Augmented}`` tree.
"""

from .main import augment, main
from .options import AugmentOptions

__all__ = ["AugmentOptions", "augment", "main"]
