"""Convert public dataset layouts, as their publishers ship them, into BIDS.

``python -m totalseg_bids.bidsify --source NAME --in SRC --out BIDS_DIR``
plans every source file's BIDS target first (``--dry-run`` prints the plan),
refuses two sources mapping to one target, then converts file by file
(atomic, resumable, ``-j``), keeping every voxel's world position. Library
callers use :func:`bidsify` with a :class:`BidsifyOptions`. Each layout is one
module of :mod:`totalseg_bids.bidsify.sources`; DICOM exports are named by dcm2bids 3
configurations (:func:`load_rules`, :func:`criteria_match`).
"""

from .batch import bidsify, file_record, make_plan
from .cli import get_parser, main
from .dcm2bids_config import Rules, criteria_match, load_rules
from .options import MR_SUFFIXES, BidsifyOptions
from .plan import Item, Plan
from .sources import SOURCES, plan_source

__all__ = ["BidsifyOptions", "Item", "MR_SUFFIXES", "Plan", "Rules", "SOURCES", "bidsify", "criteria_match",
           "file_record", "get_parser", "load_rules", "main", "make_plan", "plan_source"]
