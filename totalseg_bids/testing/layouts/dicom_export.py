"""A hospital archive's DICOM export, as de-identifiers and PACS write them.

Per patient folder (``PA<n>/ST<n>/SE<n>/IM<n>``, no file extensions): a CT
series in JPEG 2000 Lossless, an oblique MR T2 series in JPEG-LS Lossless, an
MR T1 series in JPEG Lossless (process 14), a deflated CT scout (localizer), a
derived MPR reformat in big-endian byte order and a stray single-slice MR
without SeriesDescription in RLE Lossless; beside them the RTSTRUCT, RTPLAN, RTDOSE and SR objects
pydicom ships, a ``DICOMDIR`` and a ``README.txt``. De-identified
(the default): PatientID, PatientName, StudyInstanceUID and
SeriesInstanceUID empty. Slices are written with pydicom from the phantom
anatomy; the compressed ones need pydicom's encoders (pylibjpeg-openjpeg,
pyjpegls) and GDCM (python-gdcm), as the ``test`` extra installs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from .common import LPS, oblique_grid, subject

NAME = "dicom-export"

CT_SOP, MR_SOP = "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4"
#: pydicom's own files that hospital exports hold beside the images
NON_IMAGES = ("rtstruct.dcm", "rtplan.dcm", "rtdose.dcm", "test-SR.dcm")


def slice_dataset(pixels: np.ndarray, position, row_dir, col_dir, spacing, tags: dict):
    """One uncompressed image slice (rows x columns int16) with its geometry and ``tags``."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = tags.get("SOPClassUID", CT_SOP)
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[repr(sorted(tags.items())), repr(list(position))])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    for key, value in tags.items():
        if key != "SOPClassUID":
            setattr(ds, key, value)
    ds.ImagePositionPatient = [round(float(v), 4) for v in position]
    ds.ImageOrientationPatient = [round(float(v), 6) for v in (*row_dir, *col_dir)]
    ds.PixelSpacing = [round(float(spacing[1]), 6), round(float(spacing[0]), 6)]  # row spacing, column spacing
    ds.SliceThickness = round(float(spacing[2]), 6)
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.PixelData = np.ascontiguousarray(pixels, "<i2").tobytes()
    return ds


def _encode(ds, syntax: str) -> None:
    """Re-encode a slice's pixel data (``syntax``: a pydicom UID name) as an archive would."""
    from pydicom import uid

    target = getattr(uid, syntax)
    if target == uid.JPEGLosslessSV1:
        return  # pydicom has no encoder for it: GDCM transcodes the written file (_jpeg_lossless)
    if target in (uid.JPEG2000Lossless, uid.JPEGLSLossless, uid.RLELossless):
        ds.compress(target)
    elif target == uid.ExplicitVRBigEndian:
        ds.PixelData = np.frombuffer(ds.PixelData, "<i2").astype(">i2").tobytes()
        ds.file_meta.TransferSyntaxUID = target
    else:
        ds.file_meta.TransferSyntaxUID = target


def _jpeg_lossless(path: Path) -> None:
    """Re-encode a written file as JPEG Lossless (process 14, selection value 1) with GDCM."""
    import gdcm

    reader = gdcm.ImageReader()
    reader.SetFileName(str(path))
    change = gdcm.ImageChangeTransferSyntax()
    change.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.JPEGLosslessProcess14_1))
    if not reader.Read() or not (change.SetInput(reader.GetImage()) or change.Change()):
        raise RuntimeError(f"GDCM could not re-encode {path}")
    writer = gdcm.ImageWriter()
    writer.SetFileName(str(path))
    writer.SetFile(reader.GetFile())
    writer.SetImage(change.GetOutput())
    if not writer.Write():
        raise RuntimeError(f"GDCM could not write {path}")


def write_series(data: np.ndarray, affine: np.ndarray, folder: Path, tags: dict, syntax: str = "ExplicitVRLittleEndian",
                 first: int = 1) -> list[Path]:
    """One file per k-slice of ``data`` (i along rows' direction... as DICOM: columns run along i),
    geometry from the RAS+ ``affine``; files ``IM<n>`` without extension."""
    from pydicom import dcmwrite

    m = LPS @ affine
    spacing = np.linalg.norm(m[:3, :3], axis=0)
    dirs = m[:3, :3] / spacing
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(data.shape[2]):
        ds = slice_dataset(data[:, :, k].T, m[:3, :3] @ [0, 0, k] + m[:3, 3], dirs[:, 0], dirs[:, 1], spacing,
                           {**tags, "InstanceNumber": k + 1})
        _encode(ds, syntax)
        path = folder / f"IM{first + k:05d}"
        dcmwrite(path, ds, enforce_file_format=True)  # encoded as the file meta's transfer syntax says
        if syntax == "JPEGLosslessSV1":
            _jpeg_lossless(path)
        paths.append(path)
    return paths


def _tags(pid: str, study: str, deidentified: bool, **extra) -> dict:
    ident = {"PatientID": "", "PatientName": "", "StudyInstanceUID": "", "SeriesInstanceUID": ""} if deidentified else {
        "PatientID": pid, "PatientName": pid, "StudyInstanceUID": study}
    return {**ident, "StudyDate": "20260101", "StudyTime": "120000", "SeriesDate": "20260101",
            "Manufacturer": "SIEMENS", "PatientPosition": "HFS", "FrameOfReferenceUID": f"{study}.9", **extra}


def series_plan(index: int) -> list[tuple[str, str, str, dict]]:
    """(folder, modality key, transfer syntax, tags) of patient ``index``'s image series."""
    ct = {"SOPClassUID": CT_SOP, "Modality": "CT", "RescaleIntercept": 0, "RescaleSlope": 1}
    mr = {"SOPClassUID": MR_SOP, "Modality": "MR", "MagneticFieldStrength": 3}
    m_nd = ["ORIGINAL", "PRIMARY", "M", "ND"]
    timed = lambda t: {"SeriesTime": t, "AcquisitionTime": t}  # noqa: E731
    return [
        ("SE000001", "CT", "JPEG2000Lossless", {**ct, "SeriesNumber": 2, "SeriesDescription": "Pelvis 2.0 Br40",
                                                "ImageType": ["ORIGINAL", "PRIMARY", "AXIAL"], **timed("120100"),
                                                "ProtocolName": "Pelvis"}),
        ("SE000002", "T2w", "JPEGLSLossless", {**mr, "SeriesNumber": 3, "SeriesDescription": "t2_tse_sag",
                                               "ProtocolName": "t2_tse_sag", "ImageType": m_nd, "EchoTime": 89,
                                               "RepetitionTime": 3500, **timed("121000")}),
        ("SE000003", "T1w", "JPEGLosslessSV1", {**mr, "SeriesNumber": 4, "SeriesDescription": "t1_tse_sag",
                                            "ProtocolName": "t1_tse_sag", "ImageType": m_nd, "EchoTime": 11,
                                            "RepetitionTime": 600, **timed("122000")}),
        ("SE000004", "scout", "DeflatedExplicitVRLittleEndian", {
            **ct, "SeriesNumber": 1, "SeriesDescription": "Topogram", "ImageType": ["ORIGINAL", "PRIMARY", "LOCALIZER"],
            **timed("115900")}),
        ("SE000005", "MPR", "ExplicitVRBigEndian", {**ct, "SeriesNumber": 5, "SeriesDescription": "Pelvis cor MPR",
                                                    "ImageType": ["DERIVED", "SECONDARY", "MPR"],
                                                    "SeriesTime": "123000"}),
        ("SE000006", "stray", "RLELossless", {**mr, "SeriesNumber": 99, "ImageType": ["ORIGINAL", "PRIMARY"],
                                                         **timed("124000")}),
    ]


def _volume(index: int, seed: int, key: str) -> tuple[np.ndarray, np.ndarray]:
    """The phantom image a series of ``series_plan`` holds, and its RAS+ affine."""
    if key in ("CT", "MPR", "scout"):
        data, _, grid = subject(index, seed, "CT")
        if key == "scout":
            return data[:, :, data.shape[2] // 2:data.shape[2] // 2 + 1], grid.affine
        if key == "MPR":
            return data[:, :, ::4], grid.affine @ np.diag([1.0, 1.0, 4.0, 1.0])
        return data, grid.affine
    grid = oblique_grid(index)
    data, _, _ = subject(index, seed, "T2w" if key != "T1w" else "T1w", grid)
    return (data[:, :, :1], grid.affine) if key == "stray" else (data, grid.affine)


def write(out, subjects: int = 1, seed: int = 0, deidentified: bool = True) -> Path:
    """The export of ``subjects`` patients at ``out`` (see the module docstring); returns ``out``."""
    import pydicom
    from pydicom.data import get_testdata_file

    root = Path(out)
    for i in range(subjects):
        pid, study = f"PAT{i + 1:02d}", f"1.2.826.0.1.3680043.8.498.{seed}.{i + 1}"
        base = root / f"PA{i + 1:06d}" / "ST000001"
        for folder, key, syntax, tags in series_plan(i):
            data, affine = _volume(i, seed, key)
            extra = {} if deidentified else {"SeriesInstanceUID": f"{study}.{tags['SeriesNumber']}"}
            write_series(data, affine, base / folder, {**_tags(pid, study, deidentified, **tags), **extra}, syntax)
        for n, name in enumerate(NON_IMAGES):  # each patient's own copy: its own series, de-identified alike
            ds = pydicom.dcmread(get_testdata_file(name, download=False), force=True)
            ds.SeriesInstanceUID = "" if deidentified else f"{study}.{90 + n}"
            ds.PatientID = ds.PatientName = "" if deidentified else pid
            (base / f"SE{90 + n:06d}").mkdir(parents=True, exist_ok=True)
            ds.save_as(base / f"SE{90 + n:06d}" / "IM00001")
    shutil.copyfile(get_testdata_file("DICOMDIR", download=False), root / "DICOMDIR")
    (root / "README.txt").write_text("Exported by the archive. Patient data removed.\n", encoding="utf-8")
    return root
