"""git-annex / datalad awareness without importing datalad.

Files of datalad datasets are often symlinks into ``.git/annex/objects`` whose
content has not been fetched (broken links), or, in unlocked mode, small
pointer files. Reading them as NIfTI fails with a baffling gzip error; we
detect them and say ``run `datalad get <path>```, or fetch them on request
through datalad's Python API (imported only then).
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from .errors import AnnexContentMissingError, ExternalToolError, UsageError

log = logging.getLogger(__name__)

#: Environment variable that turns on fetching for every stage.
GET_ENV = "TOTALSEG_BIDS_DATALAD_GET"
_POINTER_MAX = 1024


def is_annex_pointer(path: str | Path) -> bool:
    """True when ``path`` is an annexed file whose content is absent.

    Either a symlink whose target does not exist, or a small file holding an
    annex key (``/annex/objects/...``), as git-annex writes for unlocked files.
    """
    path = Path(path)
    if path.is_symlink() and not path.exists():
        return True
    try:
        if path.is_file() and path.stat().st_size <= _POINTER_MAX:
            with open(path, "rb") as fh:
                head = fh.read(_POINTER_MAX)
            return b"/annex/objects/" in head
    except OSError:
        return False
    return False


def missing_content(paths: Iterable[str | Path]) -> list[Path]:
    """The subset of ``paths`` that are annexed without content."""
    return [Path(p) for p in paths if is_annex_pointer(p)]


def get_requested(flag: bool | None = None) -> bool:
    """Whether to fetch: the ``--datalad-get`` flag, else the environment variable."""
    if flag:
        return True
    return os.environ.get(GET_ENV, "").lower() in ("1", "true", "yes", "on")


def get_command(paths: Sequence[str | Path]) -> str:
    """The shell command a user runs to fetch ``paths``."""
    return "datalad get " + " ".join(shlex.quote(str(p)) for p in paths)


def ensure_content(paths: Iterable[str | Path], get: bool = False) -> list[Path]:
    """Make sure every annexed input has its content, or raise one clear error.

    With ``get`` the missing files are fetched in one ``datalad get`` call per
    dataset; without it, AnnexContentMissingError names them and the command.
    Returns the files that were fetched.
    """
    missing = list(dict.fromkeys(missing_content(paths)))  # one CT label serves several MRIs
    if not missing:
        return []
    if not get:
        shown = missing[:3]
        more = f" and {len(missing) - len(shown)} more" if len(missing) > len(shown) else ""
        raise AnnexContentMissingError(
            f"annexed file content is not present ({len(missing)} file(s)"
            f"{': ' + ', '.join(map(str, shown[1:])) if len(shown) > 1 else ''}{more})",
            missing[0], f"run `{get_command(missing)}` or pass --datalad-get")
    try:
        import datalad.api as dl
    except ImportError:
        raise UsageError("--datalad-get needs the datalad package", missing[0],
                         "pip install 'totalseg_bids[datalad]'") from None
    by_dataset: dict[Path, list[str]] = {}
    for path in missing:
        root = dataset_of(path)
        by_dataset.setdefault(root, []).append(str(path))
    for root, files in by_dataset.items():
        log.info("datalad get %d file(s) in %s", len(files), root)
        try:
            dl.get(path=files, dataset=str(root), result_renderer="disabled", on_failure="stop")
        except Exception as exc:  # datalad raises IncompleteResultsError and others
            raise ExternalToolError(f"datalad get failed ({str(exc).splitlines()[0]})", files[0],
                                    "check the dataset's siblings with `datalad siblings`") from None
    still = missing_content(missing)
    if still:
        raise AnnexContentMissingError("content still absent after datalad get", still[0],
                                       "check that a sibling holds the content (`git annex whereis`)")
    return missing


def dataset_of(path: str | Path) -> Path:
    """The nearest enclosing folder holding a ``.datalad`` or ``.git`` entry."""
    path = Path(path).absolute()
    for parent in [path.parent, *path.parent.parents]:
        if (parent / ".datalad").exists() or (parent / ".git").exists():
            return parent
    return path.parent


def is_datalad_dataset(path: str | Path) -> bool:
    """True when ``path`` is (inside) a datalad dataset."""
    root = dataset_of(path)
    return (root / ".datalad").exists()


def save_outputs(dataset: str | Path, paths: Sequence[str | Path], message: str) -> None:
    """One ``datalad save`` for a batch's outputs (not one per file)."""
    if not paths:
        return
    try:
        import datalad.api as dl
    except ImportError:
        raise UsageError("--datalad-save needs the datalad package", dataset,
                         "pip install 'totalseg_bids[datalad]'") from None
    try:
        dl.save(path=[str(p) for p in paths], dataset=str(dataset), message=message,
                result_renderer="disabled", on_failure="stop")
    except Exception as exc:
        raise ExternalToolError(f"datalad save failed ({str(exc).splitlines()[0]})", dataset,
                                "check `datalad status` in that dataset") from None


def unsaved(dataset: str | Path, paths: Sequence[str | Path]) -> list[Path]:
    """The files under ``paths`` that ``datalad status`` reports as not saved."""
    import datalad.api as dl

    try:
        results = dl.status(path=[str(p) for p in paths], dataset=str(dataset), untracked="all",
                            result_renderer="disabled", on_failure="ignore", return_type="list")
    except Exception as exc:  # noqa: BLE001
        raise ExternalToolError(f"datalad status failed ({str(exc).splitlines()[0]})", dataset,
                                "check `datalad status` in that dataset") from None
    return sorted(Path(r["path"]) for r in results
                  if r.get("state") not in (None, "clean") and r.get("type") != "directory")


def head_commit(dataset: str | Path) -> str | None:
    """The commit ``HEAD`` of ``dataset`` names (None before the first commit)."""
    proc = subprocess.run(["git", "-C", str(dataset), "rev-parse", "--verify", "-q", "HEAD"],
                          capture_output=True, encoding="utf-8", errors="replace", check=False)
    return proc.stdout.strip() or None


def committed_files(dataset: str | Path, since: str | None) -> list[str]:
    """Files (relative to ``dataset``) changed by the commits after ``since``; a save that
    found nothing new (identical content rewritten) makes no commit and lists none."""
    now = head_commit(dataset)
    if now is None or now == since:
        return []
    cmd = (["git", "-C", str(dataset), "diff", "--name-only", "--no-renames", since, now] if since
           else ["git", "-C", str(dataset), "show", "--name-only", "--format=", now])
    proc = subprocess.run(cmd, capture_output=True, encoding="utf-8", errors="replace", check=False)
    return sorted(line for line in proc.stdout.splitlines() if line)


def git_annex_available() -> bool:
    """True when the ``git-annex`` program runs (datalad needs it)."""
    try:
        subprocess.run(["git-annex", "version"], capture_output=True, check=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return True
