"""TotalSegmentator's class maps, read from the installed package, and the checks of asked class names."""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable, Sequence

from ..core.bids import label_value
from ..core.errors import UsageError

log = logging.getLogger(__name__)


def load_class_map(task: str) -> dict[int, str] | None:
    """``{id: name}`` of ``task`` from the installed TotalSegmentator, or None
    when TotalSegmentator is not importable (classes then go unchecked)."""
    try:
        from totalsegmentator.map_to_binary import class_map
    except ImportError:
        log.info("TotalSegmentator is not importable here: class names and ids are not checked")
        return None
    if task not in class_map:
        close = difflib.get_close_matches(task, list(class_map), n=5, cutoff=0.5)
        hint = f" (close: {', '.join(close)})" if close else ""
        raise UsageError(f"unknown TotalSegmentator task {task!r}{hint}", None,
                         "list the tasks with `TotalSegmentator --list-tasks`")
    return {int(k): str(v) for k, v in class_map[task].items()}


def class_ids(task: str, names: Sequence[str]) -> dict[str, int]:
    """The ids of ``names`` in ``task`` of the installed TotalSegmentator
    (ImportError when it is not installed, KeyError for a name it lacks)."""
    from totalsegmentator.map_to_binary import class_map

    by_name = {v: k for k, v in class_map[task].items()}
    return {name: int(by_name[name]) for name in names}


def check_classes(classes: Sequence[str], known: Iterable[str], task: str) -> list[str]:
    """Refuse class names the task does not have, suggesting close ones.

    Duplicates are dropped (order kept). Names must also stay distinct once
    turned into BIDS ``label-`` values.

    >>> check_classes(["sacrum", "sacrum"], ["sacrum", "vertebrae_L5"], "total")
    ['sacrum']
    >>> check_classes(["vertebrae_l5"], ["sacrum", "vertebrae_L5"], "total")
    Traceback (most recent call last):
    ...
    totalseg_bids.core.errors.UsageError: unknown class 'vertebrae_l5' for task 'total' (close: vertebrae_L5); ...
    """
    known = list(known)
    out = list(dict.fromkeys(classes))
    if not out:
        raise UsageError("no classes given", None, "pass --classes sacrum ...")
    lower = {k.lower(): k for k in known}
    for name in out:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
            if name.lower() in lower and lower[name.lower()] not in close:
                close.insert(0, lower[name.lower()])
            hint = f" (close: {', '.join(close)})" if close else ""
            raise UsageError(f"unknown class {name!r} for task {task!r}{hint}", None,
                             f"list the classes with `TotalSegmentator --list-classes {task}`")
    values: dict[str, str] = {}
    for name in out:
        value = label_value(name)
        if value in values:
            raise UsageError(f"classes {values[value]!r} and {name!r} give the same label name "
                             f"{value!r}", None, "ask for one of them")
        values[value] = name
    return out
