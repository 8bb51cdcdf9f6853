"""Class extraction and label sanity flags."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.bids import label_value
from ..core.errors import InputError
from ..core.nifti import touches_edge


def extract_class(data: np.ndarray, value: int, path: str | Path | None = None) -> np.ndarray:
    """The binary (uint8) mask of one class of a multi-class map.

    An absent value is an error (a silently empty label would poison training).

    >>> extract_class(np.array([0, 25, 27, 25]), 25).tolist()
    [0, 1, 0, 1]
    """
    mask = np.asarray(data) == int(value)
    if not mask.any():
        present = sorted(int(v) for v in np.unique(data) if v != 0)
        raise InputError(f"label value {int(value)} is absent from this map (present: {present[:12]})",
                         path, "pass a value (or name) the map contains, see its _dseg.tsv")
    return mask.astype(np.uint8)


def class_value(classes: dict[int, str], name: str, path: str | Path | None = None) -> int:
    """The index of class ``name`` in a ``_dseg.tsv`` table.

    Names match exactly or in their BIDS-entity spelling (``vertebraeL5`` for
    ``vertebrae_L5``), because the output name is spelled that way.

    >>> class_value({25: "sacrum", 27: "vertebrae_L5"}, "vertebraeL5")
    27
    """
    for index, cname in classes.items():
        if cname == name:
            return int(index)
    wanted = label_value(name)
    for index, cname in classes.items():
        if label_value(cname) == wanted:
            return int(index)
    raise InputError(f"class {name!r} is not in this lookup table (has: {', '.join(list(classes.values())[:12])})",
                     path, "pass a class name listed there, or --label-value")


def label_flags(mask: np.ndarray) -> dict[str, bool]:
    """Sidecar keys for suspicious transfers: empty, or cut by the MRI field of view.

    >>> label_flags(np.zeros((3, 3, 3)))
    {'EmptyLabel': True}
    >>> m = np.zeros((3, 3, 3)); m[0, 1, 1] = 1
    >>> label_flags(m)
    {'TouchesFieldOfViewEdge': True}
    """
    if not np.any(mask):
        return {"EmptyLabel": True}
    return {"TouchesFieldOfViewEdge": True} if touches_edge(mask) else {}
