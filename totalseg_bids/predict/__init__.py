"""Run a trained nnU-Net on BIDS images and write the masks as BIDS derivatives.

``python -m totalseg_bids.predict --config test_sacrum.json -d 300 -c 3d_fullres``
(or ``--bids-dir DIR --contrasts T1w T2w``, or ``--model-dir DIR``) writes, for
every image, ``<dataset>/derivatives/labels/sub-XX/[ses-YY/]anat/<image stem>
_label-<name>_seg.nii.gz`` (``_dseg`` + ``.tsv`` for several classes) with a
JSON sidecar, on the image's exact grid, ``uint8``, ``qform == sform``.

* :mod:`.inputs`: the images of a config split or a BIDS query, and this run's shard;
* :mod:`.checks`: images and output folders checked before the model loads;
* :mod:`.case`: one image's output, post-processed and written with its sidecar;
* :mod:`.batch`: the whole run, with the model loaded once (see its docstring);
* :mod:`.cli`: the command line.

The model, its engine and the post-processing are nnU-Net's conventions and live in
:mod:`totalseg_bids.nnunet` (``engine``, ``postprocess``, ``model_zip``); :func:`resolve_model`
(every trained fold by default) is re-exported here for library callers of :func:`predict`.
"""

from ..nnunet.engine import Model, resolve_model
from .batch import PredictSummary, make_options, plan_items, predict, run_items
from .case import Item, PostOptions, default_label_name, finalize, output_kind, to_image_grid
from .checks import announce_mirroring, check_writable, preflight, validate_images
from .cli import get_parser, main
from .inputs import collect_inputs, derivative_roots, shard_inputs
from .options import PredictOptions

__all__ = [
    "Item", "Model", "PostOptions", "PredictOptions", "PredictSummary", "announce_mirroring", "check_writable",
    "collect_inputs", "default_label_name", "derivative_roots", "finalize", "get_parser", "main", "make_options",
    "output_kind", "plan_items", "predict", "preflight", "resolve_model", "run_items", "shard_inputs", "to_image_grid",
    "validate_images",
]
