"""Which folds a run trains: the ones the split file holds, and no other.

Asked for a fold that ``splits_final.json`` lacks, nnU-Net notes it in its training
log and draws a random 80:20 split of *cases*, with a subject's images on both
sides; so such a fold is refused before anything is planned.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..core.errors import InputError

CONVERT_FIX = ("convert with python -m totalseg_bids.convert_config_to_nnunet --folds K (folds drawn by subject), "
               "or train the folds it has")


def requested_folds(folds: Sequence[str], available: int | None, split_file: Path | str | None) -> list[int]:
    """The fold numbers to train: ``all`` is every fold of the split file; a fold the file lacks,
    or any fold without a split file, is refused.

    >>> requested_folds(["all"], 3, "splits_final.json"), requested_folds(["1", "0"], 2, "splits_final.json")
    ([0, 1, 2], [1, 0])
    >>> requested_folds(["5"], 2, "splits_final.json")
    Traceback (most recent call last):
    ...
    totalseg_bids.core.errors.InputError: splits_final.json: fold 5 is not in the split file (folds 0-1); \
convert with python -m totalseg_bids.convert_config_to_nnunet --folds K (folds drawn by subject), or train the \
folds it has
    """
    if available is None:
        raise InputError("no splits_final.json: nnU-Net would split the cases at random, a subject's images on "
                         "both sides", split_file, CONVERT_FIX)
    if list(folds) == ["all"]:
        return list(range(available))
    out = [int(f) for f in folds]
    missing = [f for f in out if not 0 <= f < available]
    if missing:
        have = f"folds 0-{available - 1}" if available > 1 else ("fold 0" if available else "no fold")
        raise InputError(f"fold {missing[0]} is not in the split file ({have})", split_file, CONVERT_FIX)
    return out
