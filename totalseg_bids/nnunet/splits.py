"""Cross-validation folds for ``splits_final.json`` that never divide a subject.

nnU-Net trains fold ``k`` on ``splits_final.json[k]["train"]`` and validates on
its ``["val"]``; without the file it draws a random 80:20 split of *cases*, so
the T1w and the T2w, the sessions or the augmented copies of one subject land
on both sides and the validation Dice is inflated. The folds here follow five
rules, checked by :func:`check_folds`:

* the unit is the subject of a dataset (``<dataset>/sub-<label>``): all its
  sessions, contrasts, runs and augmented samples fall in the same fold;
* TESTING cases are in no fold;
* every TRAINING/VALIDATION case is validated in exactly one fold (the folds'
  validation sets partition them, as nnU-Net's cross-validation expects);
* within each dataset, subjects are dealt evenly to the folds (stratified by
  dataset where several are mixed);
* the same cases and ``seed`` give the same folds, whatever their order.

``folds=1`` is the exception: the config's own TRAINING/VALIDATION split as the
single fold 0 (only VALIDATION cases are ever validated then).
"""

from __future__ import annotations

import logging
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..core.errors import InputError, UsageError
from .dataset import Fold

log = logging.getLogger(__name__)

#: nnU-Net's own number of folds, and the seed of its own random splits.
DEFAULT_FOLDS = 5
DEFAULT_SEED = 12345
TRAINABLE = ("TRAINING", "VALIDATION")


@dataclass(frozen=True)
class FoldCase:
    """One case of a dataset: its id in nnU-Net, the subject it belongs to, its config split.

    ``subject`` is the unit no fold divides, ``<dataset>/sub-<label>`` (a subject is
    only unique within its dataset); the part before ``/`` is the stratum.
    """

    case_id: str
    subject: str
    split: str = "TRAINING"

    @property
    def dataset(self) -> str:
        """The stratum: the dataset the subject belongs to.

        >>> FoldCase("c", "whole-spine/sub-01").dataset
        'whole-spine'
        """
        return self.subject.split("/", 1)[0] if "/" in self.subject else ""


def subject_key(dataset: str, subject: str | None, fallback: str) -> str:
    """The unit of a case: ``<dataset>/sub-<label>``, or ``fallback`` (its own unit) without a subject.

    >>> subject_key("ds", "01", "x"), subject_key("ds", None, "case_7")
    ('ds/sub-01', 'ds/case_7')
    """
    return f"{dataset}/sub-{subject}" if subject else f"{dataset}/{fallback}"


def assign_subjects(subjects: Mapping[str, int], k: int, seed: int = DEFAULT_SEED) -> dict[str, int]:
    """Subject -> validation fold. Each dataset's subjects, sorted then shuffled from
    ``seed``, are dealt one by one to the fold holding the fewest subjects of that
    dataset, then the fewest cases (``subjects`` maps subject -> case count), then
    the lowest index: every dataset is spread evenly, and the folds' sizes with it.

    >>> out = assign_subjects({f"a/sub-{i}": 2 for i in range(5)} | {"b/sub-1": 1, "b/sub-2": 1}, 2, seed=0)
    >>> sorted(Counter(out.values()).items()), sorted(out[s] for s in ("b/sub-1", "b/sub-2"))
    ([(0, 4), (1, 3)], [0, 1])
    """
    strata: dict[str, list[str]] = defaultdict(list)
    for subject in sorted(subjects):
        strata[FoldCase("", subject).dataset].append(subject)
    fold_cases, out = [0] * k, {}
    for dataset in sorted(strata):
        members = strata[dataset]
        random.Random(f"{seed}:{dataset}").shuffle(members)
        in_fold = [0] * k
        for subject in members:
            fold = min(range(k), key=lambda f: (in_fold[f], fold_cases[f], f))
            out[subject] = fold
            in_fold[fold] += 1
            fold_cases[fold] += subjects[subject]
    return out


def cross_validation_folds(cases: Sequence[FoldCase], k: int, seed: int = DEFAULT_SEED) -> list[Fold]:
    """``k`` folds of the TRAINING/VALIDATION cases, grouped by subject and stratified by dataset.

    >>> cases = [FoldCase(f"c{i}", f"ds/sub-{i // 2}") for i in range(8)]  # 4 subjects, 2 cases each
    >>> folds = cross_validation_folds(cases, 2, seed=0)
    >>> [len(f["val"]) for f in folds], sorted(folds[0]["val"] + folds[1]["val"]) == sorted(c.case_id for c in cases)
    ([4, 4], True)
    """
    trainable = [c for c in cases if c.split in TRAINABLE]
    subjects = Counter(c.subject for c in trainable)
    if k < 2:
        raise UsageError(f"{k} fold(s) cannot cross-validate", None,
                         "use --folds 2 or more (--folds 1: the config's split)")
    if len(subjects) < k:
        raise InputError(f"{k} folds need at least {k} subjects in TRAINING/VALIDATION, found {len(subjects)}", None,
                         f"use --folds {max(2, len(subjects))} or fewer, or add subjects")
    fold_of = assign_subjects(subjects, k, seed)
    return [{"train": [c.case_id for c in trainable if fold_of[c.subject] != f],
             "val": [c.case_id for c in trainable if fold_of[c.subject] == f]} for f in range(k)]


def config_fold(cases: Sequence[FoldCase]) -> list[Fold]:
    """The config's TRAINING/VALIDATION split as the single fold 0; refused when a subject is on both sides.

    >>> config_fold([FoldCase("a", "ds/sub-1"), FoldCase("b", "ds/sub-2", "VALIDATION")])
    [{'train': ['a'], 'val': ['b']}]
    """
    fold = {"train": [c.case_id for c in cases if c.split == "TRAINING"],
            "val": [c.case_id for c in cases if c.split == "VALIDATION"]}
    both = sorted({c.subject for c in cases if c.split == "TRAINING"} & {c.subject for c in cases
                                                                          if c.split == "VALIDATION"})
    if both:
        raise InputError(f"the config's split puts {both[0]} in TRAINING and VALIDATION"
                         + (f" (and {len(both) - 1} more)" if len(both) > 1 else ""), None,
                         "use --folds 2 or more (folds are drawn by subject) or split the config by subject")
    if not fold["val"]:
        log.warning("the config has no VALIDATION case: nnU-Net fold 0 will have an empty validation set")
    return [fold]


def make_folds(cases: Sequence[FoldCase], k: int | None = None, seed: int = DEFAULT_SEED) -> list[Fold]:
    """The folds of a dataset: ``k`` subject-grouped folds (None: 5, or one per subject when there are
    fewer), or with ``k == 1`` the config's own split."""
    if k is not None and k < 1:
        raise UsageError(f"--folds {k} must be at least 1", None, "e.g. --folds 5")
    if k == 1:
        return config_fold(cases)
    if k is None:
        subjects = len({c.subject for c in cases if c.split in TRAINABLE})
        k = min(DEFAULT_FOLDS, subjects)
        if k < DEFAULT_FOLDS:
            log.warning("%d subject(s) in TRAINING/VALIDATION: %d folds instead of %d", subjects, k, DEFAULT_FOLDS)
        if k < 2:
            return config_fold(cases)
    return cross_validation_folds(cases, k, seed)


def check_folds(folds: Sequence[Fold], cases: Sequence[FoldCase], complete: bool = True) -> None:
    """Refuse folds that break the module's rules: an unknown or TESTING case in a fold, a subject on
    both sides of a fold, and (``complete``) a TRAINING/VALIDATION case validated in no fold or in two.

    >>> cases = [FoldCase("a", "ds/sub-1"), FoldCase("b", "ds/sub-1"), FoldCase("c", "ds/sub-2")]
    >>> check_folds([{"train": ["a"], "val": ["b", "c"]}], cases)
    Traceback (most recent call last):
    ...
    totalseg_bids.core.errors.InputError: fold 0 has ds/sub-1 on both sides; draw the folds by subject
    """
    by_id = {c.case_id: c for c in cases}
    for n, fold in enumerate(folds):
        for case_id in (*fold["train"], *fold["val"]):
            if by_id.get(case_id) is None or by_id[case_id].split not in TRAINABLE:
                raise InputError(f"fold {n} lists {case_id}, not a TRAINING/VALIDATION case", None,
                                 "convert the dataset again")
        both = {by_id[c].subject for c in fold["train"]} & {by_id[c].subject for c in fold["val"]}
        if both:
            raise InputError(f"fold {n} has {min(both)} on both sides", None, "draw the folds by subject")
    if complete:
        validated = Counter(c for fold in folds for c in fold["val"])
        for case in (c for c in cases if c.split in TRAINABLE):
            if validated[case.case_id] != 1:
                raise InputError(f"{case.case_id} is validated in {validated[case.case_id]} folds, not 1", None,
                                 "every TRAINING/VALIDATION case must be validated in exactly one fold")


def validation_fold(folds: Sequence[Fold]) -> dict[str, int]:
    """Case id -> the fold that validates it.

    >>> validation_fold([{"train": ["a"], "val": ["b"]}, {"train": ["b"], "val": ["a"]}])
    {'b': 0, 'a': 1}
    """
    return {case: n for n, fold in enumerate(folds) for case in fold["val"]}


def carry_folds(source: Sequence[Fold], source_of: Mapping[str, str], cases: Iterable[str]) -> list[Fold]:
    """Folds of derived cases (augmented or resampled samples) that follow their source case:
    a sample is trained on, or validated, wherever its source is.

    >>> carry_folds([{"train": ["a"], "val": ["b"]}], {"a1": "a", "a2": "a", "b1": "b"}, ["a1", "a2", "b1"])
    [{'train': ['a1', 'a2'], 'val': ['b1']}]
    """
    cases = list(cases)
    out = []
    for fold in source:
        train, val = set(fold["train"]), set(fold["val"])
        out.append({"train": [c for c in cases if source_of[c] in train],
                    "val": [c for c in cases if source_of[c] in val]})
    return out
