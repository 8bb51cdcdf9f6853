"""Export a config's volumes and masks as 3D ``.npy`` with a geometry sidecar (and import them back).

``--format npy`` writes ``<out>/<split>/<BIDS stem>.npy`` for every image and
label of the config (``--npy-names clot``: the clot workflow's
``<case>_CTA_Binary.npy``, ``<case>_NCCT_Reg_Binary.npy`` for a plain CT on the
CTA's grid, ``<case>_seg_corrected_binary.npy``; ``<case>`` is the BIDS
subject, and session, label), in the source voxel order, each with ``<stem>.json``
carrying the affine, spacing, axis codes and source file
(``totalseg_bids.core.npy_volume``). ``--import DIR`` turns such a folder back
into NIfTI files with the same array and affine.

Stdout: one JSON line per volume (``status`` written or skipped, ``path`` the
file written, ``source`` the file it came from); docs/conventions.md section 8.

Library callers pass :class:`ExportOptions` (or its fields as keywords) to
:func:`export_config` or :func:`import_folder`. Modules: :mod:`.options`,
:mod:`.plan` (which file each volume becomes), :mod:`.case` (one volume),
:mod:`.batch`, :mod:`.cli`; the file format itself is :mod:`totalseg_bids.core.npy_volume`.
"""

from .batch import export_config, import_folder
from .case import export_file, import_file
from .cli import get_parser, main
from .options import EXPORT_FORMATS, NPY_NAMES, ExportFormat, ExportOptions, NpyNames
from .plan import import_plan, plan

__all__ = ["EXPORT_FORMATS", "ExportFormat", "ExportOptions", "NPY_NAMES", "NpyNames", "export_config", "export_file",
           "get_parser", "import_file", "import_folder", "import_plan", "main", "plan"]
