"""Convert public dataset layouts, as their publishers ship them, into BIDS.

``python -m totalseg_bids.bidsify --source NAME --in SRC --out BIDS_DIR``
plans every source file's BIDS target first (``--dry-run`` prints the table),
refuses two sources mapping to one target, then converts file by file
(atomic, resumable, ``-j``), keeping every voxel's world position.
"""

SOURCES = ("synthrad2023", "totalsegmentator", "mrspineseg", "spider", "goldatlas", "dicom", "pattern")


def main(argv=None) -> int:
    """The ``bidsify`` command (kept light: the converters load on use)."""
    from .__main__ import main as run

    return run(argv)
