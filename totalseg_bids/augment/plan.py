"""Which source slice each output sample comes from (pure, seeded)."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from ..core.errors import UsageError


@dataclass(frozen=True)
class Sample:
    """One output sample: its name, source row index, seed and whether it is augmented."""

    name: str
    source: int
    seed: int
    augmented: bool


def strata_quota(n_pos: int, n_neg: int, target: int) -> tuple[int, int]:
    """Split ``target`` between labelled and empty slices in the source ratio.

    >>> strata_quota(30, 10, 100)
    (75, 25)
    >>> strata_quota(0, 5, 7)
    (0, 7)
    """
    total = n_pos + n_neg
    if total == 0:
        return 0, 0
    pos = round(target * n_pos / total)
    if n_pos and not pos and target:
        pos = 1
    if n_neg and pos == target and target > 1:
        pos -= 1
    return pos, target - pos


def even_draw(rows: Sequence[int], groups: Sequence[str], count: int) -> list[int]:
    """``count`` row indices, cycling over volumes then slices so none is over-represented.

    >>> even_draw([0, 1, 2], ["a", "a", "b"], 4)
    [0, 2, 1, 2]
    """
    by_group: dict[str, list[int]] = defaultdict(list)
    for row, group in zip(rows, groups):
        by_group[group].append(row)
    order = sorted(by_group)
    out: list[int] = []
    cursors = dict.fromkeys(order, 0)
    while len(out) < count and order:
        for g in order:
            if len(out) == count:
                break
            members = by_group[g]
            out.append(members[cursors[g] % len(members)])
            cursors[g] += 1
    return out


def plan_split(has_label: Sequence[bool], volumes: Sequence[str], target: int, keep_originals: bool,
               seed: int, prefix: str) -> list[Sample]:
    """Exactly ``target`` samples for one split; with ``keep_originals`` every source slice first."""
    rng = random.Random(f"{seed}:{prefix}")
    idx = list(range(len(has_label)))
    samples = [Sample(f"{prefix}-orig-{i:06d}", i, 0, False) for i in idx] if keep_originals else []
    todo = target - len(samples)
    pos = [i for i in idx if has_label[i]]
    neg = [i for i in idx if not has_label[i]]
    q_pos, q_neg = strata_quota(len(pos), len(neg), todo)
    drawn = (even_draw(pos, [volumes[i] for i in pos], q_pos)
             + even_draw(neg, [volumes[i] for i in neg], q_neg))
    for k, i in enumerate(drawn):
        samples.append(Sample(f"{prefix}-aug-{k:06d}", i, rng.randrange(2**31), True))
    return samples


def split_plan(split_rows: list[dict], split: str, target: int | None, keep_originals: bool,
               seed: int) -> list[Sample]:
    """The samples of one split: TESTING (or no target) copies its slices, else exactly ``target``."""
    labelled = [r["has_label"] == "1" for r in split_rows]
    volumes = [r["images"] for r in split_rows]
    if split == "test" or target is None:
        return plan_split(labelled, volumes, len(split_rows), True, seed, split)
    if keep_originals and target < len(split_rows):
        raise UsageError(f"--target-{split} {target} is below the {len(split_rows)} originals "
                         "kept by --keep-originals", None, "raise the target or drop --keep-originals")
    return plan_split(labelled, volumes, target, keep_originals, seed, split)
