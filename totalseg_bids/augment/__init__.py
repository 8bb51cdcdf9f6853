"""Augment 2D slices to exact per-split target counts with albumentations.

Reads the output of ``totalseg_bids.slices`` (mmseg layout, ``slices.tsv``)
and writes ``--target-train`` training and ``--target-val`` validation
samples: source slices are drawn evenly across volumes, stratified by
"slice has label" so the split's positive/empty ratio is kept. Spatial
transforms move image and mask together (masks nearest-neighbour, never
intensity-adjusted); TESTING slices are copied, never augmented. Every
sample carries its own seed, so the output bytes do not depend on ``-j``,
and ``augment.tsv`` records the source slice, the seed and the applied
transforms with their parameters.
"""

from .main import main

__all__ = ["main"]
