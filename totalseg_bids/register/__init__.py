"""Bring CT-derived labels into MRI space.

Labels are made on the CT (TotalSegmentator, manual); training needs them on
every MRI of the same subject and session. Four ways to get them there:

* ``header`` (default): resample through the NIfTI headers (world
  coordinates) onto the MRI grid, in-process; right when the scanners share a
  frame of reference and the patient did not move.
* ``rigid`` / ``affine``: register the CT image (moving) to the MRI (fixed)
  with Mattes mutual information in SimpleITK, starting from the headers, then
  send the label through that transform; corrects the small misalignments
  header-only transfer leaves. The transform is saved beside the output
  (``<output stem>_xfm.txt``, ITK format, LPS, fixed=MRI -> moving=CT) so it
  can be re-applied with ITK, SimpleITK or ``antsApplyTransforms``.
* ``sct``: ``sct_register_multimodal -identity 1 -x nn`` exactly as a
  spinalcordtoolbox user runs it, in a scratch folder.

``python -m totalseg_bids.register --bids-dir <bids> [--label sacrum] [--method rigid]``

Library callers pass :class:`RegisterOptions` (or its fields as keywords) to
:func:`register_dataset`, which returns one record per MRI or raises one
BatchError whose ``done`` holds the records of the MRIs that completed.
"""

from ..core.bids import BidsName  # noqa: E402  (re-exported for callers parsing names)
from .batch import register_dataset, result_record, transfer_pair
from .case import TransferResult, transfer_label
from .cli import get_parser, main, options_from_cli, spec_from_args
from .constants import (
    CT_WINDOW_HU,
    DEFAULT_CONTRASTS,
    DEFAULT_CT_SUFFIXES,
    DEFAULT_LABEL,
    INTERPOLATIONS,
    METHODS,
    REGISTRATION_MIN_SPACING_MM,
    REGISTRATION_SAMPLING,
    REGISTRATION_SCHEDULE,
    REGISTRATION_SEED,
    REGISTRATION_THREADS,
    SCT_COMMAND,
)
from .header import moved_label_affine, ras_lps
from .itk import register_ct_to_mri, to_sitk, transform_record, transform_to_ras, write_transform
from .labels import class_value, extract_class, label_flags
from .options import LabelSpec, RegisterOptions, RegOptions
from .pairing import Pair, explicit_pair, needed_inputs, pick_ct_label, plan_pairs
from .sct import run_sct

__all__ = [
    "BidsName", "CT_WINDOW_HU", "DEFAULT_CONTRASTS", "DEFAULT_CT_SUFFIXES", "DEFAULT_LABEL", "INTERPOLATIONS",
    "LabelSpec", "METHODS", "Pair", "REGISTRATION_MIN_SPACING_MM", "REGISTRATION_SAMPLING", "REGISTRATION_SCHEDULE",
    "REGISTRATION_SEED", "REGISTRATION_THREADS", "SCT_COMMAND", "TransferResult", "class_value", "explicit_pair",
    "extract_class",
    "get_parser", "label_flags", "main", "moved_label_affine", "needed_inputs", "options_from_cli", "pick_ct_label",
    "plan_pairs", "ras_lps", "RegisterOptions", "RegOptions", "register_ct_to_mri", "register_dataset",
    "result_record", "run_sct", "spec_from_args", "to_sitk",
    "transfer_label", "transfer_pair", "transform_record", "transform_to_ras", "write_transform",
]
