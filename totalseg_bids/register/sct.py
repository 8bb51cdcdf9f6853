"""Label transfer through spinalcordtoolbox's sct_register_multimodal."""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..core.errors import ExternalToolError
from ..core.nifti import Grid, grid_mismatch, load_nifti, read_data
from .constants import SCT_COMMAND, SCT_TIMEOUT_S

log = logging.getLogger(__name__)


def run_sct(label: Path, mri_path: Path, mri_grid: Grid, interp: str = "nearest") -> np.ndarray:
    """Transfer ``label`` with ``sct_register_multimodal -identity 1`` into a
    scratch folder and return its output array (on the MRI grid).

    SCT leaves side files (``*_inv``, ``warp_*``) next to its output; the
    scratch folder takes them all and is removed.
    """
    exe = shutil.which(SCT_COMMAND)
    if exe is None:
        raise ExternalToolError(f"{SCT_COMMAND} not found on PATH (--method sct needs spinalcordtoolbox)",
                                SCT_COMMAND, "install spinalcordtoolbox and activate it, "
                                "or use --method header (same result, in-process)")
    with tempfile.TemporaryDirectory(prefix="totalseg_bids_sct_") as scratch:
        out = Path(scratch) / "out.nii.gz"
        cmd = [exe, "-i", str(label), "-d", str(mri_path), "-identity", "1",
               "-x", "nn" if interp == "nearest" else "linear", "-o", str(out)]
        log.info("running %s", " ".join(cmd))
        try:
            proc = subprocess.run(cmd, cwd=scratch, capture_output=True, encoding="utf-8", errors="replace",
                                  timeout=SCT_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise ExternalToolError(f"{SCT_COMMAND} timed out after {SCT_TIMEOUT_S} s", label,
                                    "run it by hand to see why") from None
        if proc.returncode != 0 or not out.exists():
            tail = " ".join((proc.stderr or proc.stdout or "").split())[-200:]
            raise ExternalToolError(f"{SCT_COMMAND} failed (exit {proc.returncode}: {tail})", label,
                                    "run the command by hand to see the full message")
        img = load_nifti(out, check_forms=False)
        data = read_data(img, out, dtype=np.float32)
        why = grid_mismatch(Grid.of(img), mri_grid, atol=1e-2)
        if why:
            raise ExternalToolError(f"{SCT_COMMAND} output is not on the MRI grid ({why})", mri_path,
                                    "check the spinalcordtoolbox version")
    if interp == "label":
        return (data > 0.5).astype(np.uint8)
    return np.rint(data).clip(0, None).astype(np.uint16 if data.max() > 255 else np.uint8)
