"""Per-series step for DICOM: ``dcm2niix`` on exactly the series' files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..core.atomic import atomic_write_json
from ..core.bids import sidecar_path
from ..core.errors import ExternalToolError, InputError
from .plan import Item

ARGS = ("-z", "y", "-b", "y", "-ba", "y", "-f", "series")


def dcm2niix_binary() -> str:
    """The ``dcm2niix`` program: the PyPI package's compiled binary itself when
    installed (its console script and a pyenv/conda shim in front of it cost a
    Python start-up, 0.2-0.8 s, on every call), else the one on PATH."""
    try:
        from dcm2niix import bin as packaged
    except ImportError:
        packaged = None
    if packaged and os.access(packaged, os.X_OK):
        return packaged
    exe = shutil.which("dcm2niix")
    if exe is None:
        raise ExternalToolError("dcm2niix not found", None, "pip install 'totalseg_bids[bidsify]'")
    return exe


def convert_series(item: Item, target: Path) -> None:
    """Convert one series into ``target`` (atomic rename from a scratch folder).

    A folder that holds this series and nothing else is given to ``dcm2niix``
    as it is; otherwise the series' files are linked into a scratch folder
    first, so no other series is read or converted.
    """
    with tempfile.TemporaryDirectory(prefix=".tmp-dcm-", dir=target.parent if target.parent.exists() else None) as tmp:
        src, dst = Path(tmp) / "in", Path(tmp) / "out"
        dst.mkdir()
        if item.folder_is_series:
            src = Path(item.source)
        else:
            src.mkdir()
            for i, f in enumerate(item.extra_sources):
                os.symlink(Path(f).resolve(), src / f"{i:05d}.dcm")
        proc = subprocess.run([dcm2niix_binary(), *ARGS, "-d", "0", "-o", str(dst), str(src)], capture_output=True,
                              encoding="utf-8", errors="replace")
        outputs = sorted(dst.glob("*.nii.gz"))
        if proc.returncode != 0 or len(outputs) != 1:
            why = _reason(proc.stdout, src, item)
            raise InputError(f"dcm2niix made {len(outputs)} volumes from the series ({why})", item.source,
                             "re-copy the series' files from the original or remove the series")
        side = json.loads(outputs[0].with_name(outputs[0].name[:-7] + ".json").read_text(encoding="utf-8"))
        os.chmod(outputs[0], 0o644)
        os.replace(outputs[0], target)  # same file system: an atomic rename, no copy
    side.update(item.sidecar)
    side["Sources"] = [Path(item.source).resolve().as_uri()]
    atomic_write_json(sidecar_path(target), side)


def _reason(stdout: str, links: Path, item: Item) -> str:
    """dcm2niix's complaint about a file (else its first error), naming the source file instead of its scratch link.

    >>> item = Item("s", "t", extra_sources=("a", "b"))
    >>> _reason("Warning: File not large enough: /t/in/00001.dcm", Path("/t/in"), item)
    'Warning: File not large enough: b'
    """
    lines = stdout.strip().splitlines()
    text = next((ln for ln in lines if str(links) in ln), None) or next(
        (ln for ln in lines if ln.startswith("Error")), lines[-1] if lines else "no output")
    for i, f in sorted(enumerate(item.extra_sources), reverse=True):
        text = text.replace(str(links / f"{i:05d}.dcm"), f)
    return text[:200]
