"""Phantom anatomy written as public datasets' publishers ship them.

One writer per layout (``write(out, subjects, seed) -> Path``), used by
``python -m totalseg_bids.phantoms --layout NAME`` and the bidsify tests.
"""

LAYOUTS = ("synthrad2023", "synthrad2025", "mrspineseg", "spider", "goldatlas", "totalsegmentator", "dicom",
           "dicom-export", "png-stack", "npy")


def write_layout(name: str, out, subjects: int = 2, seed: int = 0):
    """Write layout ``name`` at ``out``; return its root."""
    import importlib

    from ...core.errors import UsageError

    if name not in LAYOUTS:
        raise UsageError(f"unknown --layout {name!r}", None, f"use one of {', '.join(LAYOUTS)}")
    if name in ("png-stack", "npy"):
        from . import arrays

        return (arrays.write_png if name == "png-stack" else arrays.write_npy)(out, subjects, seed)
    module = "synthrad2023" if name == "synthrad2025" else name.replace("-", "_")
    writer = importlib.import_module(f"totalseg_bids.testing.layouts.{module}")
    return writer.write(out, subjects, seed, **({"variant": 2025} if name == "synthrad2025" else {}))
