"""The conversion plan: one :class:`Item` per output file, checked for conflicts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..core.bids import BidsName, subject_dir
from ..core.errors import InputError


@dataclass(frozen=True)
class Item:
    """One source file and the BIDS file it becomes.

    ``target`` is relative to the output root; a label names the ``reference``
    image (also relative) whose grid it must share.
    """

    source: str
    target: str
    kind: str = "image"  # image | label
    sidecar: Mapping = field(default_factory=dict)
    classes: Mapping[int, str] | None = None
    reference: str | None = None
    reference_source: str | None = None
    select: int | None = None  # keep only this label value (binary mask)
    extra_sources: tuple[str, ...] = ()
    output: str | None = None  # dicom: which of the volumes dcm2niix makes from the files this item is
    notes: tuple[str, ...] = ()  # dicom: dcm2niix's warnings when it converted the series while planning
    binarise: bool = False  # a mask stored with lossy or 0/255 values: thresholded into 0/1
    threshold: float | None = None  # where its foreground starts (None: half its type's range)


@dataclass
class Plan:
    """Everything a source contributes: files, participants and dataset text."""

    items: list[Item]
    participants: list[dict]
    name: str
    readme: str
    parameters: dict = field(default_factory=dict)
    #: what the source holds but is not converted (one dict per series or folder, with its ``reason``)
    skipped: list[dict] = field(default_factory=list)
    #: one row per series found, what it becomes or why not (the ``--dry-run`` table of DICOM sources)
    series: list[dict] = field(default_factory=list)
    #: a file that fails to convert is listed with the skipped ones instead of failing the run (DICOM exports)
    failures_are_skips: bool = False
    #: annotation tables shipped with the labels (``derivatives/labels/<name>.tsv``): name -> text and the
    #: JSON dictionary of its columns
    tables: dict[str, tuple[str, dict]] = field(default_factory=dict)


def check_conflicts(items: Iterable[Item]) -> None:
    """Refuse two sources that map to one BIDS name.

    >>> check_conflicts([Item("a", "x"), Item("b", "y")])
    >>> check_conflicts([Item("a", "x"), Item("b", "x")])  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ...
    totalseg_bids.core.errors.InputError: b: maps to the same BIDS name as a (x);
        rename one source or pass a mapping that tells them apart
    """
    seen: dict[str, str] = {}
    for item in items:
        if item.target in seen:
            raise InputError(f"maps to the same BIDS name as {seen[item.target]} ({item.target})", item.source,
                             "rename one source or pass a mapping that tells them apart")
        seen[item.target] = item.source


def by_number(paths: Iterable[Path], pattern) -> dict[int, Path]:
    """``{case number: file}`` of the files whose name matches ``pattern`` (group 1
    the number); two files with one number (``Case1``, ``Case01``) are refused.

    >>> import re
    >>> by_number([Path("Case1.nii.gz"), Path("x.txt")], re.compile(r"^Case(\\d+)"))
    {1: PosixPath('Case1.nii.gz')}
    """
    found: dict[int, Path] = {}
    for path in paths:
        m = pattern.match(path.name)
        if not m:
            continue
        n = int(m.group(1))
        if n in found:
            raise InputError(f"maps to the same BIDS name as {found[n]} (case {n})", path,
                             "rename one source or pass a mapping that tells them apart")
        found[n] = path
    return found


def table(items: Iterable[Item]) -> str:
    """The planned ``source -> target`` table printed by ``--dry-run``."""
    rows = [f"{item.source}\t->\t{item.target}" for item in items]
    return "\n".join(rows)


SERIES_COLUMNS = ("folder", "SeriesDescription", "Modality", "ImageType", "SeriesNumber", "files", "result")


def series_table(rows: Iterable[Mapping]) -> str:
    """One line per series, columns aligned: what ``--dry-run`` shows to write rules from
    (as ``dcm2bids_helper``); ``result`` is the BIDS file, or ``unmatched``/``not converted`` and why.

    >>> print(series_table([{"folder": "PAT1/CT", "SeriesDescription": "abdomen", "Modality": "CT",
    ...                      "ImageType": "ORIGINAL\\\\PRIMARY", "SeriesNumber": "2", "files": 80,
    ...                      "result": "unmatched", "reason": "no description matches it"}]))
    folder   SeriesDescription  Modality  ImageType         SeriesNumber  files  result
    PAT1/CT  abdomen            CT        ORIGINAL\\PRIMARY  2             80     unmatched: no description matches it
    """
    cells = [list(SERIES_COLUMNS)]
    for row in rows:
        result = str(row.get("result", ""))
        cells.append([str(row.get(c, "")) for c in SERIES_COLUMNS[:-1]]
                     + [f"{result}: {row['reason']}" if row.get("reason") else result])
    widths = [min(40, max(len(r[c]) for r in cells)) for c in range(len(SERIES_COLUMNS) - 1)]
    return "\n".join("  ".join([*(v[:w].ljust(w) for v, w in zip(r, widths)), r[-1]]).rstrip() for r in cells)


def padded(number: str | int, width: int = 3) -> str:
    """Zero-padded numeric id.

    >>> padded("7"), padded(12, 4)
    ('007', '0012')
    """
    return f"{int(number):0{width}d}"


def relpath(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` as a POSIX string (for Sources and tables)."""
    return Path(path).relative_to(root).as_posix()


def image_target(sub: str, suffix: str, entities: Mapping[str, str] | None = None) -> str:
    """``sub-X/anat/sub-X[_k-v]_<suffix>.nii.gz``.

    >>> image_target("001", "T2w", {"acq": "SPACE"})
    'sub-001/anat/sub-001_acq-SPACE_T2w.nii.gz'
    """
    name = BidsName((("sub", sub), *(entities or {}).items()), suffix)
    return (subject_dir(name) / name.filename).as_posix()


def label_target(image: str, label: str, kind: str, naming: str) -> str:
    """The labels-derivative path of a label on ``image`` (an image target).

    >>> label_target("sub-1/anat/sub-1_T2w.nii.gz", "spine", "dseg", "neuropoly")
    'derivatives/labels/sub-1/anat/sub-1_T2w_label-spine_dseg.nii.gz'
    """
    name = BidsName.parse(Path(image).name).derivative(label, kind=kind, naming=naming)
    return (Path("derivatives/labels") / Path(image).parent / name.filename).as_posix()


def files_matching(root: Path, pattern: str) -> list[Path]:
    """Sorted files below ``root`` whose relative path matches ``pattern`` (glob)."""
    return sorted(p for p in root.glob(pattern) if p.is_file() and not p.name.startswith("."))
