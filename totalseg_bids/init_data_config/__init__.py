"""Write a train/validation/test data config (docs/conventions.md section 4) from label or image lists.

Replaces totalspineseg's ``init_data_config.py`` and keeps its command line and
JSON working (``--txt train_sacrum.txt --type LABEL --split-validation 0.1
--split-test 0.1`` writes ``train_sacrum.json``), fixing what was wrong with it:

* files were split one by one, so sessions of one subject leaked between
  TRAINING and TESTING: the split unit is now ``(dataset, subject)``;
* the cut points ``int(n * cumulative ratio)`` silently dropped a file for some
  ratios (``0.7/0.2/0.1`` over 9 files): counts now come from exact fractions
  by largest remainder, and every file lands in exactly one split;
* ``random.shuffle`` was unseeded: the split is now a function of ``--seed``;
* a missing file, a label without image, or an annexed file stopped the run
  one at a time (or with a bad-gzip error later): all are reported in one line.

Decisions (also in ``--help``):

* Relative paths in the list are looked up from the current folder first (the
  legacy behaviour), then from the list file's folder, then ``--datasets-path``.
  Blank lines and lines starting with ``#`` are ignored; duplicates are
  dropped with a warning.
* ``DATASETS_PATH`` is the common parent folder of the raw datasets holding the
  files (the legacy value when all datasets share a parent), or
  ``--datasets-path``. Entries are paths relative to it.
* Counts per split: ``n * ratio`` computed exactly, floors first, the leftover
  units to the largest remainders; ties go to TRAINING, then VALIDATION, then
  TESTING. TRAINING is never empty when there is a unit: if rounding left it
  empty, the split that won the smallest remainder (TESTING on a tie) gives
  one unit back. Every count stays within one unit of ``n * ratio``.
* Units (sorted) are shuffled with ``random.Random(seed)``; with
  ``--stratify dataset`` each dataset is split on its own (largest remainder
  per dataset, ``random.Random("<seed>:<dataset>")``), so adding a dataset
  does not reshuffle the others. Overall counts are then the per-dataset sums.
* ``--bids-dir`` has no list file to put the JSON beside: ``-o`` is required.
* One label per image: several labels of one image (two structures, two
  derivative folders, a prediction beside a transferred label) are refused,
  naming the image and its labels; ``--label-dir NAME`` and ``--label NAME``
  keep one, ``--allow-several-labels`` keeps each as its own case.
* Every listed file must have a readable NIfTI header (a sidecar or a text
  file named ``_seg.nii.gz`` is refused).
* ``--check-geometry`` (= ``error``) refuses labels off their image's grid,
  non-binary ``_seg``/``_mask`` labels and empty labels (exit 1, no JSON);
  ``--check-geometry warn`` logs them and writes the config anyway.
* Stdout is one JSON line: ``{"stage": "init_data_config", "status":
  "written", "path": <config>, "type": ..., "counts": {split: {files, subjects}}}``.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import random
from collections import defaultdict
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .. import __version__
from ..core import flags
from ..core import cli
from ..core.atomic import atomic_write_json
from ..core.bids import BidsName, dataset_path, image_for_label, is_binary_label, raw_root_of, split_extension
from ..core.config import SPLITS, TYPES, contrasts_code
from ..core.datalad import ensure_content, get_command, get_requested, is_annex_pointer
from ..core.derivatives import now as derivatives_now
from ..core.errors import GeometryError, InputError, MissingFileError, UsageError
from ..core.index import BidsIndex
from ..core.options import options_from_args, resolve_options
from ..core.qc.marks import filter_labels, read_marks

log = logging.getLogger(__name__)

TOOL_NAME = "totalseg_bids.init_data_config"
SPLIT_BY = ("subject", "file")
STRATIFY = ("dataset",)
GEOMETRY_MODES = ("error", "warn")
#: How many offending files an error line names before "(+N more)".
SHOWN = 3


# ====================================================================== pure helpers
def _fraction(value: float | Fraction) -> Fraction:
    """A ratio as the exact fraction the user typed (``0.1`` -> 1/10), so that
    ``n * ratio`` has no binary rounding error deciding a count.

    >>> _fraction(0.1)
    Fraction(1, 10)
    """
    if isinstance(value, Fraction):
        return value
    return Fraction(repr(float(value)))


def validate_ratios(split_validation: float, split_test: float) -> tuple[Fraction, Fraction, Fraction]:
    """(TRAINING, VALIDATION, TESTING) ratios as exact fractions summing to 1.

    Each ratio must lie in [0, 1) and their sum below 1, otherwise TRAINING
    would be empty or negative: that is a usage error (exit 2).

    >>> validate_ratios(0.1, 0.1)
    (Fraction(4, 5), Fraction(1, 10), Fraction(1, 10))
    >>> try:
    ...     validate_ratios(0.5, 0.5)
    ... except UsageError as exc:
    ...     print(exc.problem)
    --split-validation + --split-test = 1 (must be below 1)
    """
    named = (("--split-validation", split_validation), ("--split-test", split_test))
    for flag, value in named:
        if not isinstance(value, (int, float, Fraction)) or isinstance(value, bool) \
                or not math.isfinite(float(value)) or not 0 <= float(value) < 1:
            raise UsageError(f"{flag} {value!r} is outside [0, 1)", None,
                             f"give {flag} as a fraction such as 0.1")
    val, test = _fraction(split_validation), _fraction(split_test)
    if val + test >= 1:
        raise UsageError(f"--split-validation + --split-test = {float(val + test):g} (must be below 1)", None,
                         "lower the ratios so that some data is left for training")
    return 1 - val - test, val, test


def split_counts(n: int, ratios: Sequence[float | Fraction]) -> tuple[int, int, int]:
    """How many of ``n`` units go to TRAINING, VALIDATION, TESTING.

    Largest remainder on exact fractions, so the counts always sum to ``n``
    and each is within one of ``n * ratio``; ties go to TRAINING, VALIDATION,
    TESTING in that order. TRAINING is never left empty when ``n >= 1``.

    >>> split_counts(10, (0.8, 0.1, 0.1))
    (8, 1, 1)
    >>> split_counts(9, (0.7, 0.2, 0.1))  # the legacy int() cut points gave 6, 2, 0
    (6, 2, 1)
    >>> split_counts(3, (0.8, 0.1, 0.1))
    (3, 0, 0)
    >>> split_counts(1, (0.1, 0.5, 0.4))  # VALIDATION won the unit; TRAINING takes it back
    (1, 0, 0)
    >>> split_counts(0, (0.8, 0.1, 0.1))
    (0, 0, 0)
    """
    fr = [_fraction(r) for r in ratios]
    if len(fr) != 3 or sum(fr) != 1 or any(r < 0 for r in fr):
        raise UsageError(f"split ratios {[float(r) for r in fr]} must be three non-negative numbers summing to 1",
                         None, "use validate_ratios(split_validation, split_test)")
    if n < 0:
        raise UsageError(f"cannot split {n} units", None, "give a count >= 0")
    exact = [n * r for r in fr]
    counts = [math.floor(e) for e in exact]
    rem = [e - c for e, c in zip(exact, counts)]
    winners = sorted(range(3), key=lambda i: (-rem[i], i))[: n - sum(counts)]
    for i in winners:
        counts[i] += 1
    if n > 0 and counts[0] == 0:
        # TRAINING's exact share is in (0, 1) and lost; a split that won a
        # remainder gives its unit back, so no count moves by a full unit.
        donor = min((i for i in winners if i != 0), key=lambda i: (rem[i], -i))
        counts[donor] -= 1
        counts[0] += 1
    return counts[0], counts[1], counts[2]


@dataclass(frozen=True)
class Entry:
    """One config entry: its path relative to DATASETS_PATH, its dataset and subject."""

    path: str
    dataset: str
    subject: str


def split_unit(entry: Entry, split_by: str = "subject") -> tuple[str, str]:
    """The unit that is never divided between splits.

    A subject is only unique within its dataset (``sub-01`` of two datasets
    are two people), so the subject unit is ``(dataset, subject)``.

    >>> split_unit(Entry("ds/sub-01/anat/sub-01_T2w.nii.gz", "ds", "01"))
    ('ds', '01')
    >>> split_unit(Entry("ds/sub-01/anat/sub-01_T2w.nii.gz", "ds", "01"), "file")
    ('ds', 'ds/sub-01/anat/sub-01_T2w.nii.gz')
    """
    if split_by == "subject":
        return entry.dataset, entry.subject
    if split_by == "file":
        return entry.dataset, entry.path
    raise UsageError(f"unknown --split-by {split_by!r}", None, f"use one of {', '.join(SPLIT_BY)}")


def assign_splits(entries: Iterable[Entry], ratios: Sequence[float | Fraction], seed: int = 42,
                  split_by: str = "subject", stratify: str | None = None) -> dict[str, list[str]]:
    """Entry paths per split (sorted), keeping every unit whole.

    Units are sorted before the seeded shuffle so the result depends only on
    the set of entries and the seed, not on the order of the list file.

    >>> es = [Entry(f"ds/sub-{s}/anat/sub-{s}_{c}.nii.gz", "ds", s) for s in "0123456789" for c in ("T1w", "T2w")]
    >>> out = assign_splits(es, (0.8, 0.1, 0.1), seed=1)
    >>> [len(out[k]) for k in SPLITS]
    [16, 2, 2]
    >>> out == assign_splits(list(reversed(es)), (0.8, 0.1, 0.1), seed=1)
    True
    """
    if stratify not in (None, *STRATIFY):
        raise UsageError(f"unknown --stratify {stratify!r}", None, f"use one of {', '.join(STRATIFY)}")
    by_unit: dict[tuple[str, str], list[str]] = defaultdict(list)
    for entry in entries:
        by_unit[split_unit(entry, split_by)].append(entry.path)
    strata: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for unit in sorted(by_unit):
        strata[unit[0] if stratify else ""].append(unit)
    out: dict[str, list[str]] = {s: [] for s in SPLITS}
    for key in sorted(strata):
        units = strata[key]
        random.Random(f"{seed}:{key}" if stratify else seed).shuffle(units)
        start = 0
        for split, count in zip(SPLITS, split_counts(len(units), ratios)):
            for unit in units[start:start + count]:
                out[split].extend(by_unit[unit])
            start += count
    return {s: sorted(v) for s, v in out.items()}


def parse_path_lines(text: str) -> tuple[list[str], list[str]]:
    """Entries of a path list (one per line) and the duplicates that were dropped.

    Blank lines and ``#`` comment lines are skipped so lists can be annotated
    by hand; ``find ... > list.txt`` output works as is.

    >>> parse_path_lines("a.nii.gz\\n\\n# comment\\n  b.nii.gz \\r\\na.nii.gz\\n")
    (['a.nii.gz', 'b.nii.gz'], ['a.nii.gz'])
    """
    seen: dict[str, None] = {}
    dups: list[str] = []
    for line in text.lstrip("\ufeff").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line in seen:
            dups.append(line)
        else:
            seen[line] = None
    return list(seen), dups


def default_output(txt: str | Path) -> Path:
    """The legacy output path: the list file with ``.txt`` replaced by ``.json``.

    >>> str(default_output("lists/train_sacrum.txt"))
    'lists/train_sacrum.json'
    >>> str(default_output("train_list"))
    'train_list.json'
    """
    txt = Path(txt)
    stem = txt.name[:-4] if txt.name.lower().endswith(".txt") else txt.name
    return txt.with_name(stem + ".json")


def normalize_label_suffix(suffix: str) -> str:
    """A ``--label-suffix`` as the end of a file stem (leading ``_``, no extension).

    >>> normalize_label_suffix("label-sacrum_seg.nii.gz")
    '_label-sacrum_seg'
    >>> normalize_label_suffix("_space-T2w_label-sacrum_mask")
    '_space-T2w_label-sacrum_mask'
    """
    stem = split_extension(suffix.strip())[0] if suffix.strip().endswith((".nii.gz", ".nii")) else suffix.strip()
    if not stem:
        raise UsageError("--label-suffix is empty", None, "e.g. --label-suffix _label-sacrum_seg")
    return stem if stem.startswith("_") else "_" + stem


def common_datasets_path(roots: Iterable[Path]) -> Path:
    """The folder holding every dataset: the common parent of the dataset roots.

    The legacy script required one shared parent; datasets under different
    parents now get their deepest common ancestor instead of an error.

    >>> str(common_datasets_path([Path("/data/ds1"), Path("/data/ds2")]))
    '/data'
    >>> str(common_datasets_path([Path("/data/a/ds1"), Path("/data/b/ds2")]))
    '/data'
    """
    return Path(os.path.commonpath([str(Path(r).parent) for r in roots]))


def _listing(items: Sequence[tuple[Path | str, str]], total: int, what: str) -> str:
    """``'2 of 9 <what>: a (why); b (why)'`` with at most SHOWN shown.

    >>> _listing([("a", "file not found")], 4, "listed files unusable")
    '1 of 4 listed files unusable: a (file not found)'
    """
    shown = "; ".join(f"{p} ({why})" for p, why in items[:SHOWN])
    more = f" (+{len(items) - SHOWN} more)" if len(items) > SHOWN else ""
    return f"{len(items)} of {total} {what}: {shown}{more}"


# ====================================================================== inputs
def _absolute(path: str | Path) -> Path:
    """Absolute without resolving symlinks: annexed files are links into
    ``.git/annex`` and must keep their dataset path."""
    return Path(os.path.abspath(os.path.expanduser(str(path))))


def read_path_list(txt: str | Path, cwd: str | Path | None = None,
                   datasets_path: str | Path | None = None) -> list[Path]:
    """The absolute paths listed in ``txt``, relative ones looked up from
    ``cwd`` (legacy), then the list's folder, then ``datasets_path``."""
    txt = Path(txt)
    if not txt.exists():
        raise MissingFileError("path list not found", txt, "check the --txt path")
    if txt.is_dir():
        raise InputError("is a folder, not a path list", txt,
                         "give a text file with one path per line (e.g. find ~+ -name '*_seg.nii.gz' > list.txt)")
    try:
        raw = txt.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the path list ({exc.strerror})", txt, "check its permissions") from None
    try:
        if b"\x00" in raw:
            raise UnicodeDecodeError("utf-8", raw, 0, 1, "NUL byte")
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("not a text file (binary content)", txt,
                         "give a UTF-8 text file with one path per line") from None
    lines, dups = parse_path_lines(text)
    if not lines:
        raise InputError("lists no paths", txt, "put one label or image path per line")
    bases = [_absolute(cwd or os.getcwd()), _absolute(txt).parent]
    if datasets_path is not None:
        bases.append(_absolute(datasets_path))
    bases = list(dict.fromkeys(bases))
    out: dict[Path, None] = {}
    for line in lines:
        path = _resolve_listed(line, bases)
        if path in out:
            dups.append(line)
        out[path] = None
    if dups:
        log.warning("%s: %d duplicate line(s) dropped (e.g. %s)", txt, len(dups), dups[0])
    return list(out)


def _resolve_listed(entry: str, bases: Sequence[Path]) -> Path:
    """An absolute path for one list entry (the first base where it exists)."""
    p = Path(os.path.expanduser(entry))
    if p.is_absolute():
        return _absolute(p)
    candidates = [_absolute(base / p) for base in bases]
    for cand in candidates:
        if cand.exists() or cand.is_symlink():
            return cand
    return candidates[0]


def query_bids(bids_dirs: Sequence[str | Path], type: str = "LABEL", label_dir: str | None = None,
               label_suffix: str | None = None, contrasts: Sequence[str] | None = None) -> list[Path]:
    """Label files (``<ds>/derivatives/<label_dir>/...<label_suffix>.nii.gz``)
    or raw images (with a suffix in ``contrasts``) of one or more datasets."""
    if type not in TYPES:
        raise UsageError(f"unknown --type {type!r}", None, "use LABEL or IMAGE")
    if type == "LABEL" and (not label_dir or not label_suffix):
        raise UsageError("--bids-dir with --type LABEL needs --label-dir and --label-suffix", None,
                         "e.g. --label-dir labels --label-suffix _label-sacrum_seg")
    suffix = normalize_label_suffix(label_suffix) if type == "LABEL" else None
    wanted = set(contrasts) if contrasts else None
    found: list[Path] = []
    for d in bids_dirs:
        root = _absolute(d)
        if not root.exists():
            raise MissingFileError("dataset folder not found", root, "check the --bids-dir path")
        if not root.is_dir():
            raise InputError("not a folder", root, "give a BIDS dataset folder to --bids-dir")
        if type == "LABEL":
            folder = root / "derivatives" / str(label_dir)
            if not folder.is_dir():
                have = sorted(p.name for p in (root / "derivatives").glob("*") if p.is_dir())
                raise MissingFileError("label folder not found", folder,
                                       f"check --label-dir (folders in derivatives/: {', '.join(have) or 'none'})")
            files = [f for f in BidsIndex.scan(folder) if f.name.is_derivative
                     and split_extension(f.path.name)[0].endswith(suffix)
                     and (wanted is None or f.name.suffix in wanted)]
        else:
            files = BidsIndex.scan(root).query(suffix=sorted(wanted) if wanted else None, derivative=False)
        if not files:
            log.warning("%s: no %s matched the query", root, "labels" if type == "LABEL" else "images")
        found.extend(f.path for f in files)
    if not found:
        what = (f"labels ending in {suffix}.nii.gz under derivatives/{label_dir}" if type == "LABEL"
                else "raw images")
        extra = f" with contrasts {' '.join(sorted(wanted))}" if wanted else ""
        raise InputError(f"no {what}{extra} found", _absolute(bids_dirs[0]),
                         "check --bids-dir, --label-dir, --label-suffix and --contrasts")
    return found


# ====================================================================== building
@dataclass
class _Item:
    """A listed file with its parsed name, its image (LABEL) and raw dataset root."""

    path: Path
    name: BidsName
    root: Path
    image: Path | None = None


def _parse_items(paths: Sequence[Path], type: str, source: Path | None) -> tuple[list[_Item], list[tuple[Path, str]]]:
    """Parse names and check each file is of the declared TYPE; wrong TYPE is
    its own error because its fix (list other files / change --type) differs."""
    items: list[_Item] = []
    problems: list[tuple[Path, str]] = []
    wrong: list[tuple[Path, str]] = []
    for path in paths:
        try:
            name = BidsName.parse(path)
            root = raw_root_of(path)
        except InputError as exc:
            problems.append((path, exc.problem))
            continue
        if type == "LABEL" and not name.is_derivative:
            wrong.append((path, "an image, not a label"))
        elif type == "IMAGE" and name.is_derivative:
            wrong.append((path, f"a label (_{name.deriv_suffix}), not an image"))
        else:
            items.append(_Item(path, name, root))
    if wrong:
        other = "IMAGE" if type == "LABEL" else "LABEL"
        raise InputError(_listing(wrong, len(paths), f"files do not match --type {type}"),
                         source or wrong[0][0],
                         f"list only {type.lower()} files, or use --type {other} if they all are")
    return items, problems


def _check_files(items: list[_Item], problems: list[tuple[Path, str]], total: int, type: str,
                 source: Path | None, datalad_get: bool) -> None:
    """Existence, pairing and annex content of every file; all problems in one error."""
    annexed: list[Path] = []
    for item in items:
        if is_annex_pointer(item.path):
            annexed.append(item.path)
        elif not item.path.exists():
            problems.append((item.path, "file not found"))
            continue
        elif item.path.is_dir():
            problems.append((item.path, "is a folder"))
            continue
        elif not _readable_nifti(item.path, problems):
            continue
        if type == "LABEL":
            try:
                item.image = image_for_label(item.path)
            except InputError as exc:
                problems.append((item.path, exc.problem))
                continue
            if is_annex_pointer(item.image):
                annexed.append(item.image)
            elif item.image.exists():
                _readable_nifti(item.image, problems)
    annexed = list(dict.fromkeys(annexed))
    if annexed and get_requested(datalad_get) and not problems:
        ensure_content(annexed, get=True)
        annexed = []
    if not problems and not annexed:
        return
    everything = problems + [(p, "annexed, content not present") for p in annexed]
    fixes = []
    if problems:
        fixes.append("fix or remove the listed paths (relative ones are looked up from the current folder, "
                     "then the list's folder)")
    if annexed:
        fixes.append(f"run `{get_command(annexed[:SHOWN])}{' ...' if len(annexed) > SHOWN else ''}` "
                     "or pass --datalad-get")
    raise InputError(_listing(everything, total, "listed files unusable"), source or everything[0][0],
                     "; ".join(fixes))


def _readable_nifti(path: Path, problems: list[tuple[Path, str]]) -> bool:
    """Whether ``path`` has a readable 3D NIfTI header (cheap: no voxel data is
    read), so a text file or a sidecar named like a label never lands in a config."""
    from ..core.nifti import load_grid

    try:
        load_grid(path)
    except InputError as exc:
        problems.append((path, exc.problem))
        return False
    return True


def _label_folder(path: Path, root: Path) -> str:
    """The derivatives folder holding a label (``labels``, ``reg-labels``, ...).

    >>> _label_folder(Path("/d/ds/derivatives/labels/sub-01/anat/x.nii.gz"), Path("/d/ds"))
    'labels'
    """
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return ""
    return parts[1] if len(parts) > 2 and parts[0] == "derivatives" else ""


def choose_labels(items: list[_Item], label_dir: str | None = None, label: str | None = None,
                  allow_several: bool = False, source: Path | None = None) -> list[_Item]:
    """One label per image: keep those under ``derivatives/<label_dir>`` and
    with ``label-<label>``; several left for one image are an error (a
    structure, a prediction or a second derivative folder would silently become
    extra training cases) unless ``allow_several``."""
    kept = [i for i in items if (label_dir is None or _label_folder(i.path, i.root) == label_dir)
            and (label is None or i.name.get("label") == label)]
    if not kept:
        what = " and ".join(x for x in (f"--label-dir {label_dir}" if label_dir else "",
                                         f"--label {label}" if label else "") if x)
        folders = sorted({_label_folder(i.path, i.root) for i in items} - {""})
        names = sorted({str(i.name.get("label")) for i in items if i.name.get("label")})
        raise InputError(f"no listed label matches {what}", source or items[0].path,
                         f"label folders listed: {', '.join(folders) or 'none'}; "
                         f"label names: {', '.join(names) or 'none'}")
    by_image: dict[Path, list[_Item]] = defaultdict(list)
    for i in kept:
        by_image[i.image or i.path].append(i)
    several = {img: group for img, group in by_image.items() if len(group) > 1}
    if several and not allow_several:
        img, group = next(iter(several.items()))
        more = f" (+{len(several) - 1} more image(s))" if len(several) > 1 else ""
        files = ", ".join(os.path.relpath(g.path, g.root) for g in group)
        raise InputError(f"{len(group)} labels for {dataset_path(img)}: {files}{more}",
                         source or group[0].path,
                         "choose one with --label-dir NAME or --label NAME, or pass --allow-several-labels "
                         "to keep each as its own case")
    for img, group in several.items():
        log.warning("%s: %d labels kept as separate cases (--allow-several-labels)", dataset_path(img), len(group))
    return kept


def _datasets_base(items: Sequence[_Item], datasets_path: str | Path | None, source: Path | None) -> Path:
    """DATASETS_PATH: ``datasets_path`` if given (every file must be under it),
    else the common parent of the raw datasets."""
    if datasets_path is None:
        return common_datasets_path(sorted({i.root for i in items}))
    base = _absolute(datasets_path)
    outside = [(i.path, "not under --datasets-path") for i in items if not i.path.is_relative_to(base)]
    outside += [(i.image, "image not under --datasets-path") for i in items
                if i.image is not None and not i.image.is_relative_to(base)]
    if outside:
        raise InputError(_listing(outside, len(items), f"files outside {base}"), source or base,
                         "give the folder that holds every dataset to --datasets-path, or leave it out")
    return base


def check_pairs(pairs: Sequence[tuple[Path, Path | None]]) -> list[tuple[Path, str]]:
    """Problems of ``(label, image)`` pairs that nnU-Net would trip on later:
    label off its image's grid, non-binary ``_seg``/``_mask``, empty label.
    ``(image, None)`` only checks the image header is a readable 3D NIfTI."""
    import numpy as np

    from ..core.nifti import Grid, grid_mismatch, load_grid, load_nifti, read_data

    problems: list[tuple[Path, str]] = []
    for label, image in cli.progress(pairs, desc="headers"):
        try:
            if image is None:
                load_grid(label)
                continue
            img = load_nifti(label, check_forms=False)
            data = read_data(img, label)
            why = grid_mismatch(Grid.of(img), load_grid(image))
            if why:
                problems.append((label, f"not on its image's grid: {why}"))
            if not np.any(data):
                problems.append((label, "empty label (all zero)"))
            elif is_binary_label(label) and np.any((data != 0) & (data != 1)):
                values = np.unique(data)
                problems.append((label, f"not binary (values {values[:6].tolist()}"
                                        f"{'...' if values.size > 6 else ''})"))
        except InputError as exc:
            problems.append((Path(exc.path or label), exc.problem))
    return problems


@dataclass(frozen=True)
class InitConfigOptions:
    """How the listed files become a config: their TYPE, the split, which labels to keep, what to check.

    ``check_geometry``: False/None (no check), True/``'error'`` (raise
    GeometryError) or ``'warn'`` (log); stored as None, ``error`` or ``warn``.
    ``label_dir``/``label`` keep only the labels of that derivatives folder /
    ``label-`` name; several labels left for one image are refused unless
    ``allow_several_labels`` (see :func:`choose_labels`). ``datasets_path``:
    the DATASETS_PATH to write (default: the datasets' common parent).
    """

    type: str = "LABEL"
    split_validation: float = 0.1
    split_test: float = 0.1
    seed: int = 42
    split_by: str = "subject"
    stratify: str | None = None
    check_geometry: bool | str | None = None
    datasets_path: str | Path | None = None
    datalad_get: bool = False
    label_dir: str | None = None
    label: str | None = None
    allow_several_labels: bool = False

    def __post_init__(self) -> None:
        validate_ratios(self.split_validation, self.split_test)
        type, mode = _check_options(self.type, self.split_by, self.stratify, self.check_geometry)
        object.__setattr__(self, "type", type)
        object.__setattr__(self, "check_geometry", mode)
        if type != "LABEL" and (self.label_dir or self.label):
            raise UsageError("--label-dir and --label select labels", None, "use them with --type LABEL")

    @property
    def ratios(self) -> tuple[Fraction, Fraction, Fraction]:
        return validate_ratios(self.split_validation, self.split_test)


def build_config(labels_or_images: Sequence[str | Path], options: InitConfigOptions | None = None, *,
                 source: str | Path | None = None, **kwargs) -> dict[str, Any]:
    """The data config for these labels (``type='LABEL'``) or images, as the JSON's dict.

    Every check runs before anything is returned so a caller never writes a
    partial config. ``source`` is the file named in error messages (the path
    list); relative paths are taken from the current folder.
    """
    opts = resolve_options(InitConfigOptions, options, kwargs)
    src = _absolute(source) if source is not None else None
    paths = list(dict.fromkeys(_absolute(p) for p in labels_or_images))
    if not paths:
        raise InputError("no files to split", src, "give at least one label or image path")

    items, problems = _parse_items(paths, opts.type, src)
    _check_files(items, problems, len(paths), opts.type, src, opts.datalad_get)
    if opts.type == "LABEL":
        items = choose_labels(items, opts.label_dir, opts.label, opts.allow_several_labels, src)
    base = _datasets_base(items, opts.datasets_path, src)
    if opts.check_geometry:
        _check_geometry(items, opts.check_geometry, src)

    entries = [Entry(i.path.relative_to(base).as_posix(), i.root.relative_to(base).as_posix() or ".",
                     i.name.subject) for i in items]
    splits = assign_splits(entries, opts.ratios, seed=opts.seed, split_by=opts.split_by, stratify=opts.stratify)
    images = [i.image if i.image is not None else i.path for i in items]
    for s, r in zip(SPLITS, opts.ratios):
        if r > 0 and not splits[s]:
            log.warning("%s is empty: %d %s(s) are too few for a ratio of %g", s,
                        len({split_unit(e, opts.split_by) for e in entries}), opts.split_by, float(r))
    return _config_dict(images, base, splits, entries, opts)


def _check_options(type: str, split_by: str, stratify: str | None, check_geometry: bool | str | None
                   ) -> tuple[str, str | None]:
    """The upper-cased type and the geometry mode (None, ``error``, ``warn``); UsageError otherwise."""
    type = str(type).upper()
    if type not in TYPES:
        raise UsageError(f"unknown type {type!r}", None, "use LABEL or IMAGE")
    if split_by not in SPLIT_BY:
        raise UsageError(f"unknown --split-by {split_by!r}", None, f"use one of {', '.join(SPLIT_BY)}")
    if stratify not in (None, *STRATIFY):
        raise UsageError(f"unknown --stratify {stratify!r}", None, f"use one of {', '.join(STRATIFY)}")
    mode = {False: None, None: None, True: "error"}.get(check_geometry, check_geometry)  # type: ignore[arg-type]
    if mode not in (None, *GEOMETRY_MODES):
        raise UsageError(f"unknown --check-geometry {check_geometry!r}", None, "use error or warn")
    return type, mode


def _check_geometry(items: Sequence[_Item], mode: str, src: Path | None) -> None:
    """Labels off their image's grid: one GeometryError (``error``) or a warning each (``warn``)."""
    bad = check_pairs([(i.path, i.image) for i in items])
    if bad and mode == "error":
        raise GeometryError(_listing(bad, len(items), "files fail --check-geometry"), src or bad[0][0],
                            "resample the labels onto their images (nearest neighbour) or fix them, "
                            "or pass --check-geometry warn")
    for path, why in bad:
        log.warning("%s: %s", path, why)


def _config_dict(images: Sequence[Path], base: Path, splits: Mapping[str, list[str]],
                 entries: Sequence[Entry], opts: InitConfigOptions) -> dict[str, Any]:
    """The config JSON's content, with what made the split (seed, ratios, counts, tool)."""
    subject_of = {e.path: (e.dataset, e.subject) for e in entries}
    return {
        "TYPE": opts.type,
        "CONTRASTS": contrasts_code(BidsName.parse(p).suffix or "" for p in images),
        "DATASETS_PATH": str(base),
        **splits,
        "SEED": opts.seed,
        "SPLIT_BY": opts.split_by,
        "STRATIFY": opts.stratify,
        "SPLIT_RATIOS": {s: float(r) for s, r in zip(SPLITS, opts.ratios)},
        "COUNTS": {s: {"files": len(splits[s]), "subjects": len({subject_of[p] for p in splits[s]})}
                   for s in SPLITS},
        "GeneratedBy": {"Name": TOOL_NAME, "Version": __version__,
                        "Date": derivatives_now()},  # honours SOURCE_DATE_EPOCH: reruns write the same bytes
    }


def write_config(cfg: Mapping[str, Any], path: str | Path) -> Path:
    """Write ``cfg`` atomically (never a half-written config) and return the path."""
    missing = [k for k in ("TYPE", "DATASETS_PATH", *SPLITS) if k not in cfg]
    if missing:
        raise InputError(f"config lacks {', '.join(missing)}", path, "build it with build_config()")
    path = Path(path)
    atomic_write_json(path, dict(cfg))
    return path


# ====================================================================== CLI
def get_parser() -> argparse.ArgumentParser:
    """The command line; the legacy ``--txt ... --type ... --split-*`` still parses."""
    doc = __doc__.split("\n\n", 1)
    p = cli.build_parser("init_data_config", doc[0], epilog=(
        "examples:\n"
        "  find ~+ -type f -name '*_seg.nii.gz' | grep -v CT | sort > train_sacrum.txt\n"
        "  python -m totalseg_bids.init_data_config --txt train_sacrum.txt --type LABEL "
        "--split-validation 0.1 --split-test 0.1\n"
        "  python -m totalseg_bids.init_data_config --bids-dir data/ds1 data/ds2 --label-dir reg-labels "
        "--label-suffix _label-sacrum_seg --contrasts T1w T2w --type LABEL --stratify dataset -o sacrum.json\n"
        "  (datalad/git-annex files are symlinks, which 'find -type f' skips: use\n"
        "   find ~+ -name '*_seg.nii.gz' \\( -type f -o -type l \\) ..., or --bids-dir)\n\n"
        + doc[1].split("Decisions (also in ``--help``):\n\n", 1)[-1].replace("``", "'")))
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--txt", type=Path, help="text file listing one label (or image) path per line")
    flags.add_bids_dir(src, dest="bids_dir", nargs="+", help="BIDS dataset folder(s) to query")
    p.add_argument("--label-dir", metavar="NAME",
                   help="derivatives folder holding the labels (with --txt: keep only the listed labels there)")
    p.add_argument("--label", metavar="NAME", help="keep only labels named label-NAME (e.g. sacrum)")
    p.add_argument("--allow-several-labels", action="store_true",
                   help="keep several labels of one image as separate cases (default: an error naming them)")
    p.add_argument("--label-suffix", metavar="SUFFIX",
                   help="end of the label file names, e.g. _label-sacrum_seg or _label-sacrum_mask")
    p.add_argument("--contrasts", nargs="+", metavar="SUFFIX",
                   help="image suffixes to keep with --bids-dir, e.g. T1w T2w (default: all)")
    p.add_argument("--type", required=True, choices=TYPES, type=str.upper, help="the listed files are LABEL or IMAGE")
    p.add_argument("--split-validation", type=float, default=0.1, help="validation ratio (default 0.1)")
    p.add_argument("--split-test", type=float, default=0.1, help="testing ratio (default 0.1)")
    p.add_argument("--seed", type=int, default=42, help="random seed of the split (default 42)")
    p.add_argument("--split-by", choices=SPLIT_BY, default="subject",
                   help="keep each subject's files together (default) or split files one by one")
    p.add_argument("--stratify", choices=STRATIFY, default=None,
                   help="split each dataset in the ratios on its own")
    flags.add_out(p, dest="output", metavar="OUT.json",
                   help="config to write (default with --txt: the list path with .json)")
    p.add_argument("--check-geometry", nargs="?", const="error", choices=GEOMETRY_MODES, default=None,
                   help="check each label is on its image's grid, binary (_seg/_mask) and not empty; "
                        "error (default when given) or warn")
    p.add_argument("--datasets-path", type=Path, metavar="DIR",
                   help="DATASETS_PATH to write (default: the common parent folder of the datasets)")
    p.add_argument("--qc-marks", type=Path, metavar="MARKS.tsv",
                   help="marks exported from the QC report: drop the labels marked --exclude")
    p.add_argument("--exclude", default="fail", metavar="MARKS",
                   help="comma-separated marks to drop with --qc-marks (default fail; e.g. fail,artifact)")
    p.add_argument("--require-pass", action="store_true", help="with --qc-marks keep only labels marked pass")
    p.add_argument("--datalad-get", action="store_true",
                   help="fetch annexed files without content instead of failing (or TOTALSEG_BIDS_DATALAD_GET=1)")
    return p


def _run(args: argparse.Namespace) -> int:
    opts = options_from_args(InitConfigOptions, args)  # usage errors before touching files
    if args.txt is not None:
        for flag in ("label_suffix", "contrasts"):
            if getattr(args, flag):
                raise UsageError(f"--{flag.replace('_', '-')} only applies to --bids-dir", None,
                                 "list exactly the files you want in the --txt file")
        paths = read_path_list(args.txt, datasets_path=args.datasets_path)
        output = args.output or default_output(_absolute(args.txt))
        if _absolute(output) == _absolute(args.txt):
            raise UsageError("the output would overwrite the --txt list", output, "choose another -o path")
        source = args.txt
    else:
        if args.output is None:
            raise UsageError("--bids-dir needs -o OUT.json (there is no list file to write it beside)", None,
                             "add e.g. -o train_sacrum.json")
        output = args.output
        paths = query_bids(args.bids_dir, args.type, args.label_dir, args.label_suffix, args.contrasts)
        source = args.bids_dir[0]
    if args.qc_marks is not None:
        paths, dropped = filter_labels(paths, read_marks(args.qc_marks), args.exclude.split(","), args.require_pass)
        for lab, why in dropped:
            log.warning("dropped %s (%s)", lab, why)
    cfg = build_config(paths, opts, source=source)
    write_config(cfg, output)
    counts = cfg["COUNTS"]
    log.info("%s: %s", output, ", ".join(f"{s} {counts[s]['files']} files / {counts[s]['subjects']} subjects"
                                          for s in SPLITS))
    cli.emit("init_data_config", [{"status": "written", "path": output, "type": cfg["TYPE"], "counts": counts}])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0, 1 bad input, 2 usage)."""
    return cli.run(get_parser(), argv, _run)
