"""Gold Atlas male pelvis: one DICOM folder per patient (``<site>_<nn>_P/``)
holding, mixed in one folder, a CT, an MR T1 and an MR T2 series, the CT
deformed onto the MR T2, and an RTSTRUCT whose sacrum and L5 contours are
drawn on the CT slices (each contour references its CT image's SOPInstanceUID)."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..anatomy import phantom_grids
from .common import LPS, subject
from .dicom import write_series

NAME = "goldatlas"
UID = "1.2.826.0.1.3680043.8.498"
RTSTRUCT_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
CT_CLASS = "1.2.840.10008.5.1.4.1.1.2"
#: ROI name -> phantom structure label drawn as RTSTRUCT contours
ROIS = {"Sacrum": 1, "L5": 2}


def folder_name(index: int) -> str:
    """Patient folder of phantom ``index``, as the atlas names them.

    >>> folder_name(0), folder_name(11)
    ('1_01_P', '2_12_P')
    """
    return f"{1 + index // 10}_{index + 1:02d}_P"


def slice_contours(mask: np.ndarray, affine: np.ndarray, k: int) -> list[np.ndarray]:
    """Closed contours (M, 3, LPS mm) of ``mask[:, :, k]`` on the level 0.5 line."""
    from skimage.measure import find_contours

    plane = np.pad(mask[:, :, k].astype(float), 1)
    out = []
    for c in find_contours(plane, 0.5):
        if len(c) < 4:
            continue
        c = c[:-1] if np.allclose(c[0], c[-1]) else c  # DICOM closes the polygon implicitly
        ijk = np.column_stack([c[:, 0] - 1, c[:, 1] - 1, np.full(len(c), float(k)), np.ones(len(c))])
        out.append((LPS @ affine @ ijk.T).T[:, :3])
    return out


def _series(data, affine, folder: Path, prefix: str, tags: dict) -> None:
    """A series written slice by slice, its files moved into the patient folder."""
    scratch = folder / f".{prefix}"
    write_series(data, affine, scratch, dict(tags))
    for f in sorted(scratch.iterdir()):
        f.rename(folder / f"{prefix}.{f.name}")
    shutil.rmtree(scratch)


def write_rtstruct(path: Path, labels: np.ndarray, affine: np.ndarray, ct_tags: dict, uid: str,
                   rois: Mapping[str, int] = ROIS) -> Path:
    """An RT Structure Set (pydicom) with one closed-planar contour set per ROI (``rois``: ROI name ->
    the value of ``labels`` it outlines)."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = RTSTRUCT_CLASS, uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = RTSTRUCT_CLASS, uid, "RTSTRUCT"
    ds.PatientID = ds.PatientName = ct_tags["0010|0020"]
    ds.StudyInstanceUID, ds.SeriesInstanceUID = ct_tags["0020|000d"], f"{uid}.0"
    ds.FrameOfReferenceUID = ct_tags["0020|0052"]
    ds.SeriesDescription, ds.StructureSetLabel, ds.SeriesNumber = "RTSTRUCT consensus", "consensus", 9
    ct_series = ct_tags["0020|000e"]
    images = Sequence([_ref(CT_CLASS, f"{ct_series}.{k + 1}") for k in range(labels.shape[2])])
    series = Dataset()
    series.SeriesInstanceUID, series.ContourImageSequence = ct_series, images
    study = _ref("1.2.840.10008.3.1.2.3.1", ct_tags["0020|000d"])
    study.RTReferencedSeriesSequence = Sequence([series])
    frame = Dataset()
    frame.FrameOfReferenceUID, frame.RTReferencedStudySequence = ds.FrameOfReferenceUID, Sequence([study])
    ds.ReferencedFrameOfReferenceSequence = Sequence([frame])
    ds.StructureSetROISequence, ds.ROIContourSequence, ds.RTROIObservationsSequence = Sequence(), Sequence(), Sequence()
    for number, (name, value) in enumerate(rois.items(), start=1):
        roi = Dataset()
        roi.ROINumber, roi.ReferencedFrameOfReferenceUID, roi.ROIName = number, ds.FrameOfReferenceUID, name
        roi.ROIGenerationAlgorithm = "MANUAL"
        ds.StructureSetROISequence.append(roi)
        contours = Dataset()
        contours.ReferencedROINumber, contours.ROIDisplayColor = number, [255, 0, 0]
        contours.ContourSequence = Sequence()
        mask = labels == value
        for k in range(mask.shape[2]):
            for pts in slice_contours(mask, affine, k):
                c = Dataset()
                c.ContourImageSequence = Sequence([_ref(CT_CLASS, f"{ct_series}.{k + 1}")])
                c.ContourGeometricType, c.NumberOfContourPoints = "CLOSED_PLANAR", len(pts)
                c.ContourData = [f"{v:.4f}" for v in pts.ravel()]
                contours.ContourSequence.append(c)
        ds.ROIContourSequence.append(contours)
        obs = Dataset()
        obs.ObservationNumber, obs.ReferencedROINumber, obs.RTROIInterpretedType = number, number, "ORGAN"
        ds.RTROIObservationsSequence.append(obs)
    try:
        pydicom.dcmwrite(path, ds, enforce_file_format=True)  # pydicom >= 3
    except TypeError:
        pydicom.dcmwrite(path, ds, write_like_original=False)
    return path


def _ref(sop_class: str, sop_instance: str):
    from pydicom.dataset import Dataset

    ref = Dataset()
    ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = sop_class, sop_instance
    return ref


def write(out, subjects: int = 2, seed: int = 0) -> Path:
    """Per patient: CT (2 mm), oblique MR T1, sagittal MR T2, CT deformed to MR, RTSTRUCT."""
    root = Path(out)
    for i in range(subjects):
        folder = root / folder_name(i)
        folder.mkdir(parents=True, exist_ok=True)
        study = f"{UID}.{seed}.{i + 1}"
        base = {"0010|0010": folder.name, "0010|0020": folder.name, "0020|000d": study,
                "0020|0052": f"{study}.99", "0008|0020": "20260101", "0008|0030": "120000",
                "0008|0070": "totalseg_bids phantom"}
        grids = phantom_grids(i, 2.0)
        ct, labels, grid = subject(i, seed, "CT", grids["CT"])
        ct_tags = {**base, "0008|0060": "CT", "0008|103e": "CT pelvis", "0020|000e": f"{study}.1", "0020|0011": "1"}
        _series(ct, grid.affine, folder, "CT", ct_tags)
        for n, (key, desc) in enumerate((("T1w", "MR T1 3D"), ("T2w", "MR T2 3D")), start=2):
            mr, _, _ = subject(i, seed, key, grids[key])
            _series(mr, grids[key].affine, folder, f"MR{n}", {**base, "0008|0060": "MR", "0008|103e": desc,
                                                                "0020|000e": f"{study}.{n}", "0020|0011": str(n)})
        deformed, _, _ = subject(i, seed, "CT", grids["T2w"])
        _series(deformed, grids["T2w"].affine, folder, "CT4", {
            **base, "0008|0060": "CT", "0008|103e": "CTtoMR deformed", "0020|000e": f"{study}.4", "0020|0011": "4"})
        write_rtstruct(folder / "RS.consensus.dcm", labels, grid.affine, ct_tags, f"{study}.5")
    return root
