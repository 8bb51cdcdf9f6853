"""Convert a data config into an nnU-Net v2 raw dataset (docs/conventions.md section 5).

``python -m totalseg_bids.convert_config_to_nnunet --config train_sacrum.json
-o "$nnUNet_raw" -d 300`` writes ``Dataset300_SacrumDataset/`` with
``imagesTr``/``labelsTr`` (TRAINING + VALIDATION), ``imagesTs``/``labelsTs``
(TESTING), ``dataset.json``, ``case_mapping.tsv``/``.json`` and
``splits_final.json`` (``--folds K`` cross-validation folds drawn by subject,
:mod:`totalseg_bids.nnunet.splits`; ``--folds 1``: the config's own split as fold 0).

* :mod:`.naming`: case ids and channel names; :mod:`.labels`: the label map;
  :mod:`.values`: a label's values and a plain header without nibabel;
* :mod:`.case`: one case, linked or corrected (see its docstring for when a copy is written);
* :mod:`.mapping`: ``case_mapping.tsv``/``.json``;
* :mod:`.batch`: the whole config, built in a hidden folder and renamed into place;
  a rerun of the same request is a no-op;
* :mod:`.cli`: the command line.

nnU-Net's own names and files come from :mod:`totalseg_bids.nnunet`; nnunetv2 is
imported only where needed (``dataset.json`` writer, ``--verify`` in a subprocess).
"""

from .batch import REQUEST_FILE, ConversionResult, convert, plan_conversion
from .case import CaseRecord, CaseTask, checked_case, convert_case, place, plain_case
from .cli import get_parser, main
from .labels import apply_remap, check_label_map, label_map, label_problem, labels_from_names, parse_labels_json
from .mapping import MAPPING_JSON, MAPPING_TSV, read_mapping, write_mapping
from .naming import case_id, channel_names, default_channel_name, safe_token, unique_ids
from .options import DEFAULT_NAME, FILE_ENDING, LINK_MODES, READERS, ConvertOptions, LinkMode, Reader
from .values import plain_header, stream_label_values, streamable

__all__ = [
    "DEFAULT_NAME", "FILE_ENDING", "LINK_MODES", "MAPPING_JSON", "MAPPING_TSV", "READERS", "REQUEST_FILE",
    "CaseRecord", "CaseTask", "ConversionResult", "ConvertOptions", "LinkMode", "Reader", "apply_remap", "case_id",
    "channel_names", "check_label_map", "checked_case", "convert", "convert_case", "default_channel_name",
    "get_parser", "label_map", "label_problem", "labels_from_names", "main", "parse_labels_json", "place",
    "plain_case", "plain_header", "plan_conversion", "read_mapping", "safe_token", "stream_label_values",
    "streamable", "unique_ids", "write_mapping",
]
