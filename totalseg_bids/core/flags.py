"""One flag vocabulary for every stage.

A flag means the same thing in every stage that has it; the spellings of the
workflow this project generalises (``--path-img``, ``--path-out``, ``-dnum``)
and of the tools it wraps (TotalSegmentator's ``gpu``) stay accepted as
aliases, so existing scripts keep working:

============  ===========================================  ===================================
concept       canonical                                    also accepted
============  ===========================================  ===================================
input BIDS    ``--bids-dir DIR``                           ``--path-img``
output        ``-o/--out PATH``                            ``--path-out``, ``--output``
dataset id    ``-d/--dataset-id N``                        ``-dnum``, ``--dataset-number``
device        ``--device auto|cpu|mps|cuda|cuda:N``        ``gpu``, ``gpu:N``
label interp  ``--label-interp nearest|label``             ``--interp``
============  ===========================================  ===================================

Each helper takes the ``dest`` the stage's code already reads, so only the
spelling on the command line is shared, not the stage's internals.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from .geometry import LABEL_INTERPOLATIONS

BIDS_DIR_FLAGS = ("--bids-dir", "--path-img")
OUT_FLAGS = ("-o", "--out", "--path-out", "--output")
DATASET_ID_FLAGS = ("-d", "--dataset-id", "-dnum", "--dataset-number")
LABEL_INTERP_FLAGS = ("--label-interp", "--interp")

_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda|gpu)(:\d+)?$")


def parse_device(text: str, spelling: str = "torch") -> str:
    """A device in either spelling, returned in the one ``spelling`` the caller needs.

    ``torch`` gives ``cuda[:N]`` (PyTorch, nnU-Net); ``totalsegmentator``
    gives ``gpu[:N]`` (TotalSegmentator's ``-d``).

    >>> parse_device("gpu:1")
    'cuda:1'
    >>> parse_device("cuda", spelling="totalsegmentator")
    'gpu'
    >>> parse_device("CPU")
    'cpu'
    """
    match = _DEVICE_RE.match(text.strip().lower())
    if not match or (match.group(2) and match.group(1) not in ("cuda", "gpu")):
        raise argparse.ArgumentTypeError(f"invalid device {text!r} (auto, cpu, mps, cuda, cuda:N; gpu means cuda)")
    kind, index = match.group(1), match.group(2) or ""
    if kind in ("cuda", "gpu"):
        kind = "gpu" if spelling == "totalsegmentator" else "cuda"
    return kind + index


def add_bids_dir(target: Any, dest: str = "bids_dir", help: str = "raw BIDS dataset", **kwargs: Any) -> None:
    """``--bids-dir`` (alias ``--path-img``): the raw BIDS dataset a stage reads."""
    kwargs.setdefault("type", Path)
    kwargs.setdefault("metavar", "DIR")
    target.add_argument(*BIDS_DIR_FLAGS, dest=dest, help=f"{help} (alias --path-img)", **kwargs)


def add_out(target: Any, dest: str, help: str, aliases: tuple[str, ...] = (), **kwargs: Any) -> None:
    """``-o/--out`` (aliases ``--path-out``, ``--output`` and a stage's own ``aliases``): where it writes."""
    kwargs.setdefault("type", Path)
    names = ", ".join((*OUT_FLAGS[2:], *aliases))
    target.add_argument(*OUT_FLAGS, *aliases, dest=dest, help=f"{help} (aliases {names})", **kwargs)


def add_dataset_id(target: Any, dest: str, help: str = "nnU-Net dataset id (1-999)", **kwargs: Any) -> None:
    """``-d/--dataset-id`` (aliases ``-dnum``, ``--dataset-number``): the nnU-Net dataset id."""
    kwargs.setdefault("type", int)
    target.add_argument(*DATASET_ID_FLAGS, dest=dest, help=f"{help} (aliases -dnum, --dataset-number)", **kwargs)


def add_device(target: Any, spelling: str = "torch", default: str = "auto",
               help: str = "auto (cuda when available, else mps, else cpu), cpu, mps, cuda or cuda:N") -> None:
    """``--device`` accepting both ``cuda[:N]`` and ``gpu[:N]``, stored in ``spelling``."""
    target.add_argument("--device", type=lambda text: parse_device(text, spelling), default=default,
                        metavar="DEVICE", help=f"{help}; gpu[:N] is accepted for cuda[:N] (default {default})")


def add_label_interp(target: Any, dest: str, default: str = "nearest",
                     help: str = "nearest, or label: per-label linear then argmax") -> None:
    """``--label-interp`` (alias ``--interp``): how labels are resampled."""
    target.add_argument(*LABEL_INTERP_FLAGS, dest=dest, choices=LABEL_INTERPOLATIONS, default=default,
                        help=f"{help} (default {default}; alias --interp)")
