"""Convert public dataset layouts, as their publishers ship them, into BIDS.

``python -m totalseg_bids.bidsify --source NAME --in SRC --out BIDS_DIR``
plans every source file's BIDS target first (``--dry-run`` prints the plan),
refuses two sources mapping to one target, then converts file by file
(atomic, resumable, ``-j``), keeping every voxel's world position. Library
callers use :func:`bidsify` with a :class:`BidsifyOptions`.
"""

from __future__ import annotations

from .options import BidsifyOptions

SOURCES = ("synthrad2023", "totalsegmentator", "mrspineseg", "spider", "goldatlas", "dicom", "pattern")


def main(argv=None) -> int:
    """The ``bidsify`` command (kept light: the converters load on use)."""
    from .__main__ import main as run

    return run(argv)


def bidsify(source, root, out, options: BidsifyOptions | None = None, **kwargs) -> list[dict]:
    """Convert the download ``root`` of layout ``source`` into the BIDS dataset ``out``
    (see :func:`totalseg_bids.bidsify.__main__.bidsify`)."""
    from .__main__ import bidsify as convert

    return convert(source, root, out, options, **kwargs)
