"""NIfTI I/O and the geometry policy (docs/conventions.md).

Policy, in one place:

* The affine of record is nibabel's ``img.affine`` (the sform when its code is
  non-zero, else the qform). When both are set and map the field of view more
  than :data:`QFORM_SFORM_TOLERANCE_MM` apart, we log a warning with the size
  of the disagreement and still follow nibabel's choice.
* Masks are written as ``uint8`` (``uint16`` above 255 classes), unscaled, with
  ``qform == sform == affine`` and both codes 1, atomically.
* Labels are resampled by nearest neighbour, or per label linearly then
  argmax (threshold 0.5 for one label); never linearly as integers.
* Resampling maps every target voxel centre through the two affines into the
  source grid (world coordinates), so shapes, orientations and axis orders
  may differ freely.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from .atomic import atomic_path
from .datalad import get_command, is_annex_pointer
from .errors import AnnexContentMissingError, InputError, MissingFileError

log = logging.getLogger(__name__)

QFORM_SFORM_TOLERANCE_MM = 0.1
GRID_ATOL = 1e-3  # mm, and unitless for direction cosines
_NIFTI_EXTENSIONS = (".nii", ".nii.gz")
#: nibabel writes Fortran order, copying a C-ordered array slab by slab at about 150 MB/s; arrays up
#: to this size are made Fortran-ordered in one pass first (about 10x faster), larger ones keep
#: nibabel's bounded-memory slabs
FORTRAN_COPY_MAX_BYTES = 64 << 20


# ---------------------------------------------------------------- grid objects
@dataclass(frozen=True)
class Grid:
    """A voxel grid in world space: a shape and a 4x4 voxel-to-world affine."""

    shape: tuple[int, int, int]
    affine: np.ndarray

    @classmethod
    def of(cls, img) -> "Grid":
        return cls(tuple(int(s) for s in img.shape[:3]), np.asarray(img.affine, dtype=float))

    @property
    def spacing(self) -> np.ndarray:
        return np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))

    @property
    def direction(self) -> np.ndarray:
        return self.affine[:3, :3] / self.spacing

    @property
    def origin(self) -> np.ndarray:
        return self.affine[:3, 3]

    def corners(self) -> np.ndarray:
        """World coordinates (8x3) of the outer voxel-centre corners."""
        idx = np.array([[i, j, k] for i in (0, self.shape[0] - 1)
                        for j in (0, self.shape[1] - 1) for k in (0, self.shape[2] - 1)], float)
        return apply_affine(self.affine, idx)

    def world_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned world bounding box of the field of view (voxel edges)."""
        idx = np.array([[i, j, k] for i in (-0.5, self.shape[0] - 0.5)
                        for j in (-0.5, self.shape[1] - 0.5) for k in (-0.5, self.shape[2] - 0.5)])
        pts = apply_affine(self.affine, idx)
        return pts.min(axis=0), pts.max(axis=0)


def apply_affine(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4x4 affine to an (N, 3) array of points.

    >>> apply_affine(np.diag([2., 2., 2., 1.]), np.array([[1., 2., 3.]]))
    array([[2., 4., 6.]])
    """
    points = np.asarray(points, dtype=float)
    return points @ affine[:3, :3].T + affine[:3, 3]


def grid_mismatch(a: Grid, b: Grid, atol: float = GRID_ATOL) -> str | None:
    """Why two grids differ (shape, spacing, origin, direction), or None.

    >>> g = Grid((2, 2, 2), np.eye(4))
    >>> grid_mismatch(g, g) is None
    True
    >>> grid_mismatch(g, Grid((2, 2, 3), np.eye(4)))
    'shape (2, 2, 2) != (2, 2, 3)'
    """
    if tuple(a.shape) != tuple(b.shape):
        return f"shape {tuple(a.shape)} != {tuple(b.shape)}"
    if not np.allclose(a.spacing, b.spacing, atol=atol):
        return f"spacing {np.round(a.spacing, 4).tolist()} != {np.round(b.spacing, 4).tolist()}"
    if not np.allclose(a.origin, b.origin, atol=atol):
        return f"origin differs by {np.abs(a.origin - b.origin).max():.4g} mm"
    if not np.allclose(a.direction, b.direction, atol=atol):
        return "direction (orientation) differs"
    return None


def same_grid(a: Grid, b: Grid, atol: float = GRID_ATOL) -> bool:
    """Shape, spacing, origin and direction equal within ``atol``."""
    return grid_mismatch(a, b, atol) is None


def grids_overlap(a: Grid, b: Grid) -> bool:
    """True when the two fields of view share some world volume (bounding boxes)."""
    amin, amax = a.world_bounds()
    bmin, bmax = b.world_bounds()
    return bool(np.all(amin < bmax) and np.all(bmin < amax))


def axcodes(affine: np.ndarray) -> str:
    """Orientation letters of an affine, e.g. ``'RAS'`` or ``'LPS'``.

    >>> axcodes(np.eye(4))
    'RAS'
    """
    import nibabel as nib

    return "".join(nib.aff2axcodes(affine))


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
        from .resume import recreate_fix
        raise InputError("truncated or corrupt file (its size does not match its header)", path,
                         recreate_fix(path))
    if check_forms:
        check_qform_sform(img, path)
    return img


def gzip_size_matches(path: str | Path, img) -> bool:
    """Whether a ``.nii.gz`` holds exactly as many bytes as its header promises.

    The gzip trailer stores the uncompressed size (mod 2**32); a truncated copy
    ends in arbitrary bytes instead. This catches truncation without
    decompressing the file, so every stage can afford it on every input.
    Files made of several gzip members are not checked (their trailer is the
    last member's only).
    """
    hdr = img.header
    offset = getattr(img.dataobj, "offset", None)  # the header's vox_offset as nibabel reads it
    offset = int(hdr.get_data_offset() if offset is None else offset)
    expected = offset + int(np.prod(img.shape)) * hdr.get_data_dtype().itemsize
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        if fh.tell() < 18:
            return False
        fh.seek(-4, 2)
        stored = int.from_bytes(fh.read(4), "little")
    if stored == expected % 2**32:
        return True
    with gzip.open(path, "rb") as gz:  # rare multi-member or padded files: decompress to be sure
        try:
            gz.seek(expected)
            return gz.read(1) == b"" and gz.tell() == expected
        except (EOFError, OSError, zlib.error):
            return False


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
    shape = tuple(int(s) for s in shape)
    if len(shape) < 3 or any(s != 1 for s in shape[3:]):
        raise InputError(f"expected a 3D image, got shape {shape}", path,
                         "extract one 3D volume (e.g. with fslroi or nibabel)")
    return shape[:3]


@contextlib.contextmanager
def readable_data(path: str | Path) -> Iterator[None]:
    """Decompression and read errors inside the block become one :class:`InputError` naming ``path``."""
    from .gzip_codec import codec_errors

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

    from .gzip_codec import read_into

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
        return Grid(tuple(int(s) for s in shape), np.asarray(self.affine, float))


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

    from .gzip_codec import open_write

    path = Path(path)
    with atomic_path(path) as tmp:
        if path.name.endswith(".gz"):
            with open_write(tmp) as fh:
                img.to_file_map({"image": FileHolder(fileobj=fh)})
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


# --------------------------------------------------------------- resampling
def _target_block(lo: np.ndarray, hi: np.ndarray, src_affine: np.ndarray,
                  grid: Grid) -> tuple[np.ndarray, np.ndarray] | None:
    """Index box of ``grid`` whose voxels can map into source box [lo, hi]."""
    corners = np.array([[x, y, z] for x in (lo[0] - 1, hi[0] + 1)
                        for y in (lo[1] - 1, hi[1] + 1) for z in (lo[2] - 1, hi[2] + 1)], float)
    world = apply_affine(src_affine, corners)
    tgt = apply_affine(np.linalg.inv(grid.affine), world)
    start = np.maximum(np.floor(tgt.min(axis=0)).astype(int) - 1, 0)
    stop = np.minimum(np.ceil(tgt.max(axis=0)).astype(int) + 2, np.array(grid.shape))
    if np.any(stop <= start):
        return None
    return start, stop


def nonzero_bbox(a: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Inclusive (lo, hi) indices of the non-zero voxels of a 3-D array, or None.

    Two ``any`` passes in memory order instead of ``np.nonzero``, which builds
    index arrays over the whole volume (seconds on a 512x512x400 CT label).

    >>> a = np.zeros((4, 5, 6), np.uint8); a[1:3, 2, 4:6] = 1
    >>> [b.tolist() for b in nonzero_bbox(a)], [b.tolist() for b in nonzero_bbox(np.asfortranarray(a))]
    ([[1, 2, 4], [2, 2, 5]], [[1, 2, 4], [2, 2, 5]])
    >>> nonzero_bbox(np.zeros((2, 2, 2))) is None
    True
    """
    if a.ndim != 3 or not a.size:
        nz = np.nonzero(a)
        return (np.array([x.min() for x in nz]), np.array([x.max() for x in nz])) if nz[0].size else None
    flip = not a.flags.c_contiguous and a.flags.f_contiguous
    v = a.T if flip else a  # a C-ordered view: axis 0 varies slowest
    first = np.flatnonzero(v.reshape(v.shape[0], -1).any(axis=1))
    if not first.size:
        return None
    rest = v[first[0]:first[-1] + 1].any(axis=0)
    second = np.flatnonzero(rest.any(axis=1))
    third = np.flatnonzero(rest.any(axis=0))
    lo = np.array([first[0], second[0], third[0]])
    hi = np.array([first[-1], second[-1], third[-1]])
    return (lo[::-1].copy(), hi[::-1].copy()) if flip else (lo, hi)


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


def resample_label(label: np.ndarray, label_affine: np.ndarray, grid: Grid, mode: str = "nearest",
                   values: Iterable[int] | None = None, origin: Sequence[int] = (0, 0, 0)) -> np.ndarray:
    """Bring a label map onto ``grid`` through world coordinates.

    ``mode='nearest'`` picks the source voxel nearest to each target voxel
    centre; ``mode='label'`` interpolates each label's indicator linearly and
    takes the argmax against background (threshold 0.5 for one label), which is
    smoother when the target grid is much coarser. Only the bounding box of
    the non-zero labels is processed, which makes transfers of small
    structures from large CTs fast. ``label`` may be a box of the grid of
    ``label_affine`` starting at index ``origin`` (a :class:`Volume` read by
    :func:`.label_box.load_label_box`); the result is the same voxel for voxel.
    The result is in Fortran order, the order NIfTI stores, so writing it is a
    straight copy.
    """
    from scipy import ndimage

    if mode not in ("nearest", "label"):
        raise ValueError(f"unknown interpolation {mode!r}")
    label = np.asarray(label)
    out_dtype = np.uint8 if (label.max() if label.size else 0) <= 255 else np.uint16
    out = np.zeros(grid.shape, dtype=out_dtype, order="F")
    box = nonzero_bbox(label)
    if box is None:
        return out
    lo, hi = box
    shift_src = np.asarray(origin, dtype=int)
    # crop to the labels' box and pad it with one zero voxel on every side: a target
    # point that falls a rounding error outside the source array then still meets
    # the edge voxel (scipy treats such points as outside and would drop it)
    crop = np.pad(label[lo[0]:hi[0] + 1, lo[1]:hi[1] + 1, lo[2]:hi[2] + 1], 1)
    lo_p, hi_p = lo - 1 + shift_src, hi + 1 + shift_src  # indices in the grid of label_affine
    block = _target_block(lo_p, hi_p, label_affine, grid)
    if block is None:
        return out
    start, stop = block
    # target index (block-relative) -> world -> source index (crop-relative)
    shift = np.eye(4)
    shift[:3, 3] = start
    unshift = np.eye(4)
    unshift[:3, 3] = -lo_p
    m = unshift @ np.linalg.inv(label_affine) @ grid.affine @ shift
    shape = tuple(int(s) for s in (stop - start))
    if mode == "nearest":
        res = ndimage.affine_transform(crop, m[:3, :3], m[:3, 3], output_shape=shape, order=0,
                                       mode="constant", cval=0, prefilter=False)
    else:
        vals = sorted(int(v) for v in (values if values is not None else np.unique(crop)) if v != 0)
        best = np.full(shape, 0.5, dtype=np.float32)  # background wins below 0.5
        res = np.zeros(shape, dtype=out_dtype)
        for v in vals:
            prob = ndimage.affine_transform((crop == v).astype(np.float32), m[:3, :3], m[:3, 3],
                                            output_shape=shape, order=1, mode="constant", cval=0.0,
                                            prefilter=False)
            win = prob > best
            res[win] = v
            best[win] = prob[win]
    out[start[0]:stop[0], start[1]:stop[1], start[2]:stop[2]] = res
    return out


def resample_image(data: np.ndarray, affine: np.ndarray, grid: Grid, order: int = 1,
                   cval: float = 0.0) -> np.ndarray:
    """Bring an intensity image onto ``grid`` (order 1 linear, 3 cubic B-spline)."""
    from scipy import ndimage

    m = np.linalg.inv(affine) @ grid.affine
    return ndimage.affine_transform(np.asarray(data, dtype=np.float32), m[:3, :3], m[:3, 3],
                                    output_shape=tuple(grid.shape), order=order, mode="constant",
                                    cval=cval, prefilter=order > 1)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice coefficient of two masks (1.0 when both are empty).

    >>> dice(np.array([1, 1, 0]), np.array([1, 0, 0]))
    0.6666666666666666
    """
    a = np.asarray(a) > 0
    b = np.asarray(b) > 0
    denom = a.sum() + b.sum()
    return 1.0 if denom == 0 else float(2.0 * np.logical_and(a, b).sum() / denom)


def touches_edge(mask: np.ndarray) -> bool:
    """True when a non-zero voxel lies on the outer face of the field of view."""
    m = np.asarray(mask) > 0
    if not m.any():
        return False
    return bool(m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any()
                or m[:, :, 0].any() or m[:, :, -1].any())


def voxel_volume_ml(affine: np.ndarray) -> float:
    """Volume of one voxel in millilitres."""
    return float(abs(np.linalg.det(np.asarray(affine)[:3, :3]))) / 1000.0
