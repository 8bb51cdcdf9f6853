"""Atomic outputs (the locks live in :mod:`.locks`).

Every output is written to a temporary file in the destination folder and
renamed into place, so a crash (even SIGKILL) never leaves a truncated file
under the final name, and readers never see a half-written one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import OutputError
from .locks import file_lock  # noqa: F401 - part of this module's API

TMP_PREFIX = ".tmp-"


def _split_ext(name: str) -> tuple[str, str]:
    """Split a file name into stem and (possibly double) extension.

    >>> _split_ext("sub-01_T2w.nii.gz")
    ('sub-01_T2w', '.nii.gz')
    >>> _split_ext("dataset.json")
    ('dataset', '.json')
    """
    for ext in (".nii.gz", ".tar.gz"):
        if name.endswith(ext):
            return name[: -len(ext)], ext
    stem, ext = os.path.splitext(name)
    return stem, ext


def make_parent(path: Path) -> None:
    """Create ``path``'s folder, turning permission problems into OutputError."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create folder ({exc.strerror})", path.parent,
                          "choose a writable output folder") from None


@contextlib.contextmanager
def atomic_path(final: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``final``; rename it into place on success.

    The temporary name keeps the extension (nibabel picks the format from it)
    and starts with ``.tmp-`` so indexes skip it. On any exception the
    temporary file is removed and ``final`` is left untouched.
    """
    final = Path(final)
    if final.is_dir():
        raise OutputError("is a folder, expected a file name", final,
                          f"give a file path, e.g. {final / ('output' + _split_ext(final.name)[1])}")
    make_parent(final)
    stem, ext = _split_ext(final.name)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{stem}.", suffix=ext, dir=final.parent)
    except OSError as exc:
        raise OutputError(f"cannot write ({exc.strerror})", final.parent,
                          "choose a writable output folder") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, final)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def all_or_nothing(*paths: str | Path | None) -> Iterator[None]:
    """The files of one output (a mask, its transform, lookup table and sidecar) end up all written or
    none: when the body raises (an error, Ctrl-C, SIGTERM from a time limit) the ones in ``paths`` are
    removed, so no mask is left without its sidecar and a rerun redoes the output.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> try:
    ...     with all_or_nothing(folder / "a_seg.nii.gz", folder / "a_seg.json"):
    ...         atomic_write_text(folder / "a_seg.nii.gz", "mask")
    ...         raise KeyboardInterrupt
    ... except KeyboardInterrupt:
    ...     sorted(p.name for p in folder.iterdir())
    []
    """
    try:
        yield
    except BaseException:
        for path in paths:
            if path is not None:
                with contextlib.suppress(OSError):
                    Path(path).unlink()
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (fsync before rename)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write_json(path: str | Path, data: Any) -> None:
    """Write JSON with two-space indent and a trailing newline, atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def atomic_copy(src: str | Path, dst: str | Path) -> None:
    """Copy a file atomically (never a partial ``dst``)."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def ensure_writable_dir(folder: str | Path) -> Path:
    """Create ``folder`` and prove it is writable, once, before a batch starts:
    one clear error instead of the same failure for every subject."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=TMP_PREFIX, dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"cannot write ({exc.strerror})", folder, "choose a writable output folder") from None
    return folder
