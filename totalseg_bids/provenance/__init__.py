"""Record manual corrections of labels in their sidecars (``GeneratedBy``).

``python -m totalseg_bids.provenance mark-manual LABEL [LABEL ...] --author NAME``
appends ``{"Name": "Manual", "Author": NAME, "Date": ...}`` to each label's
sidecar; stages that write labels then refuse to overwrite it unless given
``--overwrite-manual``. ``show LABEL`` prints the recorded provenance.
Both print one JSON line per label (docs/conventions.md section 8).

The rule itself (what a manual entry is, who refuses to overwrite one) is
:mod:`totalseg_bids.core.provenance`, since every stage that writes labels
follows it. Modules: :mod:`.options`, :mod:`.case` (one label), :mod:`.batch`,
:mod:`.cli`.
"""

from .batch import mark_manual_labels, show
from .case import mark_one, show_one
from .cli import STAGE, get_parser, main
from .options import ManualOptions

__all__ = ["ManualOptions", "STAGE", "get_parser", "main", "mark_manual_labels", "mark_one", "show", "show_one"]
