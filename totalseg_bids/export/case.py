"""One volume: a NIfTI to ``.npy`` with its geometry sidecar, or back."""

from __future__ import annotations

from pathlib import Path

from ..core.npy_volume import nifti_to_npy, npy_to_nifti, sidecar_path


def export_file(item: tuple[Path, Path]) -> dict:
    """One NIfTI as ``.npy`` + sidecar; skipped when a complete copy exists (``overwrite`` removes it first)."""
    src, dst = item
    status = "skipped" if dst.is_file() and sidecar_path(dst).is_file() else "written"
    return {"status": status, "path": nifti_to_npy(src, dst), "source": src}


def import_file(item: tuple[Path, Path]) -> dict:
    """One ``.npy`` volume + sidecar back to NIfTI."""
    src, dst = item
    return {"status": "written", "path": npy_to_nifti(src, dst), "source": src}
