"""The split itself: counts per split by largest remainder on exact fractions, units (a subject of
a dataset) never divided, a seeded shuffle that depends only on the set of entries (pure)."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal, get_args

from ..core.config import SPLITS
from ..core.errors import UsageError

#: The unit never divided between splits: a subject of a dataset, or each file on its own.
SplitBy = Literal["subject", "file"]
SPLIT_BY: tuple[str, ...] = get_args(SplitBy)
#: Split each dataset in the ratios on its own.
Stratify = Literal["dataset"]
STRATIFY: tuple[str, ...] = get_args(Stratify)


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


def split_unit(entry: Entry, split_by: SplitBy = "subject") -> tuple[str, str]:
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
                  split_by: SplitBy = "subject", stratify: Stratify | None = None) -> dict[str, list[str]]:
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
