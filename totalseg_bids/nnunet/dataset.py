"""nnU-Net v2 raw datasets: ``dataset.json``, ``splits_final.json``, dataset ids, the integrity check.

The 3D conversion (``convert_config_to_nnunet``), the 2D slice export
(``slices --layout nnunet2d``) and the augmented 2D export (``augment``) all
write ``Dataset<NNN>_<Name>/`` with a ``dataset.json`` and a
``splits_final.json``: the id-collision check and both writers live here once,
so the three layouts cannot drift apart. The folds themselves are drawn in
:mod:`.splits`.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import __version__
from ..core.atomic import atomic_copy, atomic_write_json
from ..core.errors import ExternalToolError, InputError, MissingFileError, OutputExistsError
from . import paths
from .naming import DATASET_JSON, SPLITS_FILE, dataset_folder_name, dataset_prefix

log = logging.getLogger(__name__)

#: One fold of ``splits_final.json``: the case ids nnU-Net trains on and validates on.
Fold = dict[str, list[str]]


def find_id_conflicts(dataset_id: int, name: str, roots: Iterable[str | Path | None]) -> list[Path]:
    """Folders ``Dataset<NNN>_<other name>`` in ``roots``: the id belongs to another dataset.

    >>> find_id_conflicts(300, "X", ["/nonexistent"])
    []
    """
    prefix = dataset_prefix(dataset_id)
    own = f"{prefix}{name}"
    out = []
    for root in dict.fromkeys(Path(r) for r in roots if r):
        try:
            entries = sorted(os.listdir(root))
        except OSError:
            continue
        out += [root / e for e in entries if e.startswith(prefix) and e != own and (root / e).is_dir()]
    return out


def dataset_dir(out: str | Path, dataset_id: int, name: str) -> Path:
    """``<out>/Dataset<NNN>_<Name>``, refusing an id that another name already holds in ``out``."""
    folder = dataset_folder_name(dataset_id, name)
    conflicts = find_id_conflicts(dataset_id, name, [out])
    if conflicts:
        raise OutputExistsError(f"dataset id {int(dataset_id):03d} already belongs to {conflicts[0].name}",
                                conflicts[0], "choose another -d or the same -dname")
    return Path(out) / folder


def write_dataset_json(folder: str | Path, channel_names: Mapping[str, str], labels: Mapping[str, int],
                       num_training: int, file_ending: str, reader: str, name: str,
                       **extra: Any) -> Path:
    """``dataset.json`` through nnU-Net's own writer when it is importable, else the same keys by hand.

    ``reader`` is nnU-Net's ``overwrite_image_reader_writer`` (``SimpleITKIO``,
    ``NibabelIOWithReorient``, ``NaturalImage2DIO``, ...).
    """
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


def write_folds(folder: str | Path, folds: Sequence[Fold]) -> Path:
    """Write ``splits_final.json`` (a list of ``{"train": [...], "val": [...]}``) atomically."""
    path = Path(folder) / SPLITS_FILE
    atomic_write_json(path, [{"train": list(f["train"]), "val": list(f["val"])} for f in folds])
    return path


def read_folds(path: str | Path) -> list[Fold]:
    """The folds of a ``splits_final.json``, checked for nnU-Net's shape."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MissingFileError("split file not found", path, "convert the dataset with "
                               "python -m totalseg_bids.convert_config_to_nnunet") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"unreadable split file ({exc})", path, "convert the dataset again") from None
    if not isinstance(data, list) or not all(isinstance(f, dict) and {"train", "val"} <= set(f) for f in data):
        raise InputError("not nnU-Net's split format (a list of {\"train\": [...], \"val\": [...]})", path,
                         "convert the dataset again")
    return [{"train": list(f["train"]), "val": list(f["val"])} for f in data]


def split_file(raw_dataset: Path, preprocessed: Path | None) -> Path | None:
    """The split file nnU-Net will train from: the converter's (in the raw dataset), else one
    already beside the preprocessed data; None when there is neither."""
    for candidate in (raw_dataset / SPLITS_FILE,
                      preprocessed / raw_dataset.name / SPLITS_FILE if preprocessed else None):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def install_splits(raw_dataset: Path, preprocessed: Path) -> Path | None:
    """Put the converter's ``splits_final.json`` where nnU-Net reads it (without it, nnU-Net
    draws a random split of cases); None when the raw dataset has none."""
    src = raw_dataset / SPLITS_FILE
    if not src.is_file():
        return None
    dst = preprocessed / raw_dataset.name / SPLITS_FILE
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not dst.is_file() or dst.read_bytes() != src.read_bytes():
        atomic_copy(src, dst)
    return dst


def verify_integrity(folder: Path, processes: int = 1) -> None:
    """Run nnU-Net's ``verify_dataset_integrity`` on ``folder`` in a subprocess.

    A subprocess because nnU-Net prints freely and reads its ``nnUNet_*``
    variables at import; its output becomes our one-line error on failure.
    """
    parent = str(folder.parent)
    env = paths.tool_env(folders={f.variable: parent for f in paths.FOLDERS})
    code = ("import sys\nfrom nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity\n"
            "verify_dataset_integrity(sys.argv[1], int(sys.argv[2]))\n")
    proc = subprocess.run([sys.executable, "-c", code, str(folder), str(max(1, processes))],
                          capture_output=True, encoding="utf-8", errors="replace", env=env, check=False)
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stdout + "\n" + proc.stderr).splitlines() if ln.strip()]
        errors = [ln for ln in lines if "error" in ln.lower()] or lines
        raise ExternalToolError(f"nnU-Net's verify_dataset_integrity failed ({(errors[-1] if errors else '?')[:200]})",
                                folder, "fix the cases it names (rerun with -v for nnU-Net's output)")
    log.debug(proc.stdout)
