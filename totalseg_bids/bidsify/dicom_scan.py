"""A DICOM export as archives write it: every file's header, what kind of object it is, and its series.

Files are found by content, not by name (no extension, ``DICOMDIR``, nested
folders); headers are read only up to (0028,0011), so pixel data and the
vendors' private groups after it are never decoded. A series is its
``SeriesInstanceUID``; where a de-identifier emptied it, the fields that
still tell series apart (patient, study, series number, time, description,
frame of reference, image size and orientation) stand in for it.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

#: header fields read from every file (keyword -> how it is stored: text, or a list of strings)
TAGS = ("SOPClassUID", "ImageType", "StudyDate", "SeriesDate", "StudyTime", "SeriesTime", "Modality",
        "SeriesDescription", "PatientName", "PatientID", "ProtocolName", "StudyInstanceUID", "SeriesInstanceUID",
        "SeriesNumber", "ImageOrientationPatient", "FrameOfReferenceUID", "Rows", "Columns")
#: (0028,0011) Columns, the last of them: nothing after it is parsed
LAST_TAG = 0x00280011
#: what stands in for an emptied SeriesInstanceUID
FALLBACK_KEY = ("PatientID", "PatientName", "StudyInstanceUID", "StudyDate", "StudyTime", "SeriesNumber",
                "SeriesDate", "SeriesTime", "Modality", "SeriesDescription", "ProtocolName", "FrameOfReferenceUID",
                "Rows", "Columns", "ImageOrientationPatient")
IMAGE_MODALITIES = ("CT", "MR")
#: SOP classes that hold no image volume: the UID itself and every UID below it
NON_IMAGE_SOP = {
    "1.2.840.10008.1.3.10": "DICOMDIR (the export's index)",
    "1.2.840.10008.5.1.4.1.1.7": "secondary capture",
    "1.2.840.10008.5.1.4.1.1.11": "presentation state",
    "1.2.840.10008.5.1.4.1.1.88": "structured report",
    "1.2.840.10008.5.1.4.1.1.104": "encapsulated document",
    "1.2.840.10008.5.1.4.1.1.481": "radiotherapy object",
    "1.2.840.10008.5.1.4.1.1.66": "registration, segmentation or surface object",
}
NON_IMAGE_MODALITY = {"RTSTRUCT": "structure set", "RTPLAN": "radiotherapy plan", "RTDOSE": "dose grid",
                      "RTRECORD": "treatment record", "RTIMAGE": "portal image", "SR": "structured report",
                      "PR": "presentation state", "KO": "key object selection", "DOC": "encapsulated document",
                      "SEG": "segmentation object", "REG": "registration object", "OT": "other"}
#: threads reading headers at once (the scan is bound by file system latency, not by CPU)
READERS = 8
LOCALIZER_RE = re.compile(r"locali[sz]er|scout|topogram|surview|survey", re.I)


@dataclass
class Series:
    """The files of one series and the header of its first file (``tags``, strings)."""

    key: tuple
    files: list[Path] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)

    def folder_path(self) -> str:
        """The folder holding the series' files (their common parent)."""
        return os.path.commonpath([str(f.parent) for f in self.files])

    def folder(self, root: Path) -> str:
        """:meth:`folder_path` relative to ``root``."""
        common = Path(self.folder_path())
        return common.relative_to(root).as_posix() if common != root else "."

    def row(self, root: Path) -> dict:
        """What a person needs to recognise the series (the skip list, the ``--dry-run`` table)."""
        t = self.tags
        return {"folder": self.folder(root), "SeriesDescription": t["SeriesDescription"], "Modality": t["Modality"],
                "ImageType": t["ImageType"], "SeriesNumber": t["SeriesNumber"], "files": len(self.files)}


def _text(value) -> str:
    """A header value as text; multi-valued ones joined by backslashes, as DICOM writes them.

    >>> _text(["ORIGINAL", "PRIMARY"]), _text(None), _text(3)
    ('ORIGINAL\\\\PRIMARY', '', '3')
    """
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(_text(v) for v in value)
    return str(value).strip()


def _looks_like_dicom(head: bytes) -> bool | None:
    """True: a Part 10 file (``DICM`` preamble); None: maybe a bare data set (group 0008 first); False: not DICOM.

    >>> [_looks_like_dicom(h) for h in (b"\\0" * 128 + b"DICM", b"\\x08\\x00\\x05\\x00", b"README")]
    [True, None, False]
    """
    if head[128:132] == b"DICM":
        return True
    return None if head[:2] in (b"\x08\x00", b"\x00\x08") else False


def read_header(path: Path) -> dict[str, str] | None:
    """The :data:`TAGS` of one file ('' when absent), or None when it is not a readable DICOM file."""
    from pydicom.filereader import read_partial
    from pydicom.tag import Tag

    with open(path, "rb") as fh:  # OSError (unreadable, dangling link) goes to the caller
        kind = _looks_like_dicom(fh.read(132))
        if kind is False:
            return None
        fh.seek(0)
        try:
            ds = read_partial(fh, stop_when=lambda tag, vr, length: tag > LAST_TAG, force=kind is None,
                              specific_tags=[Tag(k) for k in TAGS])
            tags = {k: _text(ds.get(k)) for k in TAGS}
            meta = getattr(ds, "file_meta", None)
            if not tags["SOPClassUID"] and meta is not None:
                tags["SOPClassUID"] = _text(meta.get("MediaStorageSOPClassUID"))
        except Exception:  # noqa: BLE001 - not DICOM after all: the caller lists it
            return None
    return tags if (tags["SOPClassUID"] or tags["Modality"]) else None


def series_key(tags: dict[str, str]) -> tuple:
    """The series a file belongs to: its SeriesInstanceUID, else what still identifies the series.

    >>> series_key({"SeriesInstanceUID": "1.2.3"})
    ('uid', '1.2.3')
    >>> series_key({**dict.fromkeys(FALLBACK_KEY, ""), "SeriesInstanceUID": "", "SeriesNumber": "4"})[:1]
    ('fields',)
    """
    if tags["SeriesInstanceUID"]:
        return ("uid", tags["SeriesInstanceUID"])
    iop = tuple(round(float(v), 3) for v in tags["ImageOrientationPatient"].split("\\") if v) if tags.get(
        "ImageOrientationPatient") else ()
    return ("fields", *(tags[k] for k in FALLBACK_KEY if k != "ImageOrientationPatient"), iop)


def what_it_is(tags: dict[str, str], keep_derived: bool = False) -> str | None:
    """None for an image series ``bidsify`` converts, else why it is left out.

    >>> base = {"SOPClassUID": "1.2.840.10008.5.1.4.1.1.2", "Modality": "CT", "SeriesDescription": "abdomen"}
    >>> what_it_is({**base, "ImageType": "ORIGINAL\\\\PRIMARY\\\\AXIAL"}) is None
    True
    >>> what_it_is({**base, "ImageType": "DERIVED\\\\SECONDARY\\\\MPR"})
    'derived image (ImageType DERIVED\\\\SECONDARY\\\\MPR; --keep-derived converts it)'
    >>> what_it_is({**base, "Modality": "RTPLAN", "SOPClassUID": "1.2.840.10008.5.1.4.1.1.481.5", "ImageType": ""})
    'not an image: radiotherapy object (RTPLAN)'
    """
    modality, sop = tags["Modality"], tags["SOPClassUID"]
    for uid, what in NON_IMAGE_SOP.items():
        if sop == uid or sop.startswith(uid + "."):
            return f"not an image: {what}" + (f" ({modality})" if modality else "")
    if modality in NON_IMAGE_MODALITY:
        return f"not an image: {NON_IMAGE_MODALITY[modality]} ({modality})"
    if modality not in IMAGE_MODALITIES:
        return f"modality {modality or 'missing'}: only CT and MR series are converted"
    kinds = {v.upper() for v in tags["ImageType"].split("\\")}
    if keep_derived:
        return None
    if "LOCALIZER" in kinds or LOCALIZER_RE.search(tags["SeriesDescription"] or tags["ProtocolName"]):
        return f"localizer (ImageType {tags['ImageType'] or '-'}; --keep-derived converts it)"
    if kinds & {"DERIVED", "SECONDARY"}:
        return f"derived image (ImageType {tags['ImageType']}; --keep-derived converts it)"
    return None


def dicom_files(root: Path, unreadable: list[tuple[Path, str]] | None = None) -> list[Path]:
    """Every visible file below ``root`` (any name, any depth), sorted; folders that cannot be
    listed are added to ``unreadable`` with the reason."""
    found = []
    def on_error(exc: OSError) -> None:
        if unreadable is not None:
            unreadable.append((Path(exc.filename), exc.strerror or str(exc)))

    for folder, dirs, files in os.walk(root, onerror=on_error):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(folder) / f for f in files if not f.startswith(".")]
    return sorted(found)


def _header_or_error(path: Path) -> dict[str, str] | None | OSError:
    try:
        return read_header(path)
    except OSError as exc:
        return exc


def scan(files: list[Path], unreadable: list[tuple[Path, str]] | None = None) -> tuple[list[Series], list[Path]]:
    """The series among ``files`` (in the order of their first file) and the files that are not DICOM;
    files that cannot be opened are added to ``unreadable`` with the reason."""
    series: dict[tuple, Series] = {}
    strays = []
    # reading headers waits on the disk more than on Python: a few threads overlap those waits
    with ThreadPoolExecutor(max_workers=READERS) as pool:
        headers = list(pool.map(_header_or_error, files))
    for path, tags in zip(files, headers):
        if isinstance(tags, OSError):
            if unreadable is not None:
                unreadable.append((path, tags.strerror or str(tags)))
            continue
        if tags is None:
            strays.append(path)
            continue
        entry = series.setdefault(series_key(tags), Series(series_key(tags), tags=tags))
        entry.files.append(path)
    return list(series.values()), strays
