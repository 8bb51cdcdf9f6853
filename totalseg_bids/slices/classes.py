"""Class values of the exported masks: renumbered 1..N when the config's labels are not
consecutive (TotalSegmentator ids such as 25, 27, 77), named, and tabled in ``classes.tsv`` (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def class_mapping(values: Sequence[int]) -> dict[int, int]:
    """Source label value -> exported index (identity when already 1..N).

    >>> class_mapping([1, 2]), class_mapping([25, 77, 27])
    ({1: 1, 2: 2}, {25: 1, 27: 2, 77: 3})
    """
    vals = sorted(int(v) for v in set(values) if int(v) != 0)
    return {v: i + 1 for i, v in enumerate(vals)}


def class_lut(mapping: Mapping[int, int]) -> np.ndarray:
    """A 256-entry lookup table applying ``mapping`` to a uint8 mask (unmapped values become 0).

    >>> class_lut({25: 1, 27: 2})[[0, 25, 27]].tolist()
    [0, 1, 2]
    """
    lut = np.zeros(256, np.uint8)
    for src, dst in mapping.items():
        lut[src] = dst
    return lut


def classes_tsv(mapping: Mapping[int, int], names: Mapping[int, str]) -> str:
    """``classes.tsv``: the exported ``index``, its ``name`` and the ``source_value`` in the labels.

    >>> classes_tsv({25: 1}, {25: "sacrum"}).splitlines()[1:]
    ['0\\tbackground\\t0', '1\\tsacrum\\t25']
    """
    rows = ["index\tname\tsource_value", "0\tbackground\t0"]
    rows += [f"{dst}\t{names[src]}\t{src}" for src, dst in mapping.items()]
    return "\n".join(rows) + "\n"
