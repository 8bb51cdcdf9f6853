"""The label map of a conversion: names and values, remaps, and which values a label may hold.

nnU-Net's rule: ``background`` is 0 and the values are consecutive; a remap turns
source values (TotalSegmentator's class ids) into those values.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.bids import BidsName
from ..core.config import Case
from ..core.errors import InputError, MissingFileError, UsageError


def parse_labels_json(data: Any) -> tuple[dict[str, int], dict[int, int] | None]:
    """Read a ``--labels-json`` map: ``{"background": 0, "sacrum": 1}`` (the values
    the labels hold) or ``{"labels": {...}, "remap": {"25": 1, "92": 1}}``
    (source value -> nnU-Net value). Values must be consecutive from 0.

    >>> parse_labels_json({"background": 0, "sacrum": 1})
    ({'background': 0, 'sacrum': 1}, None)
    >>> parse_labels_json({"labels": {"background": 0, "sacrum": 1}, "remap": {"25": 1}})
    ({'background': 0, 'sacrum': 1}, {25: 1})
    """
    if not isinstance(data, dict):
        raise InputError("labels JSON must be an object", None, 'e.g. {"background": 0, "sacrum": 1}')
    remap = None
    labels = data
    if isinstance(data.get("labels"), dict):
        labels = data["labels"]
        if data.get("remap") is not None:
            if not isinstance(data["remap"], dict):
                raise InputError("\"remap\" must be an object of source value -> label value", None,
                                 'e.g. "remap": {"25": 1}')
            try:
                remap = {int(k): int(v) for k, v in data["remap"].items()}
            except (TypeError, ValueError):
                raise InputError("\"remap\" keys and values must be integers", None,
                                 'e.g. "remap": {"25": 1}') from None
    try:
        out = {str(k): int(v) for k, v in labels.items()}
    except (TypeError, ValueError):
        raise InputError("label values must be integers (regions are not supported here)", None,
                         'e.g. {"background": 0, "sacrum": 1}') from None
    check_label_map(out)
    if remap is not None:
        bad = sorted(set(remap.values()) - set(out.values()))
        if bad:
            raise InputError(f"remap targets {bad} are not declared label values", None,
                             "map every source value to a value of \"labels\"")
    return out, remap


def check_label_map(labels: Mapping[str, int]) -> None:
    """nnU-Net's rule: ``background`` is 0 and values are consecutive.

    >>> check_label_map({"background": 0, "a": 2})
    Traceback (most recent call last):
    ...
    totalseg_bids.core.errors.InputError: label values [0, 2] are not consecutive from 0; number them 0, 1, 2, ...
    """
    values = sorted(labels.values())
    if labels.get("background") != 0:
        raise InputError("the label map needs \"background\": 0", None, 'add "background": 0')
    if len(set(values)) != len(values) or values != list(range(len(values))):
        raise InputError(f"label values {values} are not consecutive from 0", None, "number them 0, 1, 2, ...")


def labels_from_names(names: Sequence[str]) -> dict[str, int]:
    """``--labels sacrum hip`` -> ``{"background": 0, "sacrum": 1, "hip": 2}``.

    >>> labels_from_names(["sacrum"])
    {'background': 0, 'sacrum': 1}
    """
    if "background" in names:
        raise UsageError("--labels lists the foreground names only", None, "e.g. --labels sacrum")
    if len(set(names)) != len(names):
        raise UsageError("--labels has a repeated name", None, "give each structure once")
    return {"background": 0, **{n: i + 1 for i, n in enumerate(names)}}


def label_problem(present: Iterable[int], allowed: Iterable[int], remap: Mapping[int, int] | None) -> str | None:
    """Why the values of a label map are not acceptable, or None.

    >>> label_problem([0, 1], [0, 1], None) is None
    True
    >>> label_problem([0, 255], [0, 1], None)
    'unexpected label values [255] (expected [0, 1])'
    >>> label_problem([0, 25], [0, 1], {25: 1}) is None
    True
    """
    present = {int(v) for v in present}
    if remap is not None:
        unexpected = sorted(present - set(remap) - {0})
        expected = sorted({0} | set(remap))
    else:
        unexpected = sorted(present - {int(a) for a in allowed})
        expected = sorted(int(a) for a in allowed)
    if unexpected:
        return f"unexpected label values {unexpected[:10]} (expected {expected[:20]})"
    return None


def apply_remap(data: np.ndarray, remap: Mapping[int, int]) -> np.ndarray:
    """Map source label values to nnU-Net values with a lookup table (0 stays 0).

    >>> apply_remap(np.array([0, 25, 92]), {25: 1, 92: 1}).tolist()
    [0, 1, 1]
    """
    lut = np.zeros(max([int(data.max()) if data.size else 0, *remap]) + 1, dtype=np.uint16)
    for src, dst in remap.items():
        lut[src] = dst
    return lut[data.astype(np.int64)]


def _label_names_from_files(labels: Iterable[Path]) -> list[str]:
    """The one ``label-`` entity all labels share, else a generic ``foreground``."""
    names = {BidsName.parse(p).get("label") for p in labels if BidsName.try_parse(p)}
    names.discard(None)
    return sorted(names) if len(names) == 1 else ["foreground"]


def label_map(labels: Sequence[str] | None, labels_json: str | Path | dict | None,
              cases: Sequence[Case]) -> tuple[dict[str, int], dict[int, int] | None]:
    """The label map and remap from ``--labels-json``, ``--labels`` or the files' label- entity."""
    if labels_json is None:
        return labels_from_names(list(labels) if labels else
                                 _label_names_from_files(c.label for c in cases if c.label)), None
    if isinstance(labels_json, dict):
        data = labels_json
    else:
        try:
            data = json.loads(Path(labels_json).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise MissingFileError("labels JSON not found", labels_json, "check the path") from None
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read labels JSON ({exc})", labels_json, "fix the JSON") from None
    try:
        return parse_labels_json(data)
    except InputError as exc:
        raise InputError(exc.problem, labels_json if not isinstance(labels_json, dict) else None,
                         exc.fix) from None

