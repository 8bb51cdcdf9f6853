"""Checks made before the model loads, so a bad input costs ~0 s."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..core import cli
from ..core.errors import InputError, TotalsegBidsError
from ..core.nifti import load_nifti, read_data
from .case import Item

log = logging.getLogger(__name__)


def validate_images(images: Sequence[Path]) -> None:
    """Read every channel fully: corrupt or absent data fails here with our
    message instead of deep inside nnU-Net; channels must share one shape."""
    shapes = []
    for path in images:
        img = load_nifti(path)
        data = read_data(img, path)
        if data.ndim != 3:
            raise InputError(f"image is {data.ndim}D, the model needs 3D", path, "give one 3D volume per channel")
        if np.issubdtype(data.dtype, np.floating) and not np.isfinite(data).all():
            raise InputError("image contains NaN or infinite values", path, "replace them before predicting")
        shapes.append(tuple(data.shape))
    if len(set(shapes)) > 1:
        raise InputError(f"channels have different shapes {shapes}", images[0], "resample the channels onto one grid")


def check_writable(folder: Path) -> None:
    """Create ``folder`` and a probe file in it: an output folder that cannot take
    files fails before the model is loaded, not after inference."""
    probe = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".totalseg_bids-probe-", dir=folder)
        os.close(fd)
    except OSError as exc:
        raise InputError(f"output folder is not writable ({exc.strerror or exc})", folder,
                         "fix its permissions, free space or choose another --derivatives") from None
    finally:
        if probe is not None:
            Path(probe).unlink(missing_ok=True)


def preflight(items: Sequence[Item], failures: list[tuple[str, str]]) -> list[Item]:
    """Check every image (readable, 3D, finite, channels on one grid) and every
    output folder before the model loads, so a bad input costs ~0 s.

    Bad images are recorded in ``failures`` and dropped; an unwritable output
    folder stops the run (every image of that dataset would fail the same way).
    """
    for root in sorted({it.derivatives_root for it in items}):
        check_writable(root)
    good = []
    for item in cli.progress(items, desc="check images"):
        try:
            validate_images(item.images)
            good.append(item)
        except TotalsegBidsError as exc:
            failures.append((item.key, str(exc)))
    return good


def announce_mirroring(device: str, tta: bool, n_images: int) -> None:
    """Say once, before predicting, what test-time mirroring costs on the CPU
    (nnU-Net's default, kept: it is cheap on a GPU) and how to turn it off."""
    if tta and device == "cpu":
        log.warning("test-time mirroring is on (nnU-Net's default): on the CPU it makes each of the %d image(s) "
                    "up to ~8x slower in 3D; --no-tta turns it off", n_images)
