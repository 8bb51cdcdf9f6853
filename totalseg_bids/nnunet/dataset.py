"""nnU-Net v2 raw-dataset conventions shared by every stage that writes one.

The 3D conversion (``convert_config_to_nnunet``), the 2D slice export
(``slices --layout nnunet2d``) and the augmented 2D export (``augment``) all
write ``Dataset<NNN>_<Name>/`` with a ``dataset.json`` and a
``splits_final.json``: the naming rules, the id-collision check and both
writers live here once, so the three layouts cannot drift apart.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..core.atomic import atomic_write_json
from ..core.errors import OutputExistsError, UsageError

SPLITS_FILE = "splits_final.json"
DATASET_JSON = "dataset.json"


def dataset_folder_name(number: int, name: str) -> str:
    """nnU-Net's folder name for a dataset id and name.

    >>> dataset_folder_name(7, "SacrumDataset")
    'Dataset007_SacrumDataset'
    """
    if not 1 <= int(number) <= 999:
        raise UsageError(f"dataset number {number} out of range", None, "use -dnum between 1 and 999")
    if not name or not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        raise UsageError(f"dataset name {name!r} must be letters, digits, '-' or '_'", None,
                         "e.g. -dname SacrumDataset")
    return f"Dataset{int(number):03d}_{name}"


def find_id_conflicts(number: int, name: str, roots: Iterable[str | Path]) -> list[Path]:
    """Folders ``Dataset<NNN>_<other name>`` in ``roots``: the id belongs to another dataset.

    >>> find_id_conflicts(300, "X", ["/nonexistent"])
    []
    """
    prefix = f"Dataset{int(number):03d}_"
    own = f"{prefix}{name}"
    out = []
    for root in dict.fromkeys(Path(r) for r in roots if r):
        try:
            entries = sorted(os.listdir(root))
        except OSError:
            continue
        out += [Path(root) / e for e in entries if e.startswith(prefix) and e != own and (Path(root) / e).is_dir()]
    return out


def dataset_dir(out: str | Path, number: int, name: str) -> Path:
    """``<out>/Dataset<NNN>_<Name>``, refusing an id that another name already holds in ``out``."""
    folder = dataset_folder_name(number, name)
    conflicts = find_id_conflicts(number, name, [out])
    if conflicts:
        raise OutputExistsError(f"dataset id {int(number):03d} already belongs to {conflicts[0].name}",
                                conflicts[0], "choose another -dnum or the same -dname")
    return Path(out) / folder


def write_dataset_json(folder: str | Path, channel_names: Mapping[str, str], labels: Mapping[str, int],
                       num_training: int, file_ending: str, reader: str, name: str,
                       **extra: Any) -> Path:
    """``dataset.json`` through nnU-Net's own writer when it is importable, else the same keys by hand.

    ``reader`` is nnU-Net's ``overwrite_image_reader_writer`` (``SimpleITKIO``,
    ``NibabelIOWithReorient``, ``NaturalImage2DIO``, ...).
    """
    from .. import __version__

    folder = Path(folder)
    meta = {"license": "see the source BIDS datasets", "converted_by": f"totalseg_bids {__version__}", **extra}
    try:
        from nnunetv2.dataset_conversion.generate_dataset_json import generate_dataset_json
    except ImportError:
        generate_dataset_json = None
    if generate_dataset_json is not None:
        with contextlib.redirect_stdout(io.StringIO()):
            generate_dataset_json(str(folder), dict(channel_names), dict(labels), int(num_training), file_ending,
                                  dataset_name=name, overwrite_image_reader_writer=reader, **meta)
    else:
        licence = meta.pop("license")  # nnU-Net's writer spells the key "licence"
        atomic_write_json(folder / DATASET_JSON, {
            "channel_names": dict(channel_names), "labels": dict(labels), "numTraining": int(num_training),
            "file_ending": file_ending, "name": name, "overwrite_image_reader_writer": reader,
            "licence": licence, **meta})
    return folder / DATASET_JSON


def splits_record(train: Sequence[str], val: Sequence[str]) -> list[dict[str, list[str]]]:
    """The config's split as nnU-Net fold 0 (``splits_final.json`` holds a list of folds).

    >>> splits_record(["a", "b"], ["c"])
    [{'train': ['a', 'b'], 'val': ['c']}]
    """
    return [{"train": list(train), "val": list(val)}]


def write_splits(folder: str | Path, train: Sequence[str], val: Sequence[str]) -> Path:
    """Write ``splits_final.json`` (fold 0 = the config's TRAINING/VALIDATION) atomically."""
    path = Path(folder) / SPLITS_FILE
    atomic_write_json(path, splits_record(train, val))
    return path
