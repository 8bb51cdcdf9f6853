"""BIDS file names and paths: parse, build, and map images <-> derivatives.

Two derivative spellings are supported (docs/conventions.md section 2):

* ``neuropoly`` (default): the full source name, then derivative entities and
  a derivative suffix: ``sub-01_T2w_label-sacrum_seg.nii.gz``.
* ``bids``: validator-clean: the source entities, ``space-<source suffix>``
  (as fMRIPrep's ``space-T1w``), then ``label-<structure>_mask`` or
  ``desc-<name>_dseg`` (``seg-<name>`` when the image has a ``desc-``; the
  validator allows no ``label-`` on a dseg):
  ``sub-01_space-T2w_label-sacrum_mask.nii.gz``. On a mask only ``space-`` and
  ``label-`` belong to the label; ``desc-``/``res-`` describe the image it was
  computed on (``sub-01_desc-cropped_T2w`` -> ``sub-01_space-T2w_label-sacrum_desc-cropped_mask``).

Names are parsed entity by entity, never cut at the last ``_``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, cast, get_args

from .errors import InputError, UsageError
from .folders import DERIVATIVES

#: BIDS entity order: ``rules.entities`` of the BIDS schema (bidsschematools), as short
#: names; tests/e2e/test_bids_validity.py checks that it agrees with the installed schema.
ENTITY_ORDER = (
    "sub", "tpl", "ses", "cohort", "sample", "task", "tracksys", "acq", "nuc", "voi", "ce", "trc",
    "stain", "rec", "dir", "run", "mod", "echo", "flip", "inv", "mt", "part", "proc", "hemi",
    "space", "split", "recording", "chunk", "atlas", "seg", "scale", "res", "den", "label", "desc",
)
#: Entities that only derivatives carry; dropped when mapping a label to its image.
DERIVATIVE_ENTITIES = ("space", "seg", "res", "den", "label", "desc")
#: Entities that a BIDS-named label adds to its image's entities.
LABEL_ONLY_ENTITIES = ("space", "label")
#: Suffixes of label maps.
DERIVATIVE_SUFFIXES = ("seg", "dseg", "softseg", "probseg", "mask")
#: Image extensions, longest first.
EXTENSIONS = (".nii.gz", ".nii", ".json", ".tsv", ".bval", ".bvec")
#: Derivative file names (docs/conventions.md section 2): NeuroPoly's ``<image>_label-X_seg`` or BIDS'.
Naming = Literal["neuropoly", "bids"]
NAMINGS: tuple[str, ...] = get_args(Naming)
#: Suffixes that mark a CT image (docs/conventions.md section 1).
CT_SUFFIXES = ("CT", "ct")
#: Datatype folders that hold the images labels are made on.
IMAGE_DATATYPES = ("anat", "ct")
#: Label suffixes whose values must be 0/1: a {0, 2} ``_seg`` is a mislabelled mask, not a class 2.
BINARY_LABEL_SUFFIXES = ("seg", "mask")
#: Name of the raw dataset in a derivative's ``DatasetLinks`` and its BIDS URIs.
RAW_LINK = "raw"

_KEY_RE = re.compile(r"^[a-z]+$")
_VALUE_RE = re.compile(r"^[A-Za-z0-9+]+$")  # the schema's label format: alphanumeric and "+"
_SUFFIX_RE = re.compile(r"^[A-Za-z0-9]+$")


def split_extension(filename: str) -> tuple[str, str]:
    """Split off a known (possibly double) extension.

    >>> split_extension("sub-01_T2w.nii.gz")
    ('sub-01_T2w', '.nii.gz')
    >>> split_extension("sub-01_T2w_label-sacrum_seg.json")
    ('sub-01_T2w_label-sacrum_seg', '.json')
    """
    for ext in EXTENSIONS:
        if filename.endswith(ext):
            return filename[: -len(ext)], ext
    stem, dot, ext = filename.rpartition(".")
    return (stem, dot + ext) if dot else (filename, "")


def label_value(name: str) -> str:
    """Turn a structure name into a valid BIDS entity value.

    BIDS values are alphanumeric; TotalSegmentator class names have ``_``.

    >>> label_value("sacrum")
    'sacrum'
    >>> label_value("vertebrae_L5")
    'vertebraeL5'
    >>> label_value("hip_left")
    'hipLeft'
    """
    parts = [p for p in re.split(r"[^A-Za-z0-9]+", name) if p]
    if not parts:
        raise UsageError(f"structure name {name!r} has no letters or digits", None, "use a name such as 'sacrum'")
    return parts[0] + "".join(p[0].upper() + p[1:] for p in parts[1:])


@dataclass(frozen=True)
class BidsName:
    """A parsed BIDS file name.

    ``entities`` are the source image's entities in file order, ``suffix`` the
    source image's suffix (``T2w``, ``CT``). A derivative label adds
    ``deriv_entities`` and ``deriv_suffix``; ``naming`` says how it is spelled.

    >>> n = BidsName.parse("sub-01_ses-02_acq-sag_T2w_label-sacrum_seg.nii.gz")
    >>> n.subject, n.session, n.suffix, n.deriv_suffix, n.get("label")
    ('01', '02', 'T2w', 'seg', 'sacrum')
    >>> n.source().filename
    'sub-01_ses-02_acq-sag_T2w.nii.gz'
    >>> b = BidsName.parse("sub-01_run-1_space-T2w_label-sacrum_mask.nii.gz")
    >>> b.naming, b.suffix, b.source().filename
    ('bids', 'T2w', 'sub-01_run-1_T2w.nii.gz')
    """

    entities: tuple[tuple[str, str], ...]
    suffix: str | None
    extension: str = ".nii.gz"
    deriv_entities: tuple[tuple[str, str], ...] = ()
    deriv_suffix: str | None = None
    naming: str = "neuropoly"

    # ------------------------------------------------------------------ parsing
    @classmethod
    def parse(cls, filename: str | Path) -> BidsName:
        """Parse a file name (a path is reduced to its name); raise InputError if not BIDS."""
        name = filename if isinstance(filename, str) and "/" not in filename else Path(filename).name
        stem, ext = split_extension(name)
        tokens = stem.split("_")
        if not tokens or not tokens[0].startswith("sub-"):
            raise InputError("not a BIDS file name (must start with 'sub-<label>_')", filename,
                             "rename it as sub-<label>[_ses-<label>]..._<suffix>.nii.gz")
        before: list[tuple[str, str]] = []
        after: list[tuple[str, str]] = []
        suffixes: list[str] = []
        for token in tokens:
            if "-" in token:
                key, _, value = token.partition("-")
                if not _KEY_RE.match(key) or not _VALUE_RE.match(value):
                    raise InputError(f"invalid BIDS entity {token!r} (key-value, alphanumeric value)",
                                     filename, "fix the file name")
                if suffixes and len(suffixes) == 2:
                    raise InputError(f"entity {token!r} after the final suffix", filename, "fix the file name")
                (after if suffixes else before).append((key, value))
            else:
                if not token or not _SUFFIX_RE.match(token):
                    raise InputError(f"invalid name part {token!r}", filename, "fix the file name")
                suffixes.append(token)
                if len(suffixes) > 2:
                    raise InputError("more than two suffixes", filename, "fix the file name")
        if not suffixes:
            raise InputError("no suffix (e.g. _T2w, _CT)", filename, "fix the file name")
        if tokens[-1] != suffixes[-1]:
            raise InputError("name does not end with a suffix", filename, "fix the file name")
        keys = [k for k, _ in before + after]
        if len(set(keys)) != len(keys):
            raise InputError("repeated entity", filename, "fix the file name")
        if len(suffixes) == 2:
            if suffixes[1] not in DERIVATIVE_SUFFIXES:
                raise InputError(f"unknown derivative suffix {suffixes[1]!r} "
                                 f"(expected one of {', '.join(DERIVATIVE_SUFFIXES)})",
                                 filename, "fix the file name")
            return cls(tuple(before), suffixes[0], ext, tuple(after), suffixes[1], "neuropoly")
        suffix = suffixes[0]
        if suffix in DERIVATIVE_SUFFIXES:
            # BIDS-style derivative: the source suffix is carried by space-<suffix>.
            ents = dict(before)
            source_suffix = ents.get("space")
            keys = [k for k, _ in before]
            own = LABEL_ONLY_ENTITIES + ((("seg",) if "seg" in keys else ("desc",)) if suffix == "dseg" else ())
            src = tuple((k, v) for k, v in before if k not in own)
            der = tuple((k, v) for k, v in before if k in own and k != "space")
            return cls(src, source_suffix, ext, der, suffix, "bids")
        return cls(tuple(before), suffix, ext)

    @classmethod
    def try_parse(cls, filename: str | Path) -> BidsName | None:
        """Like :meth:`parse` but return None for names that are not BIDS."""
        try:
            return cls.parse(filename)
        except InputError:
            return None

    # --------------------------------------------------------------- properties
    @property
    def entity_dict(self) -> dict[str, str]:
        return dict(self.entities) | dict(self.deriv_entities)

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.entity_dict.get(key, default)

    @property
    def subject(self) -> str:
        return dict(self.entities)["sub"]

    @property
    def session(self) -> str | None:
        return dict(self.entities).get("ses")

    @property
    def is_derivative(self) -> bool:
        return self.deriv_suffix is not None

    @property
    def stem(self) -> str:
        return split_extension(self.filename)[0]

    # ----------------------------------------------------------------- building
    @property
    def filename(self) -> str:
        ents = lambda pairs: [f"{k}-{v}" for k, v in pairs]  # noqa: E731
        if not self.is_derivative:
            return "_".join(ents(self.entities) + [cast(str, self.suffix)]) + self.extension
        if self.naming == "neuropoly":
            parts = [*ents(self.entities), cast(str, self.suffix), *ents(self.deriv_entities),
                     cast(str, self.deriv_suffix)]
        else:
            der = list(self.deriv_entities)
            if self.suffix:
                der = [("space", self.suffix)] + [(k, v) for k, v in der if k != "space"]
            parts = [format_entities(list(self.entities) + der), cast(str, self.deriv_suffix)]
        return "_".join(parts) + self.extension

    def source(self) -> BidsName:
        """The image this derivative was computed on (self if not a derivative)."""
        if not self.is_derivative:
            return self
        if not self.suffix:
            raise InputError("cannot tell the source image (no source suffix or space- entity)",
                             self.filename, "name the label <image stem>_label-<name>_seg.nii.gz")
        return BidsName(self.entities, self.suffix, ".nii.gz" if self.extension != ".json" else self.extension)

    def raw(self) -> BidsName:
        """The raw image: like :meth:`source` but also drops derivative entities
        that sit before the suffix (``desc-cropped``, ``res-2``)."""
        src = self.source()
        return replace(src, entities=tuple((k, v) for k, v in src.entities if k not in DERIVATIVE_ENTITIES))

    def with_entities(self, **entities: str | None) -> BidsName:
        """Set (or with None remove) source entities, keeping BIDS order."""
        ents = dict(self.entities)
        for key, value in entities.items():
            if value is None:
                ents.pop(key, None)
            else:
                ents[key] = value
        ordered = sorted(ents.items(), key=lambda kv: ENTITY_ORDER.index(kv[0]) if kv[0] in ENTITY_ORDER else 99)
        return replace(self, entities=tuple(ordered))

    def derivative(self, label: str | None = None, kind: str = "seg", naming: str = "neuropoly",
                   desc: str | None = None, extension: str = ".nii.gz") -> BidsName:
        """The name of a label map computed on this image.

        ``kind`` is ``seg`` (binary), ``dseg`` (several classes), ``softseg`` or
        ``probseg``. With ``naming='bids'``, ``seg`` is spelled ``mask`` and
        ``softseg`` ``probseg``, and a ``dseg`` takes its name as ``desc-``.

        >>> img = BidsName.parse("sub-01_ses-1_T2w.nii.gz")
        >>> img.derivative("sacrum").filename
        'sub-01_ses-1_T2w_label-sacrum_seg.nii.gz'
        >>> img.derivative("vertebrae_L5", naming="bids").filename
        'sub-01_ses-1_space-T2w_label-vertebraeL5_mask.nii.gz'
        >>> img.derivative("pelvis", kind="dseg", naming="bids").filename
        'sub-01_ses-1_space-T2w_desc-pelvis_dseg.nii.gz'
        >>> crop = BidsName.parse("sub-01_desc-cropped_T2w.nii.gz").derivative("sacrum", naming="bids")
        >>> crop.filename, BidsName.parse(crop.filename).source().filename
        ('sub-01_space-T2w_label-sacrum_desc-cropped_mask.nii.gz', 'sub-01_desc-cropped_T2w.nii.gz')
        >>> cropseg = BidsName.parse("sub-01_desc-cropped_T2w.nii.gz").derivative("pelvis", "dseg", naming="bids")
        >>> cropseg.filename, BidsName.parse(cropseg.filename).source().filename
        ('sub-01_space-T2w_seg-pelvis_desc-cropped_dseg.nii.gz', 'sub-01_desc-cropped_T2w.nii.gz')
        >>> img.derivative("pelvis", kind="dseg").filename
        'sub-01_ses-1_T2w_label-pelvis_dseg.nii.gz'
        """
        if naming not in NAMINGS:
            raise UsageError(f"unknown naming {naming!r}", None, f"use one of {', '.join(NAMINGS)}")
        if kind not in ("seg", "dseg", "softseg", "probseg"):
            raise UsageError(f"unknown label kind {kind!r}", None, "use seg, dseg, softseg or probseg")
        src = self.source()
        der: list[tuple[str, str]] = []
        if naming == "neuropoly":
            if label:
                der.append(("label", label_value(label)))
            if desc:
                der.append(("desc", label_value(desc)))
            return BidsName(src.entities, src.suffix, extension, tuple(der), kind, "neuropoly")
        if desc:
            raise UsageError("desc- cannot name a label in BIDS naming (it belongs to the image)", None,
                             "pass the structure as the label name")
        suffix = {"seg": "mask", "softseg": "probseg"}.get(kind, kind)
        if suffix == "dseg":
            if label:  # desc-<name>, or seg-<name> when the image's own desc- must stay
                der.append(("seg" if dict(src.entities).get("desc") else "desc", label_value(label)))
        elif label:
            der.append(("label", label_value(label)))
        return BidsName(src.entities, src.suffix, extension, tuple(der), suffix, "bids")

    def sidecar(self) -> BidsName:
        """The JSON sidecar's name."""
        return replace(self, extension=".json")


# ------------------------------------------------------------------ what a name says
def is_ct_suffix(suffix: str | None) -> bool:
    """True for the CT suffixes of :data:`CT_SUFFIXES`.

    >>> is_ct_suffix("CT"), is_ct_suffix("ct"), is_ct_suffix("T2w"), is_ct_suffix(None)
    (True, True, False, False)
    """
    return suffix in CT_SUFFIXES


def is_ct_name(path: str | Path | None) -> bool:
    """True when a file name ends in a CT suffix (``_CT`` / ``_ct``), whatever else it is.

    >>> is_ct_name("sub-01_ses-1_CT.nii.gz"), is_ct_name("sub-01_ct.nii")
    (True, True)
    >>> is_ct_name("sub-01_T2w.nii.gz"), is_ct_name("sub-01_acq-ct_T1w.nii.gz"), is_ct_name(None)
    (False, False, False)
    """
    if path is None:
        return False
    stem = re.sub(r"\.nii(\.gz)?$", "", Path(path).name)
    return re.search(r"(^|_)(" + "|".join(CT_SUFFIXES) + r")$", stem) is not None


def is_binary_label(path: str | Path) -> bool:
    """True for a ``_seg`` / ``_mask`` file name, whose values must be 0/1.

    >>> is_binary_label("sub-01_T2w_label-sacrum_seg.nii.gz"), is_binary_label("sub-01_T2w_dseg.nii.gz")
    (True, False)
    >>> is_binary_label("notes.txt")
    False
    """
    name = BidsName.try_parse(Path(path).name)
    return name is not None and name.deriv_suffix in BINARY_LABEL_SUFFIXES


# ------------------------------------------------------------------------ paths
def subject_dir(name: BidsName, datatype: str = "anat") -> Path:
    """``sub-XX[/ses-YY]/<datatype>`` for a name.

    >>> str(subject_dir(BidsName.parse("sub-01_ses-2_T1w.nii.gz")))
    'sub-01/ses-2/anat'
    """
    parts = [f"sub-{name.subject}"]
    if name.session:
        parts.append(f"ses-{name.session}")
    return Path(*parts, datatype)


def dataset_root_of(path: str | Path) -> Path:
    """The dataset folder holding ``path``: the parent of its ``sub-<label>`` folder.

    For a file of a derivative dataset this is the derivative folder itself.

    >>> str(dataset_root_of("/data/ds1/sub-01/ses-1/anat/sub-01_ses-1_T2w.nii.gz"))
    '/data/ds1'
    >>> str(dataset_root_of("/data/ds1/derivatives/labels/sub-01/anat/x_seg.nii.gz"))
    '/data/ds1/derivatives/labels'
    """
    path = Path(path)
    for parent in path.parents:
        if parent.name.startswith("sub-"):
            return parent.parent
    raise InputError("not inside a BIDS subject folder (sub-<label>/)", path, "give a path inside a BIDS dataset")


def raw_root_of(path: str | Path) -> Path:
    """The raw dataset for any file, stripping ``derivatives/<name>`` pairs.

    >>> str(raw_root_of("/data/ds1/derivatives/labels/sub-01/anat/x_seg.nii.gz"))
    '/data/ds1'
    """
    root = dataset_root_of(path)
    while root.parent.name == DERIVATIVES:
        root = root.parent.parent
    return root


def derivative_path(image: str | Path, derivative_root: str | Path, label: str | None,
                    kind: str = "seg", naming: str = "neuropoly", desc: str | None = None) -> Path:
    """Where the label ``label`` of ``image`` goes inside ``derivative_root``.

    >>> str(derivative_path("/d/sub-01/ct/sub-01_CT.nii.gz", "/d/derivatives/labels", "sacrum"))
    '/d/derivatives/labels/sub-01/anat/sub-01_CT_label-sacrum_seg.nii.gz'
    """
    name = BidsName.parse(image).derivative(label, kind=kind, naming=naming, desc=desc)
    return Path(derivative_root) / subject_dir(name) / name.filename


def sidecar_path(path: str | Path) -> Path:
    """The JSON sidecar next to a NIfTI file.

    >>> str(sidecar_path("/d/sub-01_T2w_label-sacrum_seg.nii.gz"))
    '/d/sub-01_T2w_label-sacrum_seg.json'
    """
    path = Path(path)
    return path.with_name(split_extension(path.name)[0] + ".json")


def dseg_tsv_path(path: str | Path) -> Path:
    """The ``.tsv`` lookup table (index, name) beside a label map.

    >>> str(dseg_tsv_path("/d/sub-01_T2w_dseg.nii.gz"))
    '/d/sub-01_T2w_dseg.tsv'
    """
    path = Path(path)
    return path.with_name(split_extension(path.name)[0] + ".tsv")


def dataset_path(path: str | Path) -> str:
    """``<dataset>/<path inside it>`` for messages: several datasets have a ``sub-03``,
    so a bare file name does not say which file is meant.

    The dataset is the raw BIDS folder (a derivative keeps its
    ``derivatives/<name>`` part); a path outside any BIDS dataset is shown whole.

    >>> dataset_path("/data/ds1/sub-03/anat/sub-03_T1w.nii.gz")
    'ds1/sub-03/anat/sub-03_T1w.nii.gz'
    >>> dataset_path("/data/ds2/derivatives/labels/sub-03/anat/sub-03_T1w_label-sacrum_seg.nii.gz")
    'ds2/derivatives/labels/sub-03/anat/sub-03_T1w_label-sacrum_seg.nii.gz'
    >>> dataset_path("/tmp/image.nii.gz")
    '/tmp/image.nii.gz'
    """
    path = Path(path)
    try:
        root = raw_root_of(path)
    except InputError:
        return str(path)
    return (Path(root.name) / path.relative_to(root)).as_posix()


def image_candidates(label: str | Path, datatypes: Iterable[str] = IMAGE_DATATYPES) -> list[Path]:
    """Paths where the image of a label may be, most likely first.

    Order: beside the label in its own dataset (derived images such as crops),
    then in the raw dataset, in the label's datatype folder and the others.

    >>> [str(p) for p in image_candidates("/d/derivatives/labels/sub-01/anat/sub-01_T2w_label-sacrum_seg.nii.gz")][:2]
    ['/d/sub-01/anat/sub-01_T2w.nii.gz', '/d/sub-01/ct/sub-01_T2w.nii.gz']
    """
    label = Path(label)
    name = BidsName.parse(label)
    if not name.is_derivative:
        raise InputError("not a label file name (no _seg/_dseg/_mask/... suffix)", label,
                         "name labels <image stem>_label-<name>_seg.nii.gz")
    own_root = dataset_root_of(label)
    raw_root = raw_root_of(label)
    source, raw = name.source(), name.raw()
    out: list[Path] = []
    datatypes = list(dict.fromkeys([label.parent.name, *datatypes]))
    if own_root != raw_root:
        out += [own_root / subject_dir(source, dt) / source.filename for dt in datatypes
                if source.entities != raw.entities]
    for candidate in (source, raw):
        out += [raw_root / subject_dir(candidate, dt) / candidate.filename for dt in datatypes]
    return list(dict.fromkeys(out))


def image_for_label(label: str | Path, datatypes: Iterable[str] = IMAGE_DATATYPES) -> Path:
    """The existing image of a label; InputError naming where it was looked for."""
    candidates = image_candidates(label, datatypes)
    for cand in candidates:
        if cand.exists() or cand.is_symlink():
            return cand
    raise InputError(f"no image for this label (looked for {candidates[0]})", label,
                     "check the label name matches its image, or add the image")


def bids_uri(path: str | Path, root: str | Path | None = None) -> str:
    """``bids:raw:<path relative to the raw dataset>``.

    ``bids::`` would mean the derivative folder itself; ``raw`` is the name that
    every derivative's ``DatasetLinks`` gives the raw dataset (docs/conventions.md).

    >>> bids_uri("/d/sub-01/anat/sub-01_T2w.nii.gz")
    'bids:raw:sub-01/anat/sub-01_T2w.nii.gz'
    >>> bids_uri("/d/derivatives/labels/sub-01/anat/x_seg.nii.gz")
    'bids:raw:derivatives/labels/sub-01/anat/x_seg.nii.gz'
    """
    path = Path(path)
    root = Path(root) if root is not None else raw_root_of(path)
    # the folders may be symlinks, the file itself is not followed: an annexed file (datalad) is a
    # symlink into .git/annex/objects, and its URI is where the dataset shows it
    for candidate, base in ((Path(os.path.abspath(path)), Path(os.path.abspath(root))),
                            (path.parent.resolve(strict=False) / path.name, root.resolve(strict=False))):
        try:
            return f"bids:{RAW_LINK}:{candidate.relative_to(base).as_posix()}"
        except ValueError:
            continue
    return str(path)


def format_entities(entities: Mapping[str, str] | Iterable[tuple[str, str]]) -> str:
    """``sub-01_ses-2`` from a mapping or ``(key, value)`` pairs, in BIDS entity order
    (unknown keys last, in their given order).

    >>> format_entities({"ses": "2", "sub": "01"})
    'sub-01_ses-2'
    """
    items = entities.items() if isinstance(entities, Mapping) else entities
    ordered = sorted(items, key=lambda kv: ENTITY_ORDER.index(kv[0]) if kv[0] in ENTITY_ORDER else 99)
    return "_".join(f"{k}-{v}" for k, v in ordered)
