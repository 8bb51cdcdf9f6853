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
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..core.atomic import atomic_write_json
from ..core.bids import sidecar_path
from ..core.errors import ExternalToolError, InputError
from .plan import Item

log = logging.getLogger(__name__)

ARGS = ("-z", "y", "-b", "y", "-ba", "y", "-f", "%b", "-d", "0")
SIDECAR_ARGS = ("-b", "o", "-ba", "y", "-f", "%b", "-d", "0")
#: how dcm2niix names the deflated transfer syntax it does not read
DEFLATED = "1.2.840.10008.1.2.1.99"
#: dcm2niix's resampled variants of a volume (gantry tilt corrected, slices made equidistant)
VARIANT = re.compile(r"(_Tilt_\d+|_Eq_\d+)+$")
CORRECTIONS = {"_Tilt_": "gantry tilt corrected by dcm2niix (resampled onto an orthogonal grid)",
               "_Eq_": "uneven slice spacing made equidistant by dcm2niix (resampled; a missing slice?)"}
#: dcm2niix's messages about the geometry and completeness of a series (not its notes on missing optional tags)
WORTH_SAYING = re.compile(r"tilt|missing images|varies|interslice|equidistant|duplicate|not stacked|not large enough|"
                          r"unsupported|error|truncat|corrupt", re.I)
#: what makes a series unusable as it is: a file cut short or unreadable (dcm2niix would drop it and go on)
BROKEN = re.compile(r"not large enough|truncat|corrupt|unable to read|error", re.I)


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


def _link(files: Sequence[str | Path], folder: Path, prefix: str, inflate: bool = False) -> None:
    """The series' files under their scratch names: links, or (``inflate``) inflated copies of
    deflated files, a transfer syntax dcm2niix does not read."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(files):
        dst = folder / link_name(prefix, i)
        if inflate:
            dst.unlink(missing_ok=True)
            _inflate(Path(f), dst)
        else:
            os.symlink(Path(f).resolve(), dst)


def _inflate(src: Path, dst: Path) -> None:
    """A deflated file (1.2.840.10008.1.2.1.99) rewritten as Explicit VR Little Endian, else linked."""
    import pydicom
    from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian

    try:
        ds = pydicom.dcmread(src, force=True)
        deflated = ds.file_meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian
    except Exception:  # noqa: BLE001 - dcm2niix will say what is wrong with it
        deflated = False
    if not deflated:
        os.symlink(src.resolve(), dst)
        return
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    pydicom.dcmwrite(dst, ds, enforce_file_format=True)


def _dcm2niix(args: Sequence[str], files: Sequence[str | Path], src: Path, dst: Path, prefix: str):
    """Run dcm2niix on the scratch links; once more on inflated copies when it finds deflated files."""
    _link(files, src, prefix)
    proc = subprocess.run([dcm2niix_binary(), *args, "-o", str(dst), str(src)], capture_output=True,
                          encoding="utf-8", errors="replace")
    if DEFLATED in proc.stdout:
        for old in dst.iterdir():
            old.unlink()
        _link(files, src, prefix, inflate=True)
        proc = subprocess.run([dcm2niix_binary(), *args, "-o", str(dst), str(src)], capture_output=True,
                              encoding="utf-8", errors="replace")
    return proc


def warnings_of(stdout: str) -> list[str]:
    """dcm2niix's warnings (gantry tilt, missing or uneven slices, ...), as it words them.

    >>> warnings_of("Found 3 DICOM file(s)\\nWarning: Missing images?\\nWarning: Patient Position not specified")
    ['Warning: Missing images?']
    """
    return [ln.strip() for ln in stdout.splitlines() if WORTH_SAYING.search(ln)]


def series_sidecars(files: Sequence[str | Path], prefix: str, keep: Path | None = None
                    ) -> tuple[list[tuple[str, dict]], list[str]]:
    """``([(volume name, dcm2niix sidecar)], dcm2niix's warnings)`` of one series: sidecars only, or with
    ``keep`` (a scratch folder) the volumes too, converted once and left in ``keep/<prefix>/``."""
    with tempfile.TemporaryDirectory(prefix="tsb-dcm-") as tmp:
        src, dst = Path(tmp) / "in", (keep / prefix if keep else Path(tmp) / "out")
        dst.mkdir(parents=True, exist_ok=True)
        proc = _dcm2niix(ARGS if keep else SIDECAR_ARGS, files, src, dst, prefix)
        found = []
        for side in sorted(dst.glob("*.json")):
            try:
                found.append((side.stem, json.loads(side.read_text(encoding="utf-8"))))
            except ValueError:
                continue
    return found, [_named(w, src, files, prefix) for w in warnings_of(proc.stdout)]


def sidecars_of(series: list[tuple[Sequence[str | Path], str]], jobs: int | None = None,
                keep: Path | None = None) -> list[tuple]:
    """:func:`series_sidecars` of many series, ``jobs`` dcm2niix processes at a time."""
    with ThreadPoolExecutor(max_workers=max(1, jobs or os.cpu_count() or 1)) as pool:
        return list(pool.map(lambda s: series_sidecars(*s, keep=keep), series))


def _named(text: str, links: Path, files: Sequence[str | Path], prefix: str) -> str:
    """A dcm2niix message with the scratch links replaced by the source files they stand for.

    >>> _named("Warning: File not large enough: /t/in/s0001_00001", Path("/t/in"), ["a", "b"], "s0001")
    'Warning: File not large enough: b'
    """
    for i in range(len(files) - 1, -1, -1):
        text = text.replace(str(links / link_name(prefix, i)), str(files[i]))
    return text[:300]


def _world_true(outputs: list[Path], name: str | None) -> list[Path]:
    """The volume called ``name`` (any, when None), or dcm2niix's corrected variant of it: where a
    series has gantry tilt or uneven slices, dcm2niix writes the raw stack (voxels in the wrong
    place) and a resampled one whose voxels are where the scanner put them.

    >>> [p.name for p in _world_true([Path("a.nii.gz"), Path("a_Tilt_1.nii.gz"), Path("a_e2.nii.gz")], "a")]
    ['a_Tilt_1.nii.gz']
    """
    if name is None:
        bases = {VARIANT.sub("", o.name[:-7]) for o in outputs}
        if len(bases) != 1:
            return outputs
        name = bases.pop()
    mine = [o for o in outputs if VARIANT.sub("", o.name[:-7]) == name]
    return sorted(mine, key=lambda o: len(o.name))[-1:] if mine else []


def convert_series(item: Item, target: Path) -> list[str]:
    """Convert one series into ``target`` (atomic rename from a scratch folder on its file system) and
    return dcm2niix's warnings. ``item.output`` names the volume to keep when dcm2niix makes several,
    or is the absolute path (no extension) of the volume converted while planning; the sidecar gets
    ``item.sidecar`` on top (a None value removes the field)."""
    ready = item.output is not None and Path(item.output).is_absolute()
    name = Path(item.output).name if item.output else None
    prefix = name.split("_")[0] if name else "s0000"
    with tempfile.TemporaryDirectory(prefix=".tmp-dcm-", dir=target.parent) as tmp:
        src, dst = Path(tmp) / "in", (Path(item.output).parent if ready else Path(tmp) / "out")
        dst.mkdir(exist_ok=True)
        stdout = "" if ready else _dcm2niix(ARGS, item.extra_sources, src, dst, prefix).stdout
        outputs = sorted(dst.glob("*.nii.gz"))
        chosen = _world_true(outputs, name)
        if len(chosen) != 1:
            why = next(iter(warnings_of(stdout)), "") or (stdout.strip().splitlines() or ["no output"])[-1]
            raise InputError(f"dcm2niix made {len(outputs)} volumes from the series "
                             f"({_named(why, src, item.extra_sources, prefix)[:200]})", item.source,
                             "re-copy the series' files from the original or remove the series")
        base = VARIANT.sub("", chosen[0].name[:-7])
        side = json.loads((dst / f"{base}.json").read_text(encoding="utf-8"))
        if chosen[0].name != f"{base}.nii.gz":
            side["GeometryCorrection"] = "; ".join(v for k, v in CORRECTIONS.items() if k in chosen[0].name)
        os.chmod(chosen[0], 0o644)
        os.replace(chosen[0], target)  # same file system: an atomic rename, no copy
    for key, value in item.sidecar.items():
        side.pop(key, None) if value is None else side.__setitem__(key, value)
    side["Sources"] = side.get("Sources") or [Path(item.source).resolve().as_uri()]
    atomic_write_json(sidecar_path(target), side)
    return [*item.notes, *(_named(w, src, item.extra_sources, prefix) for w in warnings_of(stdout))]
