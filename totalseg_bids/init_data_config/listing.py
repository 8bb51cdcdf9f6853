"""Path lists (one label or image per line, as ``find ... > list.txt`` writes them): reading them,
resolving their relative paths, and naming the files an error is about."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from ..core.errors import InputError, MissingFileError

log = logging.getLogger(__name__)

#: How many offending files an error line names before "(+N more)".
SHOWN = 3


def parse_path_lines(text: str) -> tuple[list[str], list[str]]:
    """Entries of a path list (one per line) and the duplicates that were dropped.

    Blank lines and ``#`` comment lines are skipped so lists can be annotated
    by hand; ``find ... > list.txt`` output works as is.

    >>> parse_path_lines("a.nii.gz\\n\\n# comment\\n  b.nii.gz \\r\\na.nii.gz\\n")
    (['a.nii.gz', 'b.nii.gz'], ['a.nii.gz'])
    """
    seen: dict[str, None] = {}
    dups: list[str] = []
    for line in text.lstrip("\ufeff").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line in seen:
            dups.append(line)
        else:
            seen[line] = None
    return list(seen), dups


def default_output(txt: str | Path) -> Path:
    """The legacy output path: the list file with ``.txt`` replaced by ``.json``.

    >>> str(default_output("lists/train_sacrum.txt"))
    'lists/train_sacrum.json'
    >>> str(default_output("train_list"))
    'train_list.json'
    """
    txt = Path(txt)
    stem = txt.name[:-4] if txt.name.lower().endswith(".txt") else txt.name
    return txt.with_name(stem + ".json")


def listing(items: Sequence[tuple[Path | str, str]], total: int, what: str) -> str:
    """``'2 of 9 <what>: a (why); b (why)'`` with at most SHOWN shown.

    >>> listing([("a", "file not found")], 4, "listed files unusable")
    '1 of 4 listed files unusable: a (file not found)'
    """
    shown = "; ".join(f"{p} ({why})" for p, why in items[:SHOWN])
    more = f" (+{len(items) - SHOWN} more)" if len(items) > SHOWN else ""
    return f"{len(items)} of {total} {what}: {shown}{more}"


def absolute(path: str | Path) -> Path:
    """Absolute without resolving symlinks: annexed files are links into
    ``.git/annex`` and must keep their dataset path."""
    return Path(os.path.abspath(os.path.expanduser(str(path))))


def read_path_list(txt: str | Path, cwd: str | Path | None = None,
                   datasets_path: str | Path | None = None) -> list[Path]:
    """The absolute paths listed in ``txt``, relative ones looked up from
    ``cwd`` (legacy), then the list's folder, then ``datasets_path``."""
    txt = Path(txt)
    if not txt.exists():
        raise MissingFileError("path list not found", txt, "check the --txt path")
    if txt.is_dir():
        raise InputError("is a folder, not a path list", txt,
                         "give a text file with one path per line (e.g. find ~+ -name '*_seg.nii.gz' > list.txt)")
    try:
        raw = txt.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the path list ({exc.strerror})", txt, "check its permissions") from None
    try:
        if b"\x00" in raw:
            raise UnicodeDecodeError("utf-8", raw, 0, 1, "NUL byte")
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("not a text file (binary content)", txt,
                         "give a UTF-8 text file with one path per line") from None
    lines, dups = parse_path_lines(text)
    if not lines:
        raise InputError("lists no paths", txt, "put one label or image path per line")
    bases = [absolute(cwd or os.getcwd()), absolute(txt).parent]
    if datasets_path is not None:
        bases.append(absolute(datasets_path))
    bases = list(dict.fromkeys(bases))
    out: dict[Path, None] = {}
    for line in lines:
        path = _resolve_listed(line, bases)
        if path in out:
            dups.append(line)
        out[path] = None
    if dups:
        log.warning("%s: %d duplicate line(s) dropped (e.g. %s)", txt, len(dups), dups[0])
    return list(out)


def _resolve_listed(entry: str, bases: Sequence[Path]) -> Path:
    """An absolute path for one list entry (the first base where it exists)."""
    p = Path(os.path.expanduser(entry))
    if p.is_absolute():
        return absolute(p)
    candidates = [absolute(base / p) for base in bases]
    for cand in candidates:
        if cand.exists() or cand.is_symlink():
            return cand
    return candidates[0]
