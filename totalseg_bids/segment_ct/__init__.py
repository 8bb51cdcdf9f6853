"""CT labels with TotalSegmentator, written as BIDS derivative labels.

For every CT of a BIDS dataset (suffix ``CT``/``ct`` in ``anat/`` or ``ct/``),
run TotalSegmentator in a process of its own (it rewrites the nnU-Net
environment variables of its process): its Python API started once per worker
and fed one CT after the other, or another ``TotalSegmentator`` program on
``PATH`` once per CT. Keep the asked classes and write them on the CT's exact
grid as
``derivatives/labels/sub-XX/[ses-YY/]anat/<CT stem>_label-<class>_seg.nii.gz``
(or one ``_label-<NAME>_dseg.nii.gz`` + ``_dseg.tsv`` with ``--combine``), each
with a JSON sidecar recording TotalSegmentator's version, task and flags.
Existing TotalSegmentator outputs can be imported with ``--from-existing``.

``python -m totalseg_bids.segment_ct --bids-dir <bids> [--classes sacrum ...] [--fast]``

Library callers pass :class:`SegmentOptions` (or its fields as keywords) to
:func:`segment_dataset`, which returns one record per label file or raises one
BatchError whose ``done`` holds the records of the CTs that completed.
"""

from .batch import default_out, finish_segment, plan_jobs, segment_dataset
from .case import run_totalsegmentator, segment_case
from .cli import get_parser, main
from .existing import read_existing
from .images import MIN_MODEL_VOXELS, check_ct, default_suffixes, find_cts, too_small
from .job import CtJob
from .masks import binarise, combine_masks, read_class_file, read_masks
from .options import DEFAULT_CLASSES, SegmentOptions
from .outputs import output_records, outputs_complete, planned_outputs, tool_entry

__all__ = [
    "CtJob", "DEFAULT_CLASSES", "MIN_MODEL_VOXELS", "SegmentOptions", "binarise", "check_ct", "combine_masks",
    "default_out", "default_suffixes", "find_cts", "finish_segment", "get_parser", "main", "output_records",
    "outputs_complete", "plan_jobs", "planned_outputs", "read_class_file", "read_existing", "read_masks",
    "run_totalsegmentator", "segment_case", "segment_dataset", "too_small", "tool_entry",
]
