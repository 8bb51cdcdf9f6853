"""Which classes a case is measured on, and what they are called.

A class is named, first source wins, by ``--labels VALUE=NAME``, the ``_dseg.tsv``
beside the reference or the prediction, or the ``label-`` entity of a binary
``_seg``/``_mask`` (its value 1); otherwise by its value. Without ``--labels``
every class that a file names or holds is measured.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from ..core.derivatives import label_class_names
from ..core.errors import InputError, UsageError

_SPEC_RE = re.compile(r"^(?:(?P<value>\d+)(?:=(?P<name>.+))?|(?P<only_name>[^=\s]+))$")


def parse_label_specs(specs: Iterable[str]) -> tuple[list[int | str], dict[int, str]]:
    """``--labels`` entries as (the classes asked for, values or names; the names they give).

    >>> parse_label_specs(["1", "2=L5", "sacrum"])
    ([1, 2, 'sacrum'], {2: 'L5'})
    >>> parse_label_specs(["0"])
    Traceback (most recent call last):
    ...
    totalseg_bids.core.errors.UsageError: --labels: 0 is the background; give the classes to measure, e.g. --labels 1 2
    """
    wanted: list[int | str] = []
    names: dict[int, str] = {}
    for spec in specs:
        match = _SPEC_RE.match(str(spec).strip())
        if not match:
            raise UsageError(f"--labels: cannot read {spec!r}", None,
                             "give VALUE, NAME or VALUE=NAME, e.g. --labels 1=sacrum")
        if match["only_name"]:
            wanted.append(match["only_name"])
            continue
        value = int(match["value"])
        if value == 0:
            raise UsageError("--labels: 0 is the background", None, "give the classes to measure, e.g. --labels 1 2")
        wanted.append(value)
        if match["name"]:
            names[value] = match["name"]
    return wanted, names


def class_names(ref: Path, pred: Path, given: Mapping[int, str] | None = None) -> dict[int, str]:
    """``{value: name}`` for one case: ``given`` first, then the reference's, then the prediction's names."""
    found = label_class_names([ref, pred])
    return {**found, **dict(given or {})}


def resolve_classes(wanted: Sequence[int | str], names: Mapping[int, str], ref: Path) -> list[int]:
    """The values of the classes asked for; a name nobody gives is an error.

    >>> resolve_classes([2, "sacrum"], {1: "sacrum"}, Path("r.nii.gz"))
    [1, 2]
    """
    by_name = {n: v for v, n in names.items()}
    values = []
    for item in wanted:
        if isinstance(item, int):
            values.append(item)
        elif item in by_name:
            values.append(by_name[item])
        else:
            known = ", ".join(f"{v}={n}" for v, n in sorted(names.items())) or "none"
            raise InputError(f"no class named {item!r} (classes named here: {known})", ref,
                             "give its value, or VALUE=NAME, e.g. --labels 1=sacrum")
    return sorted(set(values))


def label_name(value: int, names: Mapping[int, str]) -> str:
    """The name of a class in the outputs (its value when nothing names it).

    >>> label_name(1, {1: "sacrum"}), label_name(3, {})
    ('sacrum', '3')
    """
    return names.get(value, str(value))
