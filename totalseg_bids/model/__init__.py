"""Ship a trained nnU-Net as one zip file and install it on another machine.

``python -m totalseg_bids.model export -d 300 -c 3d_fullres -f 0 -o sacrum_model.zip``
writes nnU-Net's own export (``export_pretrained_model``) plus a model card,
``totalseg_bids_model_card.json``, and the converter's ``case_mapping.tsv``
inside the model folder of the zip. ``install sacrum_model.zip --name sacrum``
unpacks it with nnU-Net's own ``install_model_from_zip_file`` into
``$TOTALSEG_BIDS_MODELS`` (else ``$nnUNet_results``) and records the name, the
model folder and the zip's SHA-256 in ``totalseg_bids_models.json`` there;
``list`` prints one JSON object per installed model. ``predict --model sacrum``
or ``predict --model-zip FILE`` then use it.

* :mod:`.card`: the model card; :mod:`.case`: one export, one installed record;
  :mod:`.batch`: every installed model; :mod:`.cli`: the command line.

The zip format, the install and the registry are nnU-Net's conventions and ours
around them, in :mod:`totalseg_bids.nnunet.model_zip`, which ``predict`` uses too.
"""

from .batch import installed
from .card import CARD, MAPPING, build_card
from .case import export, install, installed_record
from .cli import get_parser, main
from .options import ExportOptions

__all__ = [
    "CARD", "MAPPING", "ExportOptions", "build_card", "export", "get_parser", "install", "installed",
    "installed_record", "main",
]
