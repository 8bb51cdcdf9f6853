"""Post-processing of predicted label maps: nnU-Net's own, or the largest connected component.

* ``nnunet``: the ``postprocessing.pkl`` that ``nnUNetv2_find_best_configuration``
  decided on the cross-validation (keep the largest foreground region and/or the
  largest component of some labels, only where it raised the Dice), applied with
  nnU-Net's own ``apply_postprocessing``. The pickle names nnU-Net's functions;
  it is read with an unpickler that loads nothing else.
* ``largest``: the largest connected component with cc3d (26-connectivity), per
  label (all labels, or the ones named) or on the union of labels. **Ties** (two
  components of the same voxel count): the one whose first voxel comes first in
  C-order raster scan of the array (lowest i, then j, then k) wins, since cc3d
  numbers components in that order and ``np.argmax`` returns the first maximum.

Either way :func:`removal_report` says how much of each label went, and flags a
label that lost more than :data:`REMOVAL_FLAG_FRACTION` of its volume: on a
bilateral structure, or several lesions, that is usually a true positive lost.
"""

from __future__ import annotations

import importlib
import io
import pickle
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from ..core.errors import InputError, UsageError
from ..core.nifti import nonzero_bbox
from .naming import POSTPROCESSING_PKL, crossval_folder

#: How the largest component is kept: per label, on the union of labels, or not at all.
KeepLargest = Literal["per-label", "union", "off"]
KEEP_LARGEST: tuple[str, ...] = get_args(KeepLargest)
#: cc3d's connectivities: 6, 18, 26 in 3D; 4, 8 in 2D.
Connectivity = Literal[4, 6, 8, 18, 26]


def keep_largest(seg: np.ndarray, mode: str = "per-label",
                 connectivity: Connectivity = 26) -> tuple[np.ndarray, dict]:
    """Keep the largest connected component, per label or on the union.

    Returns the cleaned map and ``{label: voxels removed}``. Ties: the
    component found first in a C-order raster scan wins (see module doc).

    >>> seg = np.zeros((1, 1, 7), np.uint8); seg[0, 0, [0, 1, 3, 5, 6]] = [1, 1, 1, 2, 2]
    >>> out, removed = keep_largest(seg)
    >>> out[0, 0].tolist(), removed
    ([1, 1, 0, 0, 0, 2, 2], {1: 1})
    >>> keep_largest(seg, "union")[0][0, 0].tolist()  # union: two components of 2 tie, the first wins
    [1, 1, 0, 0, 0, 0, 0]
    >>> tie = np.zeros((1, 1, 5), np.uint8); tie[0, 0, [0, 2]] = 1
    >>> keep_largest(tie)[0][0, 0].tolist()  # two single voxels: the first one wins
    [1, 0, 0, 0, 0]
    """
    if mode not in KEEP_LARGEST:
        raise UsageError(f"unknown --keep-largest {mode!r}", None, f"use one of {', '.join(KEEP_LARGEST)}")
    if mode == "off":
        return seg, {}
    box = nonzero_bbox(seg) if seg.ndim == 3 else None
    if box is None:
        return seg, {}
    # label only the labelled box: a prediction covers a small part of the field of
    # view, and raster order inside the box keeps the tie rule
    window = tuple(slice(int(a), int(b) + 1) for a, b in zip(*box))
    kept, removed = _keep_largest_in(np.ascontiguousarray(seg[window]), mode, connectivity)
    out = np.zeros_like(seg)
    out[window] = kept
    return out, removed


def _keep_largest_in(seg: np.ndarray, mode: str, connectivity: Connectivity) -> tuple[np.ndarray, dict]:
    import cc3d

    source = seg if mode == "per-label" else (seg > 0).astype(np.uint8)
    comps, n = cc3d.connected_components(source, connectivity=connectivity, return_N=True)
    if n <= 1:
        return seg, {}
    flat = comps.ravel()
    sizes = np.bincount(flat, minlength=n + 1)
    comp_label = np.zeros(n + 1, dtype=np.int64)
    comp_label[flat] = source.ravel()  # every voxel of a component has its label
    keep = np.zeros(n + 1, dtype=bool)
    for value in np.unique(comp_label[1:]):
        ids = np.flatnonzero(comp_label == value)
        ids = ids[ids > 0]
        keep[ids[np.argmax(sizes[ids])]] = True  # first maximum = first in raster order
    mask = keep[comps]
    out = np.where(mask, seg, 0).astype(seg.dtype)
    removed_vals, removed_counts = np.unique(seg[(seg > 0) & ~mask], return_counts=True)
    return out, {int(v): int(c) for v, c in zip(removed_vals, removed_counts)}


#: A label that loses more than this share of its predicted voxels is flagged.
REMOVAL_FLAG_FRACTION = 0.10
#: What ``predict --postprocess`` may run: ``auto`` is nnU-Net's when find_best_configuration decided one.
PostProcess = Literal["auto", "nnunet", "largest", "none"]
POSTPROCESS: tuple[str, ...] = get_args(PostProcess)


def keep_largest_of(seg: np.ndarray, labels: Sequence[int] | None = None, mode: str = "per-label"
                    ) -> tuple[np.ndarray, dict[int, int]]:
    """:func:`keep_largest` restricted to ``labels`` (None: every label; ``union`` mode ignores it):
    the other labels keep every component.

    >>> seg = np.zeros((1, 1, 7), np.uint8); seg[0, 0, [0, 2, 4, 6]] = [1, 1, 2, 2]
    >>> out, removed = keep_largest_of(seg, [2])
    >>> out[0, 0].tolist(), removed
    ([1, 0, 1, 0, 2, 0, 0], {2: 1})
    """
    if labels is None or mode != "per-label":
        return keep_largest(seg, mode)
    chosen = np.isin(seg, np.asarray(list(labels), dtype=seg.dtype))
    kept, removed = keep_largest(np.where(chosen, seg, 0).astype(seg.dtype), mode)
    return np.where(chosen, kept, seg).astype(seg.dtype), removed


#: What a ``postprocessing.pkl`` may name besides nnU-Net's functions: containers and NumPy's
#: integer scalars (nnU-Net's label lists hold ``np.int64``).
_PICKLE_ALLOWED = {("builtins", "tuple"), ("builtins", "list"), ("builtins", "dict"), ("builtins", "set"),
                   ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar")}


class _NnunetOnly(pickle.Unpickler):
    """Loads nnU-Net's functions, containers and NumPy scalars, nothing else (a model zip may come from anywhere)."""

    def find_class(self, module: str, name: str) -> Any:
        if module.split(".")[0] == "nnunetv2" or (module, name) in _PICKLE_ALLOWED:
            return getattr(importlib.import_module(module), name)
        raise pickle.UnpicklingError(f"{module}.{name} is not one of nnU-Net's post-processing functions")


def load_nnunet_postprocessing(path: str | Path) -> tuple[list[Callable], list[dict]]:
    """The functions and keyword arguments of a ``postprocessing.pkl``."""
    path = Path(path)
    try:
        fns, kwargs = _NnunetOnly(io.BytesIO(path.read_bytes())).load()
    except FileNotFoundError:
        raise InputError("post-processing file not found", path,
                         "run train_nnunet on every fold (it runs nnUNetv2_find_best_configuration)") from None
    except (OSError, pickle.UnpicklingError, ValueError, TypeError, EOFError, ImportError, AttributeError) as exc:
        raise InputError(f"not nnU-Net's post-processing ({exc})", path,
                         "give the postprocessing.pkl that nnUNetv2_find_best_configuration wrote") from None
    return list(fns), [dict(k) for k in kwargs]


def apply_nnunet_postprocessing(seg: np.ndarray, fns: Sequence[Callable], kwargs: Sequence[dict]) -> np.ndarray:
    """nnU-Net's ``apply_postprocessing`` on one label map (any axis order: connectivity is symmetric)."""
    from nnunetv2.postprocessing.remove_connected_components import apply_postprocessing

    return np.asarray(apply_postprocessing(np.asarray(seg), list(fns), list(kwargs)), dtype=seg.dtype)


def describe_nnunet_postprocessing(fns: Sequence[Callable], kwargs: Sequence[dict]) -> list[str]:
    """nnU-Net's steps in words, for sidecars and logs (an empty list: nnU-Net decided on none).

    >>> def remove_all_but_largest_component_from_segmentation(): pass
    >>> describe_nnunet_postprocessing([remove_all_but_largest_component_from_segmentation],
    ...                                [{"labels_or_regions": [1, 2]}])
    ['remove_all_but_largest_component_from_segmentation(labels_or_regions=[1, 2])']
    """
    return [f"{getattr(fn, '__name__', str(fn))}({', '.join(f'{k}={v!r}' for k, v in kw.items())})"
            for fn, kw in zip(fns, kwargs)]


def find_postprocessing_file(model_folder: Path, folds: Sequence[str | int]) -> Path | None:
    """The ``postprocessing.pkl`` find_best_configuration wrote for this model: the one of exactly
    these folds' cross-validation, else of the widest cross-validation in the model folder; None
    when there is none. It decides from each fold's validation predictions, so it holds for any of
    the model's fold ensembles (nnU-Net applies it to the five-fold ensemble)."""
    exact = model_folder / crossval_folder(folds) / POSTPROCESSING_PKL
    if exact.is_file():
        return exact
    found = sorted(model_folder.glob(f"crossval_results_folds_*/{POSTPROCESSING_PKL}"),
                   key=lambda p: (-len(p.parent.name.split("_")), p.parent.name))
    return found[0] if found else None


def removal_report(before: np.ndarray, after: np.ndarray, classes: Mapping[int, str],
                   threshold: float = REMOVAL_FLAG_FRACTION) -> dict[str, Any]:
    """How much of each label post-processing removed: voxels, share of the label's predicted volume,
    and the labels above ``threshold`` (the flag).

    >>> b = np.array([1, 1, 1, 1, 2, 2]); a = np.array([1, 1, 1, 0, 2, 0])
    >>> removal_report(b, a, {1: "left", 2: "right"})  # doctest: +NORMALIZE_WHITESPACE
    {'RemovedVoxels': {'left': 1, 'right': 1}, 'RemovedFraction': {'left': 0.25, 'right': 0.5},
     'RemovedAboveThreshold': ['left', 'right'], 'Threshold': 0.1}
    """
    gone = (before != after) & (before > 0)
    values, counts = np.unique(before[gone], return_counts=True)
    totals = dict(zip(*np.unique(before[before > 0], return_counts=True)))
    voxels = {classes.get(int(v), str(int(v))): int(c) for v, c in zip(values, counts)}
    fraction = {classes.get(int(v), str(int(v))): round(int(c) / int(totals[v]), 4) for v, c in zip(values, counts)}
    return {"RemovedVoxels": voxels, "RemovedFraction": fraction,
            "RemovedAboveThreshold": sorted(k for k, f in fraction.items() if f > threshold), "Threshold": threshold}


@dataclass(frozen=True)
class Postprocessing:
    """One run's post-processing, resolved once: ``nnunet`` (nnU-Net's functions from ``source``),
    ``largest`` (the largest component of ``labels``, None: every label; ``mode`` ``union`` keeps
    the largest component of the union) or ``none``."""

    method: Literal["nnunet", "largest", "none"] = "none"
    labels: tuple[int, ...] | None = None
    mode: KeepLargest = "per-label"
    functions: tuple[Callable, ...] = ()
    kwargs: tuple[dict, ...] = ()
    source: Path | None = None
    threshold: float = REMOVAL_FLAG_FRACTION

    def apply(self, seg: np.ndarray) -> np.ndarray:
        """The post-processed label map (``seg`` itself when nothing runs)."""
        if self.method == "nnunet" and self.functions:
            return apply_nnunet_postprocessing(seg, self.functions, self.kwargs)
        if self.method == "largest":
            return keep_largest_of(seg, self.labels, self.mode)[0]
        return seg

    def describe(self, classes: Mapping[int, str]) -> dict[str, Any]:
        """What ran, for sidecars (``GeneratedBy``) and logs.

        >>> Postprocessing("largest", (1,)).describe({1: "sacrum"})["Description"]
        'largest connected component of sacrum (26-connectivity, cc3d)'
        """
        out: dict[str, Any] = {"Method": self.method}
        if self.method == "nnunet":
            steps = describe_nnunet_postprocessing(self.functions, self.kwargs)
            out.update(Description="nnU-Net's post-processing chosen by nnUNetv2_find_best_configuration: "
                                   + ("; ".join(steps) or "none (it improved no label)"),
                       Steps=steps, File=str(self.source) if self.source else None)
        elif self.method == "largest":
            names = "every label" if self.labels is None else ", ".join(classes.get(v, str(v)) for v in self.labels)
            scope = "the union of labels" if self.mode == "union" else names
            out.update(Description=f"largest connected component of {scope} (26-connectivity, cc3d)",
                       Labels=None if self.labels is None else [classes.get(v, str(v)) for v in self.labels],
                       Mode=self.mode)
        else:
            out["Description"] = "none"
        return out


def resolve_postprocessing(method: str, model_folder: Path, folds: Sequence[str], labels: Mapping[str, Any],
                           largest: Sequence[str] | None = None, mode: str = "per-label",
                           source: str | Path | None = None,
                           threshold: float = REMOVAL_FLAG_FRACTION) -> Postprocessing:
    """The :class:`Postprocessing` of a run: ``auto`` is nnU-Net's when find_best_configuration wrote a
    ``postprocessing.pkl`` for the model (:func:`find_postprocessing_file`), else none; ``largest``
    names labels by name or value (``labels``: the model's ``dataset.json`` labels)."""
    if method not in POSTPROCESS:
        raise UsageError(f"unknown --postprocess {method!r}", None, f"use one of {', '.join(POSTPROCESS)}")
    if method in ("auto", "nnunet"):
        pkl = Path(source) if source else find_postprocessing_file(model_folder, folds)
        if pkl is None and method == "nnunet":
            raise InputError("no postprocessing.pkl for this model (crossval_results_folds_*/)", model_folder,
                             "train every fold with python -m totalseg_bids.train_nnunet (it runs "
                             "nnUNetv2_find_best_configuration), or pass --postprocessing-file")
        if pkl is not None:
            fns, kwargs = load_nnunet_postprocessing(pkl)
            return Postprocessing("nnunet", functions=tuple(fns), kwargs=tuple(kwargs), source=pkl,
                                  threshold=threshold)
        return Postprocessing("none", threshold=threshold)
    if method == "largest":
        values = None if not largest else tuple(label_values(largest, labels))
        return Postprocessing("largest", values, mode, threshold=threshold)  # type: ignore[arg-type]
    return Postprocessing("none", threshold=threshold)


def label_values(names: Sequence[str], labels: Mapping[str, Any]) -> list[int]:
    """Label values from names or numbers, checked against a model's ``dataset.json`` labels.

    >>> label_values(["sacrum", "2"], {"background": 0, "sacrum": 1, "hip": 2})
    [1, 2]
    """
    by_name = {k: int(v) for k, v in labels.items() if k != "background" and not isinstance(v, (list, tuple))}
    out = []
    for name in names:
        value = int(name) if str(name).isdigit() else by_name.get(str(name))
        if value is None or value not in by_name.values():
            raise UsageError(f"--largest-component {name}: not a label of the model", None,
                             f"use one of {', '.join(by_name) or 'its labels'} (or their values)")
        out.append(value)
    return sorted(set(out))
