"""The one home of TotalSegmentator's conventions: tasks and the models they
load (:mod:`.tasks`), class maps (:mod:`.classes`), the command line
(:mod:`.command`), the weights check (:mod:`.weights`) and its Python API in a
long-lived process (:mod:`.api`, :mod:`.server`).

Stages call this adapter; nothing else spells out TotalSegmentator's names.
"""

from .api import ApiRunner, api_arguments, close_runner, runner, segment
from .classes import check_classes, class_ids, load_class_map
from .command import (
    EXECUTABLE,
    class_file,
    class_files,
    find_executable,
    is_package_program,
    last_line,
    looks_like_missing_weights,
    pick_device,
    resolve_device,
    run,
    totalseg_command,
    version,
)
from .tasks import (
    MR_SUFFIXES,
    ModelNeed,
    TaskModel,
    is_mr_task,
    missing_models,
    model_spacing,
    needed_models,
    task_models,
)
from .weights import (
    STAMP,
    WEIGHTS_FIX,
    check_weights,
    default_home,
    disable_usage_stats,
    home_env,
    is_local_build,
    local_build_record,
    local_weights_description,
    ready,
    weights_dir,
)

__all__ = [
    "ApiRunner", "api_arguments", "close_runner", "runner", "segment",
    "EXECUTABLE", "MR_SUFFIXES", "ModelNeed", "STAMP", "TaskModel", "WEIGHTS_FIX", "check_classes", "check_weights",
    "class_file", "class_files", "class_ids", "default_home", "disable_usage_stats", "find_executable", "home_env",
    "is_local_build", "is_mr_task", "is_package_program", "last_line", "load_class_map", "local_build_record",
    "local_weights_description", "looks_like_missing_weights", "missing_models", "model_spacing", "needed_models",
    "pick_device", "ready", "resolve_device", "run", "task_models", "totalseg_command", "version", "weights_dir",
]
