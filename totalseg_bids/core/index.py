"""A fast BIDS file index (no pybids on the hot path).

Walks ``sub-*/[ses-*/]<datatype>/`` with ``os.scandir`` only, parses each name
once, and skips ``sourcedata/``, ``derivatives/`` (unless asked), ``code/``,
hidden entries and temporary files. A 5,000-subject tree indexes in seconds.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .bids import BidsName
from .errors import InputError, MissingFileError
from .folders import DERIVATIVES, derivative_dir

NIFTI_EXTENSIONS = (".nii.gz", ".nii")


@dataclass(frozen=True)
class BidsFile:
    """One indexed file: its path, dataset root, datatype folder and parsed name."""

    path: Path
    root: Path
    datatype: str
    name: BidsName

    @property
    def subject(self) -> str:
        return self.name.subject

    @property
    def session(self) -> str | None:
        return self.name.session

    @property
    def suffix(self) -> str | None:
        return self.name.suffix

    @property
    def relpath(self) -> str:
        return self.path.relative_to(self.root).as_posix()


def _scan_dir(path: str) -> Iterator[os.DirEntry]:
    try:
        with os.scandir(path) as it:
            yield from it
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return


def _files_in_datatype(root: Path, folder: str, datatype: str,
                       extensions: Sequence[str]) -> Iterator[BidsFile]:
    for entry in _scan_dir(folder):
        name = entry.name
        if name.startswith(".") or not name.endswith(tuple(extensions)):
            continue
        parsed = BidsName.try_parse(name)
        if parsed is None:
            continue
        # follow symlinks lazily: annexed files are links, present or not
        yield BidsFile(Path(entry.path), root, datatype, parsed)


def _walk_subject(root: Path, subject_path: str, extensions: Sequence[str]) -> Iterator[BidsFile]:
    for entry in _scan_dir(subject_path):
        if entry.name.startswith("."):
            continue
        if entry.name.startswith("ses-") and entry.is_dir():
            for sub_entry in _scan_dir(entry.path):
                if not sub_entry.name.startswith(".") and sub_entry.is_dir():
                    yield from _files_in_datatype(root, sub_entry.path, sub_entry.name, extensions)
        elif entry.is_dir():
            yield from _files_in_datatype(root, entry.path, entry.name, extensions)


class BidsIndex:
    """The NIfTI files of one BIDS dataset (raw or derivative folder).

    >>> idx = BidsIndex.scan("/nonexistent", must_exist=False)
    >>> len(idx)
    0
    """

    def __init__(self, root: Path, files: list[BidsFile]):
        self.root = root
        self.files = files

    @classmethod
    def scan(cls, root: str | Path, extensions: Sequence[str] = NIFTI_EXTENSIONS,
             must_exist: bool = True) -> BidsIndex:
        root = Path(root)
        if must_exist:
            if not root.exists():
                raise MissingFileError("dataset folder not found", root, "check the path")
            if not root.is_dir():
                raise InputError("not a folder", root, "give the BIDS dataset folder")
        files: list[BidsFile] = []
        for entry in _scan_dir(str(root)):
            if entry.name.startswith("sub-") and entry.is_dir():
                files.extend(_walk_subject(root, entry.path, extensions))
        files.sort(key=lambda f: str(f.path))
        return cls(root, files)

    @classmethod
    def scan_derivatives(cls, root: str | Path, name: str | None = None) -> BidsIndex:
        """Index ``<root>/derivatives/<name>`` (or all derivative folders)."""
        root = Path(root)
        folders = [derivative_dir(root, name)] if name else sorted(
            p for p in (root / DERIVATIVES).glob("*") if p.is_dir() and not p.name.startswith("."))
        files: list[BidsFile] = []
        for folder in folders:
            files.extend(cls.scan(folder, must_exist=False).files)
        return cls(root, files)

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[BidsFile]:
        return iter(self.files)

    @property
    def subjects(self) -> list[str]:
        return sorted({f.subject for f in self.files})

    def query(self, suffix: str | Iterable[str] | None = None, subject: str | None = None,
              session: str | None = None, derivative: bool | None = None,
              datatype: str | Iterable[str] | None = None, **entities: str) -> list[BidsFile]:
        """Files matching all criteria; ``suffix``/``datatype`` may be lists."""
        suffixes = {suffix} if isinstance(suffix, str) else (set(suffix) if suffix else None)
        datatypes = {datatype} if isinstance(datatype, str) else (set(datatype) if datatype else None)
        out = []
        for f in self.files:
            n = f.name
            if derivative is not None and n.is_derivative != derivative:
                continue
            if suffixes is not None and n.suffix not in suffixes:
                continue
            if datatypes is not None and f.datatype not in datatypes:
                continue
            if subject is not None and n.subject != subject:
                continue
            if session is not None and n.session != session:
                continue
            ents = n.entity_dict
            if any(ents.get(k) != v for k, v in entities.items()):
                continue
            out.append(f)
        return out


def find_images(root: str | Path, suffixes: Iterable[str],
                datatypes: Iterable[str] | None = None) -> list[BidsFile]:
    """Raw (non-derivative) NIfTI images of ``root`` with one of ``suffixes``."""
    return BidsIndex.scan(root).query(suffix=list(suffixes), derivative=False, datatype=datatypes)
