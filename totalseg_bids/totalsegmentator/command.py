"""The ``TotalSegmentator`` command line: the program, its version, its flags, one run, its failures.

TotalSegmentator rewrites the ``nnUNet_*`` environment variables of its own
process, so it runs as a separate process (or in a worker process of its own,
:mod:`.api`), never inside one of ours that runs nnU-Net.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import sysconfig
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from ..core.errors import ExternalToolError, UsageError
from .weights import WEIGHTS_FIX

log = logging.getLogger(__name__)

EXECUTABLE = "TotalSegmentator"
#: TotalSegmentator's ``-d`` values.
DEVICE_RE = re.compile(r"^(gpu|cpu|mps|auto|gpu:\d+)$")
#: Words in TotalSegmentator's output that mean "could not get the weights".
_WEIGHTS_RE = re.compile(r"download|weights|connection|max retries|name resolution|failed to resolve"
                         r"|name or service not known|urlopen|nnunet_results", re.IGNORECASE)


def pick_device(requested: str, cuda_available: bool) -> str:
    """The ``-d`` value for TotalSegmentator; ``auto`` means gpu when CUDA works.

    >>> pick_device("auto", False), pick_device("auto", True), pick_device("gpu:1", False)
    ('cpu', 'gpu', 'gpu:1')
    """
    if not DEVICE_RE.match(requested):
        raise UsageError(f"unknown device {requested!r}", None, "use gpu, gpu:N, cpu, mps or auto")
    if requested == "auto":
        return "gpu" if cuda_available else "cpu"
    return requested


def resolve_device(requested: str) -> str:
    """Turn ``auto`` into gpu/cpu by asking torch (imported only then)."""
    if requested != "auto":
        return pick_device(requested, False)
    try:
        import torch

        cuda = bool(torch.cuda.is_available())
    except ImportError:
        cuda = False
    device = pick_device(requested, cuda)
    log.info("--device auto: using %s", device)
    return device


def totalseg_command(executable: str, ct: str | Path, out_dir: str | Path, task: str,
                     classes: Sequence[str], device: str, fast: bool) -> list[str]:
    """The command line, as TotalSegmentator documents it.

    ``--roi_subset`` only exists for the ``total*`` tasks; other tasks write
    all their classes and we keep the asked ones.

    >>> totalseg_command("TotalSegmentator", "ct.nii.gz", "/tmp/o", "total", ["sacrum"], "cpu", True)
    ... # doctest: +NORMALIZE_WHITESPACE
    ['TotalSegmentator', '-i', 'ct.nii.gz', '-o', '/tmp/o', '-ta', 'total', '--roi_subset', 'sacrum',
     '-d', 'cpu', '--fast']
    >>> totalseg_command("TotalSegmentator", "ct.nii.gz", "/tmp/o", "body", ["skin"], "gpu", False)
    ['TotalSegmentator', '-i', 'ct.nii.gz', '-o', '/tmp/o', '-ta', 'body', '-d', 'gpu']
    """
    cmd = [str(executable), "-i", str(ct), "-o", str(out_dir), "-ta", task]
    if task.startswith("total"):
        cmd += ["--roi_subset", *classes]
    cmd += ["-d", device]
    if fast:
        cmd.append("--fast")
    return cmd


def class_file(out_dir: str | Path, cls: str) -> Path:
    """Where TotalSegmentator (without ``--ml``) writes the mask of ``cls``.

    >>> class_file("/o", "sacrum").as_posix()
    '/o/sacrum.nii.gz'
    """
    return Path(out_dir) / f"{cls}.nii.gz"


def looks_like_missing_weights(stdout: str, stderr: str) -> bool:
    """True when a failed run died fetching its weights.

    The real program prints ``Downloading model for Task N ...`` on stdout and
    dies with a connection error on stderr. Only stderr and the last line of
    stdout count, so an earlier successful download does not mislead us.

    >>> looks_like_missing_weights("Downloading model for Task 297 ...", "requests.exceptions.ConnectionError: ...")
    True
    >>> looks_like_missing_weights("Downloading model for Task 297 ...\\nDone\\n", "CUDA out of memory")
    False
    """
    tail = (stdout.strip().splitlines() or [""])[-1]
    return bool(_WEIGHTS_RE.search(stderr) or _WEIGHTS_RE.search(tail))


def last_line(text: str, limit: int = 200) -> str:
    """The last non-empty line of a program's output, shortened.

    >>> last_line("a\\n  b  \\n\\n")
    'b'
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:limit] if lines else ""


def version() -> str | None:
    """The installed TotalSegmentator's version (recorded in sidecars)."""
    try:
        return metadata.version("TotalSegmentator")
    except metadata.PackageNotFoundError:
        return None


def find_executable() -> str:
    """The ``TotalSegmentator`` program on PATH, or a one-line error."""
    exe = shutil.which(EXECUTABLE)
    if exe is None:
        raise ExternalToolError(f"the {EXECUTABLE} program is not on PATH", EXECUTABLE,
                                "pip install TotalSegmentator (in the environment on PATH), "
                                "or pass --from-existing with outputs made elsewhere")
    return exe


def is_package_program(exe: str | Path) -> bool:
    """True when ``exe`` is the installed TotalSegmentator package's own command
    (its console script, or a pyenv shim to it): only then do the package's
    config and weight folders, which we can read, describe what it will load.
    Another program of that name (another environment, a wrapper) is left to
    report for itself."""
    path = Path(exe).resolve()
    if path.parent == Path(sysconfig.get_path("scripts")).resolve():
        return True
    try:
        head = path.read_bytes()[:4096].decode("utf-8", "replace")
    except OSError:
        return False
    return "from totalsegmentator.bin" in head or ("pyenv" in head and "exec" in head)


def run(cmd: Sequence[str], image: Path, task: str, fast: bool) -> None:
    """Run one TotalSegmentator command line; a failure is one error naming ``image``
    (missing weights recognised in its output and said so)."""
    log.info("%s", " ".join(cmd))
    try:
        proc = subprocess.run(list(cmd), capture_output=True, encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ExternalToolError(f"cannot start {EXECUTABLE} ({exc.strerror})", cmd[0],
                                "reinstall TotalSegmentator (pip install TotalSegmentator)") from None
    log.debug("TotalSegmentator stdout:\n%s\nstderr:\n%s", proc.stdout, proc.stderr)
    if proc.returncode == 0:
        return
    if looks_like_missing_weights(proc.stdout, proc.stderr):
        raise ExternalToolError(
            f"TotalSegmentator weights for task {task!r}{' (--fast)' if fast else ''} are not installed and "
            f"could not be downloaded ({last_line(proc.stderr, 120) or 'no network'})", image,
            WEIGHTS_FIX.format(task=task))
    raise ExternalToolError(
        f"TotalSegmentator failed (exit {proc.returncode}: "
        f"{last_line(proc.stderr) or last_line(proc.stdout) or 'no output'})", image,
        "rerun with -vv to see its full output")


def class_files(out_dir: Path, classes: Sequence[str], task: str, image: Path) -> list[Path]:
    """The mask file of each of ``classes`` a run wrote into ``out_dir``, or one error naming the missing ones."""
    files = [class_file(out_dir, c) for c in classes]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise ExternalToolError(f"TotalSegmentator wrote no {', '.join(missing)}", image,
                                f"check the class names against `TotalSegmentator --list-classes {task}`")
    return files
