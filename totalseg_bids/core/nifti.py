"""NIfTI I/O: reading with one-line errors, writing masks and images, the geometry policy
(docs/conventions.md section 3).

Policy, in one place (grids and resampling: :mod:`.geometry`):

* The affine of record is nibabel's ``img.affine`` (the sform when its code is
  non-zero, else the qform). When both are set and map the field of view more
  than :data:`QFORM_SFORM_TOLERANCE_MM` apart, we log a warning with the size
  of the disagreement and still follow nibabel's choice.
* Masks are written as ``uint8`` (``uint16`` above 255 classes), unscaled, with
  ``qform == sform == affine`` and both codes 1, atomically.
* Labels are resampled by nearest neighbour, or per label linearly then
  argmax (threshold 0.5 for one label); never linearly as integers.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .datalad import get_command, is_annex_pointer
from .errors import AnnexContentMissingError, InputError, MissingFileError

# the grid helpers live in .geometry; stages that read and resample in one place import them from here too
from .geometry import (  # noqa: F401
    GRID_ATOL,
    Grid,
    apply_affine,
    axcodes,
    dice,
    grid_mismatch,
    grids_overlap,
    nonzero_bbox,
    resample_image,
    resample_label,
    same_grid,
    shape3,
    touches_edge,
    voxel_volume_ml,
)
from .gzip_codec import codec_errors, open_write, read_into
from .resume import gzip_size_matches, recreate_fix

log = logging.getLogger(__name__)

QFORM_SFORM_TOLERANCE_MM = 0.1
_NIFTI_EXTENSIONS = (".nii", ".nii.gz")
#: nibabel writes Fortran order, copying a C-ordered array slab by slab at about 150 MB/s; arrays up
#: to this size are made Fortran-ordered in one pass first (about 10x faster), larger ones keep
#: nibabel's bounded-memory slabs
FORTRAN_COPY_MAX_BYTES = 64 << 20


# ------------------------------------------------------------------ reading
def check_input_file(path: str | Path) -> Path:
    """Raise a clear error unless ``path`` is a present, non-empty file."""
    path = Path(path)
    if is_annex_pointer(path):
        raise AnnexContentMissingError("annexed file content is not present", path,
                                       f"run `{get_command([path])}` or pass --datalad-get")
    if not path.exists():
        raise MissingFileError("file not found", path, "check the path")
    if path.is_dir():
        raise InputError("is a folder, expected a file", path, "give a file path")
    if path.stat().st_size == 0:
        raise InputError("file is empty", path, "re-create or re-download it")
    return path


def load_nifti(path: str | Path, check_forms: bool = True):
    """Load a NIfTI header (data stays on disk) with one-line errors.

    Checks the file exists and is not an annex pointer, that it is gzip when
    named ``.nii.gz`` and NIfTI at all, and reports qform/sform disagreement.
    """
    import nibabel as nib

    path = check_input_file(path)
    name = path.name
    if not name.endswith(_NIFTI_EXTENSIONS):
        raise InputError("not a NIfTI file name (.nii or .nii.gz)", path, "convert it to NIfTI")
    if name.endswith(".gz"):
        with open(path, "rb") as fh:
            if fh.read(2) != b"\x1f\x8b":
                raise InputError("not a gzip file although named .nii.gz", path,
                                 "re-create the file (or rename it .nii if it is uncompressed NIfTI)")
    try:
        img = nib.load(str(path))
    except (EOFError, OSError, zlib.error, gzip.BadGzipFile) as exc:
        raise InputError(f"truncated or corrupt file ({type(exc).__name__})", path,
                         "re-copy the file or `datalad get` it again") from None
    except Exception as exc:  # nibabel's ImageFileError and header errors
        raise InputError(f"not a readable NIfTI image ({str(exc).splitlines()[0][:120]})", path,
                         "check the file is a NIfTI-1/2 image") from None
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise InputError("not a NIfTI image", path, "convert it to NIfTI")
    if name.endswith(".gz") and not gzip_size_matches(path, img):
        raise InputError("truncated or corrupt file (its size does not match its header)", path,
                         recreate_fix(path))
    if check_forms:
        check_qform_sform(img, path)
    return img



def qform_sform_discrepancy(img) -> float:
    """Largest distance (mm) between where the qform and the sform put the
    field-of-view corners; 0 when either form is unset."""
    hdr = img.header
    qcode, scode = int(hdr["qform_code"]), int(hdr["sform_code"])
    if qcode == 0 or scode == 0:
        return 0.0
    grid_q = Grid(tuple(img.shape[:3]), img.get_qform())
    grid_s = Grid(tuple(img.shape[:3]), img.get_sform())
    return float(np.linalg.norm(grid_q.corners() - grid_s.corners(), axis=1).max())


def check_qform_sform(img, path: str | Path, tolerance: float = QFORM_SFORM_TOLERANCE_MM) -> float:
    """Warn when qform and sform disagree beyond ``tolerance``; return the gap (mm)."""
    gap = qform_sform_discrepancy(img)
    if gap > tolerance:
        log.warning("%s: qform and sform disagree by %.3g mm; following the %s (nibabel's choice)",
                    path, gap, "sform" if int(img.header["sform_code"]) > 0 else "qform")
    return gap


def check_3d_shape(shape: Sequence[int], path: str | Path | None = None) -> tuple[int, int, int]:
    """The 3D shape of an image; trailing dimensions of size 1 are dropped, anything
    else (2D, a time series) is an InputError.

    >>> check_3d_shape((4, 5, 6, 1))
    (4, 5, 6)
    >>> check_3d_shape((4, 5, 6, 2), "x.nii.gz")
    Traceback (most recent call last):
    ...
    totalseg_bids.core.errors.InputError: x.nii.gz: expected a 3D image, got shape (4, 5, 6, 2); \
extract one 3D volume (e.g. with fslroi or nibabel)
    """
    dims = tuple(int(s) for s in shape)
    if len(dims) < 3 or any(s != 1 for s in dims[3:]):
        raise InputError(f"expected a 3D image, got shape {dims}", path,
                         "extract one 3D volume (e.g. with fslroi or nibabel)")
    return shape3(dims)


@contextlib.contextmanager
def readable_data(path: str | Path) -> Iterator[None]:
    """Decompression and read errors inside the block become one :class:`InputError` naming ``path``."""
    try:
        yield
    except (EOFError, OSError, zlib.error, gzip.BadGzipFile, ValueError) + codec_errors() as exc:
        raise InputError(f"truncated or corrupt image data ({type(exc).__name__})", path,
                         "re-copy the file or `datalad get` it again") from None


def read_data(img, path: str | Path, dtype=None) -> np.ndarray:
    """The image's array (scaled), 3D, with corrupt-data errors made readable.

    A 4D image whose extra dimensions are all 1 is squeezed to 3D.
    """
    with readable_data(path):
        data = _read_gzip_array(img, path)
        if data is None:
            data = np.asanyarray(img.dataobj)
    shape = check_3d_shape(data.shape, path)
    if data.ndim > 3:
        data = data.reshape(shape)
    if dtype is not None:
        data = data.astype(dtype, copy=False)
    return data


def _read_gzip_array(img, path: str | Path) -> np.ndarray | None:
    """The unscaled array of a ``.nii.gz`` decompressed straight into its buffer
    (see :mod:`.gzip_codec`), or None where nibabel's own reader is needed
    (scaling, foreign byte order, uncompressed files, in-memory images)."""
    from nibabel.arrayproxy import ArrayProxy

    proxy = img.dataobj
    if not (isinstance(proxy, ArrayProxy) and str(path).endswith(".gz")
            and str(getattr(proxy, "file_like", "")) == str(path)):
        return None
    dtype = np.dtype(proxy.dtype)
    slope, inter = float(proxy.slope), float(proxy.inter)
    if not dtype.isnative or slope != 1.0 or inter != 0.0:
        return None
    out = np.empty(proxy.shape, dtype=dtype, order=proxy.order)
    read_into(path, out, skip=int(proxy.offset))
    return out


@dataclass
class Volume:
    """A 3D array with its affine and the file it came from.

    A volume may hold only a box of its file (:func:`.label_box.load_label_box`
    reads just the labelled box of a large CT label): ``origin`` is then the
    file index of ``data[0, 0, 0]`` and ``shape`` the file's shape, so ``grid``
    is always the whole file's grid.
    """

    data: np.ndarray
    affine: np.ndarray
    path: Path | None = None
    header: object | None = None
    origin: tuple[int, int, int] = (0, 0, 0)
    shape: tuple[int, int, int] | None = None

    @property
    def grid(self) -> Grid:
        shape = self.shape if self.shape is not None else self.data.shape[:3]
        return Grid(shape3(shape), np.asarray(self.affine, float))


def load_image(path: str | Path, dtype=np.float32) -> Volume:
    """Load an intensity image as float; NaN/inf are refused (they break
    registration and nnU-Net normalisation silently)."""
    img = load_nifti(path)
    data = read_data(img, path, dtype=dtype)
    if np.issubdtype(data.dtype, np.floating) and not np.isfinite(data).all():
        raise InputError("image contains NaN or infinite values", path,
                         "replace them (e.g. np.nan_to_num) before processing")
    return Volume(data, np.asarray(img.affine, float), Path(path), img.header)


def load_label(path: str | Path, allowed: Iterable[int] | None = None, binary: bool = False) -> Volume:
    """Load a label map as integers, refusing non-integer or unexpected values.

    ``allowed`` lists the values that may appear (0 is always allowed);
    ``binary`` means only 0 and 1.
    """
    img = load_nifti(path)
    return Volume(label_array(img, path, allowed, binary), np.asarray(img.affine, float), Path(path), img.header)


def label_array(img, path: str | Path, allowed: Iterable[int] | None = None, binary: bool = False) -> np.ndarray:
    """The checked integer array of an already opened label image (see :func:`load_label`).

    Every stage refuses the same things with the same words: NaN, non-integer
    (soft or interpolated) values, negative values, values outside ``allowed``.
    """
    return check_label_values(read_data(img, path), path, allowed, binary)


def check_label_values(data: np.ndarray, path: str | Path, allowed: Iterable[int] | None = None,
                       binary: bool = False) -> np.ndarray:
    """``data`` as the smallest unsigned integer type, or the one-line error of :func:`label_array`.

    >>> check_label_values(np.array([0.0, 2.0]), "x.nii.gz").dtype.name
    'uint8'
    """
    if np.issubdtype(data.dtype, np.floating):
        if not np.isfinite(data).all():
            raise InputError("label contains NaN or infinite values", path, "fix the label file")
        rounded = np.rint(data)
        if not np.array_equal(rounded, data):
            raise InputError("label has non-integer values (a soft or interpolated mask?)", path,
                             "threshold it at 0.5 or re-create it with nearest-neighbour interpolation")
        data = rounded
    if data.size and not np.issubdtype(data.dtype, np.unsignedinteger) and data.min() < 0:
        raise InputError(f"label has negative values (min {data.min():g})", path, "fix the label file")
    maxval = int(data.max()) if data.size else 0
    data = data.astype(np.uint8 if maxval <= 255 else np.uint16 if maxval <= 65535 else np.uint32, copy=False)
    if binary:
        allowed = (1,)
    if allowed is not None:
        ok = {int(a) for a in allowed} | {0}
        # the maximum alone proves a binary label; otherwise look at the labelled box only
        if not set(range(maxval + 1)) <= ok:
            unexpected = sorted(present_values(data) - ok)
            if unexpected:
                raise InputError(f"label has unexpected values {unexpected[:10]} "
                                 f"(expected {sorted(ok - {0})})", path,
                                 "pass the right label value or fix the label")
    return data


def load_grid(path: str | Path) -> Grid:
    """The grid of a NIfTI file, reading only its header."""
    img = load_nifti(path, check_forms=False)
    if len(img.shape) < 3 or (len(img.shape) > 3 and any(s != 1 for s in img.shape[3:])):
        raise InputError(f"expected a 3D image, got shape {tuple(img.shape)}", path,
                         "extract one 3D volume")
    return Grid.of(img)


# ------------------------------------------------------------------ writing
def nifti_image(data: np.ndarray, affine: np.ndarray, header=None):
    """The nibabel image every writer here saves: qform and sform both the affine (code 1), mm units,
    so any reader (ITK, FSL, nibabel) finds the same geometry."""
    import nibabel as nib

    if isinstance(data, np.ndarray) and data.ndim > 1 and not data.flags.f_contiguous \
            and data.nbytes <= FORTRAN_COPY_MAX_BYTES:
        data = np.asfortranarray(data)
    img = nib.Nifti1Image(data, affine, header=header)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.header.set_xyzt_units("mm", "sec")
    return img


def write_nifti(img, path: str | Path) -> Path:
    """Write a NIfTI image atomically; ``.nii.gz`` through the fast codec
    (:mod:`.gzip_codec`), standard gzip that any reader opens."""
    from nibabel.filebasedimages import FileHolder

    path = Path(path)
    with atomic_path(path) as tmp:
        if path.name.endswith(".gz"):
            with open_write(tmp) as fh:
                img.to_file_map({"image": FileHolder(fileobj=fh)})  # type: ignore[arg-type]  # a binary file
        else:
            img.to_filename(str(tmp))
    return path


def save_mask(data: np.ndarray, affine: np.ndarray, path: str | Path) -> Path:
    """Write a label map atomically: uint8 (uint16 above 255), unscaled,
    qform == sform == affine with codes 1."""
    data = np.asarray(data)
    maxval = int(data.max()) if data.size else 0
    dtype = np.uint8 if maxval <= 255 else np.uint16
    img = nifti_image(np.asarray(data, dtype=dtype), np.asarray(affine, float))  # any order: nibabel writes F
    img.header.set_data_dtype(dtype)
    img.header.set_slope_inter(1, 0)
    return write_nifti(img, path)


def save_image(data: np.ndarray, affine: np.ndarray, path: str | Path, like=None) -> Path:
    """Write an intensity image atomically, keeping ``like``'s data type and
    intent when given; qform == sform == affine."""
    header = like.copy() if like is not None else None
    img = nifti_image(np.asarray(data), np.asarray(affine, float), header=header)
    if like is not None:
        img.header.set_data_dtype(data.dtype)
    return write_nifti(img, path)


def present_values(data: np.ndarray) -> set[int]:
    """The values of an integer label (0 included), sorting only its bounding box.

    >>> a = np.zeros((3, 3, 3), np.uint8); a[1, 1, 1] = 7
    >>> sorted(present_values(a))
    [0, 7]
    """
    box = nonzero_bbox(data)
    if box is None:
        return {0}
    lo, hi = box
    crop = data[lo[0]:hi[0] + 1, lo[1]:hi[1] + 1, lo[2]:hi[2] + 1] if data.ndim == 3 else data
    return set(np.unique(crop).tolist()) | {0}


