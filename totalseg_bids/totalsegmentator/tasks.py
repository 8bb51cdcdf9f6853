"""What the installed TotalSegmentator needs to run a task: its model ids,
their weight folders and the model resolution.

Read from the installed package (``totalsegmentator.map_tasks_config``,
``map_to_binary``, ``config``), so segment_ct can tell before the first
image that weights are missing (TotalSegmentator itself would try to
download them once per image) and can refuse images too small for the model,
and locally built weights go where the installed version looks for them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import ExternalToolError, UsageError

#: Image suffixes of TotalSegmentator's MRI tasks (``*_mr``), labelled directly on the MRI.
MR_SUFFIXES = ("T1w", "T2w")


def is_mr_task(task: str) -> bool:
    """Whether ``task`` labels MRI (TotalSegmentator names those ``*_mr``).

    >>> is_mr_task("total_mr"), is_mr_task("total")
    (True, False)
    """
    return task.endswith("_mr")


@dataclass(frozen=True)
class ModelNeed:
    """One weight folder a run loads."""

    task_id: int
    folder: Path
    purpose: str


def _sub_config(task: str, fast: bool) -> dict | None:
    from totalsegmentator.map_tasks_config import TASK_CONFIGS

    cfg = TASK_CONFIGS.get(task)
    if cfg is None:
        return None
    if "sub_modes" not in cfg:
        return cfg
    modes = cfg["sub_modes"]
    return modes.get("fast" if fast else "default") or modes.get("default")


def model_spacing(task: str, fast: bool) -> float | None:
    """The voxel size (mm) TotalSegmentator resamples to for ``task``, or None
    (also when TotalSegmentator is not importable here)."""
    try:
        sub = _sub_config(task, fast) or {}
    except ImportError:
        return None
    res = sub.get("resample")
    if res is None:
        return None
    return float(max(res)) if isinstance(res, (list, tuple)) else float(res)


def _crop_id(task: str) -> int | None:
    """The coarse model ``--roi_subset`` crops with: TotalSegmentator uses the
    ``fastest`` model of ``total`` for CT and the ``fast`` model of ``total_mr``
    for MRI (it finds the 6 mm MRI model too coarse)."""
    from totalsegmentator.map_tasks_config import TASK_CONFIGS

    name, mode = ("total_mr", "fast") if is_mr_task(task) else ("total", "fastest")
    sub = TASK_CONFIGS.get(name, {}).get("sub_modes", {}).get(mode)
    return int(sub["task_id"]) if sub else None


def _part_ids(task: str, ids: list[int], classes: Sequence[str]) -> list[int]:
    """Of a multi-part model, the parts holding ``classes`` (TotalSegmentator
    runs only those with ``--roi_subset``)."""
    from totalsegmentator import map_to_binary as mtb

    tables = {"total": (mtb.class_map_5_parts, mtb.map_taskid_to_partname_ct),
              "total_mr": (mtb.class_map_parts_mr, mtb.map_taskid_to_partname_mr)}
    if task not in tables or not classes:
        return ids
    parts, names = tables[task]
    return [i for i in ids if i in names and set(parts[names[i]].values()) & set(classes)]


def needed_models(task: str, fast: bool, classes: Sequence[str]) -> list[ModelNeed]:
    """The weight folders a ``TotalSegmentator -ta task [--fast] --roi_subset classes`` run loads."""
    from totalsegmentator.config import get_weights_dir
    from totalsegmentator.map_tasks_config import TASK_ID_WEIGHTS_CONFIGS

    sub = _sub_config(task, fast)
    if sub is None or "task_id" not in sub:
        return []
    ids = sub["task_id"] if isinstance(sub["task_id"], list) else [sub["task_id"]]
    ids = _part_ids(task, [int(i) for i in ids], classes) if len(ids) > 1 else [int(i) for i in ids]
    wanted = [(i, "model") for i in ids]
    crop = _crop_id(task) if task.startswith("total") and classes else None
    if crop is not None and crop not in ids:
        wanted.append((crop, "--roi_subset cropping model"))
    base = Path(get_weights_dir())
    out = []
    for tid, purpose in wanted:
        info = TASK_ID_WEIGHTS_CONFIGS.get(tid, {})
        if "foldername" not in info:
            continue  # TotalSegmentator itself will say what is wrong
        out.append(ModelNeed(tid, base / (info.get("rel_path") or "") / info["foldername"], purpose))
    return out


def missing_models(task: str, fast: bool, classes: Sequence[str]) -> list[ModelNeed]:
    """The needed weight folders that hold no checkpoint (TotalSegmentator would download them)."""
    return [m for m in needed_models(task, fast, classes)
            if not m.folder.is_dir() or not any(m.folder.glob("*/fold_*/checkpoint_final.pth"))]


@dataclass(frozen=True)
class TaskModel:
    """One weight folder TotalSegmentator loads: task id, folder, trainer, label table."""

    task_id: int
    folder: str
    trainer: str
    labels: Mapping[int, str]


def _sub_modes(task: str) -> dict:
    from totalsegmentator.map_tasks_config import TASK_CONFIGS

    cfg = TASK_CONFIGS.get(task)
    if not cfg or "sub_modes" not in cfg:
        raise UsageError(f"the installed TotalSegmentator has no task {task!r} with fast/default models",
                         None, "choose total or total_mr")
    return cfg["sub_modes"]


def task_models(task: str) -> list[TaskModel]:
    """Every weight folder ``task`` needs in the installed TotalSegmentator.

    Covers the default model(s), ``--fast``, ``--fastest`` (TotalSegmentator's
    ``--roi_subset`` cropping model for CT); label tables are the part maps for
    multi-part models and the task's class map otherwise.
    """
    from totalsegmentator import map_to_binary as mtb
    from totalsegmentator.map_tasks_config import TASK_ID_WEIGHTS_CONFIGS

    parts = {"total": (mtb.class_map_5_parts, mtb.map_taskid_to_partname_ct),
             "total_mr": (mtb.class_map_parts_mr, mtb.map_taskid_to_partname_mr)}[task]
    out: dict[int, TaskModel] = {}
    for sub in _sub_modes(task).values():
        ids = sub["task_id"] if isinstance(sub["task_id"], list) else [sub["task_id"]]
        for tid in ids:
            info = TASK_ID_WEIGHTS_CONFIGS.get(tid)
            if info is None or "foldername" not in info:
                raise ExternalToolError(f"TotalSegmentator has no weight folder name for task id {tid}",
                                        None, "use the TotalSegmentator version in setup.py")
            folder = str(Path(info.get("rel_path") or "") / info["foldername"])
            labels = parts[0][parts[1][tid]] if len(ids) > 1 else mtb.class_map[task]
            out[tid] = TaskModel(int(tid), folder, str(sub["trainer"]), {int(k): str(v) for k, v in labels.items()})
    return [out[k] for k in sorted(out)]
