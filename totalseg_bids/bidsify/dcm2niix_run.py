"""``dcm2niix`` on exactly one series' files: its sidecars (to name it), then its volumes.

Each series' files are linked into a scratch folder as ``<prefix>_<n>`` and
dcm2niix names every volume after the first file it holds (``-f %b``), so the
sidecars read while planning and the volumes written later carry the same
names, also when dcm2niix splits a series (echoes, phase, orientations,
``_Tilt``/``_Eq`` variants) and whatever it makes of a de-identified one.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

from ..core.atomic import atomic_write_json
from ..core.bids import sidecar_path
from ..core.errors import ExternalToolError, InputError
from .plan import Item

log = logging.getLogger(__name__)

ARGS = ("-z", "y", "-b", "y", "-ba", "y", "-f", "%b", "-d", "0")
SIDECAR_ARGS = ("-b", "o", "-ba", "y", "-f", "%b", "-d", "0")
#: dcm2niix's messages about the geometry and completeness of a series (not its notes on missing optional tags)
WORTH_SAYING = re.compile(r"tilt|missing|varies|distance|equidistant|duplicate|not stacked|not large enough|"
                          r"unsupported|error|truncat|slice|corrupt|unable", re.I)


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


def link_name(prefix: str, index: int) -> str:
    """The scratch name of a series' ``index``-th file, which dcm2niix's ``%b`` turns into a volume's name.

    >>> link_name("s0003", 12)
    's0003_00012'
    """
    return f"{prefix}_{index:05d}"


def _link(files: Sequence[str | Path], folder: Path, prefix: str) -> None:
    folder.mkdir(parents=True)
    for i, f in enumerate(files):
        os.symlink(Path(f).resolve(), folder / link_name(prefix, i))


def warnings_of(stdout: str) -> list[str]:
    """dcm2niix's warnings (gantry tilt, missing or uneven slices, ...), as it words them.

    >>> warnings_of("Found 3 DICOM file(s)\\nWarning: Missing images?\\nWarning: Patient Position (0018,5100) not specified")
    ['Warning: Missing images?']
    """
    return [ln.strip() for ln in stdout.splitlines() if WORTH_SAYING.search(ln)]


def series_sidecars(files: Sequence[str | Path], prefix: str) -> tuple[list[tuple[str, dict]], list[str]]:
    """``([(volume name, dcm2niix sidecar)], dcm2niix's warnings)`` of one series, no image written."""
    with tempfile.TemporaryDirectory(prefix="tsb-dcm-") as tmp:
        src, dst = Path(tmp) / "in", Path(tmp) / "out"
        _link(files, src, prefix)
        dst.mkdir()
        proc = subprocess.run([dcm2niix_binary(), *SIDECAR_ARGS, "-o", str(dst), str(src)], capture_output=True,
                              encoding="utf-8", errors="replace")
        found = []
        for side in sorted(dst.glob("*.json")):
            try:
                found.append((side.stem, json.loads(side.read_text(encoding="utf-8"))))
            except ValueError:
                continue
    return found, [_named(w, src, files, prefix) for w in warnings_of(proc.stdout)]


def sidecars_of(series: list[tuple[Sequence[str | Path], str]], jobs: int | None = None) -> list[tuple]:
    """:func:`series_sidecars` of many series, ``jobs`` dcm2niix processes at a time."""
    with ThreadPoolExecutor(max_workers=max(1, jobs or os.cpu_count() or 1)) as pool:
        return list(pool.map(lambda s: series_sidecars(*s), series))


def _named(text: str, links: Path, files: Sequence[str | Path], prefix: str) -> str:
    """A dcm2niix message with the scratch links replaced by the source files they stand for.

    >>> _named("Warning: File not large enough: /t/in/s0001_00001", Path("/t/in"), ["a", "b"], "s0001")
    'Warning: File not large enough: b'
    """
    for i in range(len(files) - 1, -1, -1):
        text = text.replace(str(links / link_name(prefix, i)), str(files[i]))
    return text[:300]


def convert_series(item: Item, target: Path) -> list[str]:
    """Convert one series into ``target`` (atomic rename from a scratch folder beside it) and return
    dcm2niix's warnings. ``item.output`` names the volume to keep when dcm2niix makes several; the
    sidecar gets ``item.sidecar`` on top (a None value removes the field)."""
    prefix = item.output.split("_")[0] if item.output else "s0000"
    with tempfile.TemporaryDirectory(prefix=".tmp-dcm-", dir=target.parent) as tmp:
        src, dst = Path(tmp) / "in", Path(tmp) / "out"
        _link(item.extra_sources, src, prefix)
        dst.mkdir()
        proc = subprocess.run([dcm2niix_binary(), *ARGS, "-o", str(dst), str(src)], capture_output=True,
                              encoding="utf-8", errors="replace")
        outputs = sorted(dst.glob("*.nii.gz"))
        chosen = [o for o in outputs if o.name == f"{item.output}.nii.gz"] if item.output else outputs
        if len(chosen) != 1:
            why = next(iter(warnings_of(proc.stdout)), "") or (proc.stdout.strip().splitlines() or ["no output"])[-1]
            raise InputError(f"dcm2niix made {len(outputs)} volumes from the series "
                             f"({_named(why, src, item.extra_sources, prefix)[:200]})", item.source,
                             "re-copy the series' files from the original or remove the series")
        side = json.loads(chosen[0].with_name(chosen[0].name[:-7] + ".json").read_text(encoding="utf-8"))
        os.chmod(chosen[0], 0o644)
        os.replace(chosen[0], target)  # same file system: an atomic rename, no copy
    for key, value in item.sidecar.items():
        side.pop(key, None) if value is None else side.__setitem__(key, value)
    side["Sources"] = side.get("Sources") or [Path(item.source).resolve().as_uri()]
    atomic_write_json(sidecar_path(target), side)
    return [_named(w, src, item.extra_sources, prefix) for w in warnings_of(proc.stdout)]
