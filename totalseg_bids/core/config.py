"""Reading train/validation/test data configs (docs/conventions.md section 4).

The format is the one totalspineseg / disc-labeling-hourglass users already
have: ``TYPE``, ``CONTRASTS``, ``DATASETS_PATH`` and ``TRAINING`` /
``VALIDATION`` / ``TESTING`` lists. Entries are paths relative to
``DATASETS_PATH`` (absolute paths are accepted too), or objects
``{"IMAGE": "..." | ["chan0", ...], "LABEL": "..."}`` for multi-channel cases.
``DATASETS_PATH`` can be overridden (``--datasets-path`` or the
``TOTALSEG_BIDS_DATASETS_PATH`` environment variable) so a shipped config works
on any machine. Extra keys are kept.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from ..resources import shipped_config, shipped_config_names
from .bids import BidsName, dataset_path, image_for_label, raw_root_of
from .datalad import is_annex_pointer
from .errors import AnnexContentMissingError, InputError, MissingFileError, UsageError

log = logging.getLogger(__name__)

#: The splits of a data config, in order.
Split = Literal["TRAINING", "VALIDATION", "TESTING"]
SPLITS: tuple[str, ...] = get_args(Split)
#: Folder names of the splits in exported training sets (MMSegmentation's train/val/test).
SPLIT_NAMES = {"TRAINING": "train", "VALIDATION": "val", "TESTING": "test"}
#: What a config's entries are: labels (each paired with its image) or images.
ConfigType = Literal["LABEL", "IMAGE"]
TYPES: tuple[str, ...] = get_args(ConfigType)
DATASETS_PATH_ENV = "TOTALSEG_BIDS_DATASETS_PATH"

#: Legacy CONTRASTS codes: suffix set -> code.
_LEGACY_CONTRASTS = {
    frozenset({"T1w"}): "t1",
    frozenset({"T2w"}): "t2",
    frozenset({"T2star"}): "t2s",
    frozenset({"T1w", "T2w"}): "t1_t2",
    frozenset({"PSIR"}): "psir",
    frozenset({"STIR"}): "stir",
    frozenset({"PSIR", "STIR"}): "psir_stir",
    frozenset({"T1w", "T2w", "PSIR", "STIR"}): "t1_t2_psir_stir",
}


def contrasts_code(suffixes: Iterable[str]) -> str:
    """The ``CONTRASTS`` value for a set of image suffixes; never an error.

    >>> contrasts_code(["T2w", "T1w", "T2w"])
    't1_t2'
    >>> contrasts_code(["CT", "T2w"])
    'ct_t2w'
    >>> contrasts_code([])
    ''
    """
    unique = frozenset(s for s in suffixes if s)
    if unique in _LEGACY_CONTRASTS:
        return _LEGACY_CONTRASTS[unique]
    return "_".join(sorted(s.lower() for s in unique))


@dataclass
class Case:
    """One config entry resolved to files: image(s) (one per channel) and label."""

    split: str
    images: tuple[Path, ...]
    label: Path | None
    entry: Any = None

    @property
    def image(self) -> Path:
        return self.images[0]

    @property
    def name(self) -> BidsName:
        """The parsed name of the first image."""
        return BidsName.parse(self.images[0])

    @property
    def subject(self) -> str:
        return self.name.subject


@dataclass
class DataConfig:
    """A parsed data config. ``splits`` keeps the raw entries; ``extra`` other keys."""

    type: str
    datasets_path: Path
    splits: dict[str, list[Any]]
    contrasts: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def resolve(self, entry: str | os.PathLike) -> Path:
        """An entry path made absolute against ``DATASETS_PATH``.

        A relative entry that climbs out of ``DATASETS_PATH`` (``../ds/...``)
        is refused: it would silently read another tree than the one named.
        """
        p = Path(entry)
        if p.is_absolute():
            return p
        if ".." in p.parts:
            inside = os.path.normpath(self.datasets_path / p)
            if os.path.relpath(inside, os.path.normpath(self.datasets_path)).startswith(".."):
                raise InputError(f"entry {entry} points outside DATASETS_PATH ({self.datasets_path})", self.path,
                                 "write entries relative to DATASETS_PATH or set DATASETS_PATH to their parent")
        return self.datasets_path / p

    def cases(self, splits: Sequence[str] | None = None, check_exists: bool = True) -> list[Case]:
        """Resolve entries to :class:`Case` objects, pairing labels with images.

        Every problem (missing label, missing image, annexed content absent)
        is gathered and reported in one InputError (an AnnexContentMissingError
        when every problem is absent annexed content).
        """
        wanted = [s.upper() for s in (splits or SPLITS)]
        for s in wanted:
            if s not in SPLITS:
                raise UsageError(f"unknown split {s!r}", self.path, f"use one of {', '.join(SPLITS)}")
        cases: list[Case] = []
        problems: list[InputError] = []
        for split in wanted:
            for entry in self.splits.get(split, []) or []:
                try:
                    cases.append(self._case(split, entry, check_exists))
                except InputError as exc:
                    problems.append(exc)
        if problems:
            annexed = [exc.path for exc in problems if isinstance(exc, AnnexContentMissingError)]
            fix = (f"run `datalad get` on the listed files (e.g. datalad get {annexed[0]}) or pass --datalad-get"
                   if annexed
                   else "fix the paths in the config or pass --datasets-path")
            shown = "; ".join(f"{Path(exc.path or '')}: {exc.problem}" for exc in problems[:3])
            more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
            error = AnnexContentMissingError if len(annexed) == len(problems) else InputError
            raise error(f"{len(problems)} config entr{'y' if len(problems) == 1 else 'ies'} "
                        f"unusable: {shown}{more}", self.path, fix)
        return cases

    def _case(self, split: str, entry: Any, check_exists: bool) -> Case:
        if isinstance(entry, dict):
            raw_images = entry.get("IMAGE")
            if raw_images is None:
                raise InputError("object entry without IMAGE", self.path, "add an IMAGE key")
            raw_images = [raw_images] if isinstance(raw_images, str) else list(raw_images)
            images = tuple(self.resolve(i) for i in raw_images)
            label = self.resolve(entry["LABEL"]) if entry.get("LABEL") else None
        elif isinstance(entry, str):
            path = self.resolve(entry)
            if self.type == "LABEL":
                label = path
                if check_exists:
                    _check(label)
                images = (image_for_label(label),)
            else:
                images, label = (path,), None
        else:
            raise InputError(f"entry {entry!r} is neither a path nor an object", self.path,
                             "use a path string or {\"IMAGE\": ..., \"LABEL\": ...}")
        if check_exists:
            for p in (*images, *([label] if label else [])):
                _check(p)
        return Case(split, images, label, entry)


def _check(path: Path) -> None:
    if is_annex_pointer(path):
        raise AnnexContentMissingError("annexed file content is not present", path, f"run `datalad get {path}`")
    if not path.exists():
        raise MissingFileError("file not found", path, "check the path")


def load_config(path: str | Path, datasets_path: str | Path | None = None,
                require: Sequence[str] = ()) -> DataConfig:
    """Read a config JSON; ``datasets_path`` (or the environment) overrides ``DATASETS_PATH``.

    ``require`` lists the split keys the caller cannot do without (a training
    set builder needs ``TRAINING``; a QC of test predictions does not)."""
    path = Path(path)
    if not path.exists():
        path = shipped_config(path) or path
    if not path.exists():
        raise MissingFileError("config file not found", path,
                               f"check the path (shipped configs by name: {', '.join(shipped_config_names())})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read config ({exc})", path, "check the file") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON (line {exc.lineno}: {exc.msg})", path, "fix the JSON syntax") from None
    if not isinstance(data, dict):
        raise InputError("config must be a JSON object", path, "see docs/conventions.md section 4")
    ctype = str(data.get("TYPE", "")).upper()
    if ctype not in TYPES:
        raise InputError(f"TYPE must be LABEL or IMAGE, got {data.get('TYPE')!r}", path,
                         "set \"TYPE\": \"LABEL\" or \"IMAGE\"")
    override = datasets_path or os.environ.get(DATASETS_PATH_ENV)
    base = override or data.get("DATASETS_PATH")
    if not base:
        base = path.parent  # relative entries then resolve next to the config
    missing = [k for k in require if k not in data]
    if missing:
        raise InputError(f"config has no {' or '.join(missing)} list", path,
                         f"add \"{missing[0]}\": [...] (python -m totalseg_bids.init_data_config writes one)")
    splits = {}
    for key in SPLITS:
        value = data.get(key, [])
        if value is None:
            value = []
        if not isinstance(value, list):
            raise InputError(f"{key} must be a list", path, "fix the config")
        splits[key] = value
    extra = {k: v for k, v in data.items() if k not in (*SPLITS, "TYPE", "CONTRASTS", "DATASETS_PATH")}
    return DataConfig(ctype, Path(base).expanduser(), splits, str(data.get("CONTRASTS", "")), extra, path)


def _dataset_name(path: Path) -> str:
    try:
        return raw_root_of(path).name
    except InputError:
        return path.parent.name


def check_cases(cases: Sequence[Case], config: str | Path | None = None, strict_splits: bool = False) -> None:
    """Refuse what would silently corrupt a training set: an image listed twice,
    image(s) and label of different subjects/sessions, and a subject in TESTING
    and in another split (leakage into the evaluation). A subject in both
    TRAINING and VALIDATION (e.g. split by session) only warns, unless
    ``strict_splits`` (2D slices of one subject must never cross splits).
    Errors name ``config`` (the file to fix) when given.
    """
    seen: dict[tuple[str, ...], Case] = {}
    splits_of: dict[tuple[str, str], set[str]] = {}
    for c in cases:
        key = tuple(str(p.absolute()) for p in c.images)
        if key in seen:
            prev = seen[key]
            labels = " and ".join(str(x.label) for x in (prev, c) if x.label) or "no label"
            raise InputError(f"{dataset_path(c.image)} is listed twice ({prev.split} and {c.split};"
                             f" labels {labels})", config or c.image,
                             "list every image once (python -m totalseg_bids.init_data_config --label-dir "
                             "picks one label folder)")
        seen[key] = c
        first = BidsName.try_parse(c.image)
        if first is None:
            continue
        for other in (*c.images[1:], *([c.label] if c.label else [])):
            name = BidsName.try_parse(other)
            if name is not None and (name.subject, name.session) != (first.subject, first.session):
                ses = f"_ses-{name.session}" if name.session else ""
                raise InputError(f"{dataset_path(other)} (sub-{name.subject}{ses}) is paired with "
                                 f"{dataset_path(c.image)}", config or other,
                                 "pair every image with a label of the same subject and session")
        unit = (_dataset_name(c.image), first.subject)
        splits_of.setdefault(unit, set()).add(c.split)
    for (dataset, subject), splits in splits_of.items():
        if len(splits) < 2:
            continue
        problem = f"sub-{subject} of {dataset} is in {' and '.join(sorted(splits))}"
        if strict_splits or "TESTING" in splits:
            raise InputError(f"{problem} (leakage)", config, "keep each subject in one split "
                             "(python -m totalseg_bids.init_data_config splits by subject by default)")
        log.warning("%s: %s; validation figures will be optimistic", config or "config", problem)


# ---------------------------------------------------------------- rerun requests
def request_record(cases: Sequence[Case], options: dict[str, Any]) -> dict[str, Any]:
    """What an output was made from: the cases per split, the options and each
    input file's size and modification time. A rerun with an equal record has
    nothing to do; a different one is named by :func:`request_difference`."""
    files: dict[str, list[int]] = {}
    split_cases: dict[str, list[list[str]]] = {s: [] for s in SPLITS}
    for c in cases:
        paths = [str(p) for p in (*c.images, *([c.label] if c.label else []))]
        split_cases[c.split].append(paths)
        for p in paths:
            try:
                st = os.stat(p)
                files[p] = [st.st_size, st.st_mtime_ns]
            except OSError:
                files[p] = [-1, -1]
    return {"cases": split_cases, "options": {k: _plain(v) for k, v in sorted(options.items())}, "inputs": files}


def _plain(value: Any) -> Any:
    """JSON-comparable form of an option value (paths as strings, tuples as lists)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, os.PathLike):
        return str(value)
    return value


def request_difference(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """How ``new`` differs from ``old`` in a few words, or None when equal.

    >>> a = {"cases": {"TRAINING": [["x"]]}, "options": {"link": "symlink"}, "inputs": {"x": [1, 2]}}
    >>> request_difference(a, a) is None
    True
    >>> b = {"cases": {"TRAINING": [["x"], ["y"]]}, "options": {"link": "copy"}, "inputs": {"x": [1, 3]}}
    >>> request_difference(a, b)
    'option link symlink -> copy; TRAINING 1 case(s) added (e.g. y); 1 input file(s) changed (e.g. x)'
    """
    parts = []
    o_opt, n_opt = old.get("options", {}), new.get("options", {})
    for k in sorted(set(o_opt) | set(n_opt)):
        if o_opt.get(k) != n_opt.get(k):
            parts.append(f"option {k} {o_opt.get(k)} -> {n_opt.get(k)}")
    for split in SPLITS:
        o = {tuple(c) for c in old.get("cases", {}).get(split, [])}
        n = {tuple(c) for c in new.get("cases", {}).get(split, [])}
        if n - o:
            parts.append(f"{split} {len(n - o)} case(s) added (e.g. {Path(sorted(n - o)[0][-1]).name})")
        if o - n:
            parts.append(f"{split} {len(o - n)} case(s) removed (e.g. {Path(sorted(o - n)[0][-1]).name})")
    o_in, n_in = old.get("inputs", {}), new.get("inputs", {})
    changed = sorted(p for p in n_in if p in o_in and o_in[p] != n_in[p])
    if changed:
        parts.append(f"{len(changed)} input file(s) changed (e.g. {Path(changed[0]).name})")
    return "; ".join(parts) or None


def read_request(path: str | Path) -> dict[str, Any] | None:
    """A stored request record, or None when absent or unreadable (then the
    output's origin is unknown and only --overwrite replaces it)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
