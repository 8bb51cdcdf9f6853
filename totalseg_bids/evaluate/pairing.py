"""Which prediction goes with which reference.

Two ways, as users of the two worlds expect:

* **folders** (nnU-Net's ``evaluate_folder``): the files of two folders with the
  same name (extension aside, ``.nii.gz`` or ``.nii``; sub-folders by their relative
  path). Every reference needs its prediction and every prediction its
  reference: a missing case would bias the figures silently.
* **a data config** (``--config C --split TESTING``): each case of the split is an
  image; its reference is the config's label (``TYPE: LABEL``) or the label of that
  image in ``--ref``, and its prediction the label of that image in ``--pred`` with
  the same structure, matched by BIDS entities and whichever naming each folder uses.
  ``--pred``/``--ref`` are derivative folders, or a bare name for
  ``<dataset>/derivatives/NAME`` of each case's dataset (where ``predict
  --derivatives NAME`` writes), so one command covers a config spanning datasets.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ..core.atomic import TMP_PREFIX
from ..core.bids import BidsName, raw_root_of, split_extension
from ..core.config import Case, load_config
from ..core.errors import InputError, MissingFileError, UsageError

NIFTI_EXTENSIONS = (".nii.gz", ".nii")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pair:
    """One case: its id in the outputs, the prediction, the reference and (config mode) the image."""

    case: str
    pred: Path
    ref: Path
    image: Path | None = None


def _shown(items: list[str], n: int = 3) -> str:
    return ", ".join(items[:n]) + (f" (+{len(items) - n} more)" if len(items) > n else "")


def nifti_files(folder: Path) -> dict[str, Path]:
    """``{relative path without extension: file}`` of the NIfTI files under ``folder``
    (hidden files and folders and unfinished writes left out)."""
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part.startswith((".", TMP_PREFIX)) for part in rel.parts) or not path.name.endswith(NIFTI_EXTENSIONS):
            continue
        key = rel.with_name(split_extension(path.name)[0]).as_posix()
        if key in found:
            raise InputError(f"two files for case {key} ({found[key].name}, {path.name})", folder,
                             "keep one of them")
        found[key] = path
    return found


def _folder(path: str | Path, what: str, flag: str) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise MissingFileError(f"{what} folder not found", path, f"check {flag}")
    return path


def pair_folders(pred: str | Path, ref: str | Path, chill: bool = False) -> list[Pair]:
    """The cases of two folders paired by file name; one error when any file lacks its partner
    (``chill``: references without a prediction are left out, as nnU-Net's ``-chill``)."""
    pred, ref = _folder(pred, "prediction", "--pred"), _folder(ref, "reference", "--ref")
    preds, refs = nifti_files(pred), nifti_files(ref)
    if not refs:
        raise InputError("no NIfTI file (.nii.gz or .nii) in the reference folder", ref, "check --ref")
    missing, extra = sorted(refs.keys() - preds.keys()), sorted(preds.keys() - refs.keys())
    if missing and chill:
        log.warning("%d reference(s) without a prediction left out (--chill): %s", len(missing), _shown(missing))
        refs = {k: v for k, v in refs.items() if k in preds}
        if not refs:
            raise MissingFileError("no reference has a prediction of the same name", pred, "check --pred and --ref")
    elif missing:
        raise MissingFileError(f"{len(missing)} reference(s) without a prediction of the same name: "
                               f"{_shown(missing)}", pred, "predict them, or pass --chill to leave them out")
    if extra:
        raise InputError(f"{len(extra)} prediction(s) without a reference of the same name: {_shown(extra)}", ref,
                         "add their references, or leave them out of --pred")
    return [Pair(key, preds[key], refs[key]) for key in sorted(refs)]


# ------------------------------------------------------------------ config mode
def _source_key(name: BidsName) -> tuple[frozenset, str | None]:
    return frozenset(name.entities), name.suffix


def structure(name: BidsName) -> tuple[str, str | None]:
    """(kind, structure) of a label name whichever naming spells it: ``binary`` for
    ``_seg``/``_mask``, else the suffix; the structure from ``label-`` (``seg-``/``desc-`` of a dseg).

    >>> structure(BidsName.parse("sub-01_T2w_label-sacrum_seg.nii.gz"))
    ('binary', 'sacrum')
    >>> structure(BidsName.parse("sub-01_space-T2w_desc-pelvis_dseg.nii.gz"))
    ('dseg', 'pelvis')
    """
    kind = "binary" if name.deriv_suffix in ("seg", "mask") else str(name.deriv_suffix)
    own = dict(name.deriv_entities)
    return kind, own.get("label") or (own.get("seg") or own.get("desc") if kind == "dseg" else None)


class DerivativeIndex:
    """The labels of derivative folders by the image they belong to, each folder read once."""

    def __init__(self) -> None:
        self._roots: dict[Path, dict[tuple, list[tuple[BidsName, Path]]]] = {}

    def labels(self, root: Path, image: Path) -> list[tuple[BidsName, Path]]:
        """The labels in ``root`` computed on ``image``."""
        if root not in self._roots:
            table: dict[tuple, list[tuple[BidsName, Path]]] = {}
            for path in sorted(root.glob("sub-*/**/*")):
                name = BidsName.try_parse(path.name) if path.name.endswith(NIFTI_EXTENSIONS) else None
                if name is not None and name.is_derivative and name.suffix:
                    table.setdefault(_source_key(name), []).append((name, path))
            self._roots[root] = table
        return self._roots[root].get(_source_key(BidsName.parse(image)), [])


def derivative_root(spec: Path, image: Path) -> Path:
    """``spec`` when it is a folder, else ``<image's dataset>/derivatives/<spec>`` for a bare name."""
    if spec.is_dir():
        return spec
    if len(spec.parts) == 1:
        root = raw_root_of(image) / "derivatives" / spec.name
        if root.is_dir():
            return root
        raise MissingFileError(f"no derivatives/{spec.name} in the dataset of {image.name}", root,
                               "check the derivative name, or give a folder path")
    raise MissingFileError("derivative folder not found", spec, "give a derivative folder, or a bare NAME "
                           "for <dataset>/derivatives/NAME")


def _pick(index: DerivativeIndex, root: Path, image: Path, want: tuple[str, str | None], what: str,
          required: bool = True) -> Path | None:
    """The one label of ``image`` in ``root`` of the kind and structure ``want`` (any structure when
    None); None when there is none and it is not ``required``."""
    found = [p for n, p in index.labels(root, image)
             if structure(n) == want or (want[1] is None and structure(n)[0] == want[0])]
    if not found and not required:
        return None
    if len(found) != 1:
        names = f" ({', '.join(p.name for p in found)})" if found else ""
        raise InputError(f"{len(found) or 'no'} {what}(s) of {want[1] or want[0]} for {image.name} in {root}{names}",
                         image, "each image needs exactly one label of the structure in each folder")
    return found[0]


def _references(case: Case, ref: Path | None, index: DerivativeIndex) -> list[Path]:
    """The config's label; with ``ref``, the label of the same structure there (a LABEL config)
    or every label of the image there (an IMAGE config)."""
    label = case.label
    if ref is None:
        if label is None or not (label.exists() or label.is_symlink()):
            raise MissingFileError("reference label not found", label or case.image, "check the config entry")
        return [label]
    root = derivative_root(ref, case.image)
    if label is not None:
        found = _pick(index, root, case.image, structure(BidsName.parse(label)), "reference")
        return [found] if found is not None else []
    found = [p for _n, p in index.labels(root, case.image)]
    if not found:
        raise MissingFileError(f"no reference label for {case.image.name} in {root}", case.image, "check --ref")
    return found


def _case_pairs(case: Case, pred: Path, ref: Path | None, index: DerivativeIndex, chill: bool) -> list[Pair]:
    pairs = []
    for reference in _references(case, ref, index):
        want = structure(BidsName.parse(reference))
        prediction = _pick(index, derivative_root(pred, case.image), case.image, want, "prediction", not chill)
        if prediction is None:
            log.warning("%s: no prediction of %s; left out (--chill)", case.image.name, want[1] or want[0])
            continue
        case_id = f"{raw_root_of(case.image).name}/{split_extension(prediction.name)[0]}"
        pairs.append(Pair(case_id, prediction, reference, case.image))
    return pairs


def pair_config(config: str | Path, pred: str | Path, ref: str | Path | None = None, split: str = "TESTING",
                datasets_path: str | Path | None = None, chill: bool = False) -> list[Pair]:
    """The cases of one split of a data config, each reference with its prediction;
    one error naming the cases that cannot be paired (``chill``: cases without a prediction are
    left out with a warning)."""
    cfg = load_config(config, datasets_path)
    if ref is None and cfg.type != "LABEL":
        raise UsageError("an IMAGE config lists no reference labels", config,
                         "pass --ref (the reference derivative folder)")
    cases = cfg.cases([split], check_exists=False)
    if not cases:
        raise InputError(f"the {split.upper()} split is empty", config, "choose another --split")
    index, pairs, problems = DerivativeIndex(), [], []
    for case in cases:
        try:
            pairs += _case_pairs(case, Path(pred), Path(ref) if ref is not None else None, index, chill)
        except InputError as exc:
            name = Path(exc.path or "").name
            problems.append(exc.problem if name in exc.problem else f"{name}: {exc.problem}")
    if problems:
        raise MissingFileError(f"{len(problems)} of {len(cases)} {split.upper()} case(s) cannot be paired: "
                               f"{_shown(problems, 2)}", config,
                               "predict the missing cases (or check --pred/--ref and the config)")
    if not pairs:
        raise MissingFileError(f"no {split.upper()} case has a prediction", pred, "check --pred")
    return pairs
