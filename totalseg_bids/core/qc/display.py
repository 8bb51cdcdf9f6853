"""Pure pixel helpers of the QC views: windowing, slice placement, tile layout, label colours.

The display convention (documented next to every view in the report): sagittal
tiles superior up and anterior on the left, ordered from the patient's right to
left; axial tiles radiological (patient's right on the viewer's left, anterior
up), ordered from superior to inferior. CT is shown with a bone window, MRI with
a percentile window of the shown voxels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..display import percentile_range, window_range

#: CT display window (width, level) in HU: a bone window, since the labels are bones.
CT_WINDOW = (1500.0, 300.0)
#: MRI display window: these percentiles of the displayed voxels.
MRI_PERCENTILES = (1.0, 99.0)
FILL_ALPHA = 0.4
#: Label colours by value (value 1 first), distinguishable on grey.
PALETTE = ((255, 64, 48), (48, 200, 80), (40, 120, 255), (255, 200, 0), (190, 80, 230),
           (255, 140, 0), (80, 210, 250), (255, 60, 140))
#: Contour colour of the comparison (CT) label on registered MRI entries.
COMPARE_RGB = (0, 255, 255)


def looks_like_ct(values: np.ndarray) -> bool:
    """Hounsfield-unit heuristic for images not named ``_CT``: air at about -1000.

    MRI magnitudes are non-negative; a CT has a body surrounded by air, so
    its low percentile sits far below zero.

    >>> looks_like_ct(np.array([-1000.0] * 10 + [40.0] * 80 + [500.0] * 10))
    True
    >>> looks_like_ct(np.array([0.0] * 10 + [300.0] * 90))
    False
    """
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    return bool(v.size) and float(np.percentile(v, 1)) <= -500.0


def window_bounds(values: np.ndarray, ct: bool, ct_window: tuple[float, float] = CT_WINDOW,
                  percentiles: tuple[float, float] = MRI_PERCENTILES) -> tuple[float, float]:
    """Display range: the CT window (width, level) or MRI percentiles of ``values``
    (:mod:`totalseg_bids.core.display`: NaN ignored, a flat image gets a unit range).

    >>> window_bounds(np.zeros(3), ct=True)
    (-450.0, 1050.0)
    >>> window_bounds(np.arange(101.0), ct=False)
    (1.0, 99.0)
    >>> window_bounds(np.full(4, 7.0), ct=False)
    (7.0, 8.0)
    """
    if ct:
        return window_range(ct_window)
    return percentile_range(np.asarray(values, dtype=float), percentiles)


def slice_positions(lo: float, hi: float, n: int, inset: float = 0.15) -> list[float]:
    """``n`` evenly spaced positions inside ``[lo, hi]``, ``inset`` (fraction) from its ends.

    The ends of a structure are thin caps; slices through them show little.
    A range too thin for distinct slices gives one slice through its middle.

    >>> slice_positions(0.0, 100.0, 5, inset=0.1)
    [10.0, 30.0, 50.0, 70.0, 90.0]
    >>> slice_positions(4.0, 4.0, 5)
    [4.0]
    """
    a, b = lo + inset * (hi - lo), hi - inset * (hi - lo)
    if n <= 1 or b - a < 1e-3:
        return [float((lo + hi) / 2)]
    return [float(x) for x in np.linspace(a, b, n)]


def orient_tile(plane: np.ndarray) -> np.ndarray:
    """A plane indexed ``[u, v]`` along increasing RAS axes, as displayed rows/columns.

    Sagittal planes are ``[y, z]``: rows go superior to inferior and columns
    anterior to posterior (anterior on the left). Axial planes are ``[x, y]``:
    rows anterior to posterior, columns from the patient's right (+x) to left
    (radiological).

    >>> orient_tile(np.array([[1, 2], [3, 4]]))  # u=0..1, v=0..1
    array([[4, 2],
           [3, 1]])
    """
    return np.asarray(plane).T[::-1, ::-1]


def mosaic(tiles: Sequence[np.ndarray], columns: int, gap: int = 2, fill: int = 0
           ) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """Tiles (same shape, 2D or RGB) laid out row by row; returns the mosaic and
    each tile's ``(row, col, height, width)`` box.

    >>> m, boxes = mosaic([np.ones((2, 3), np.uint8)] * 3, columns=2, gap=1)
    >>> m.shape, boxes
    ((5, 7), [(0, 0, 2, 3), (0, 4, 2, 3), (3, 0, 2, 3)])
    """
    if not tiles:
        raise ValueError("no tiles")
    h, w = tiles[0].shape[:2]
    columns = max(1, min(columns, len(tiles)))
    rows = -(-len(tiles) // columns)
    shape = (rows * h + (rows - 1) * gap, columns * w + (columns - 1) * gap) + tiles[0].shape[2:]
    out = np.full(shape, fill, dtype=tiles[0].dtype)
    boxes = []
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        y, x = r * (h + gap), c * (w + gap)
        out[y:y + h, x:x + w] = tile
        boxes.append((y, x, h, w))
    return out, boxes


def contour(label: np.ndarray) -> np.ndarray:
    """Boundary pixels of the non-zero regions (4-neighbourhood), per label value.

    >>> contour(np.pad(np.ones((3, 3), int), 1)).astype(int)[1:4, 1:4]
    array([[1, 1, 1],
           [1, 0, 1],
           [1, 1, 1]])
    """
    lab = np.asarray(label)
    p = np.pad(lab, 1, mode="edge")
    c = p[1:-1, 1:-1]
    edge = (p[:-2, 1:-1] != c) | (p[2:, 1:-1] != c) | (p[1:-1, :-2] != c) | (p[1:-1, 2:] != c)
    return edge & (c > 0)


def label_colors(label: np.ndarray) -> np.ndarray:
    """RGB colour per pixel from :data:`PALETTE` (value 1 first, cycling).

    >>> label_colors(np.array([[0, 1, 9]])).tolist()
    [[[0, 0, 0], [255, 64, 48], [255, 64, 48]]]
    """
    lab = np.asarray(label).astype(np.int64)
    pal = np.asarray(PALETTE, np.uint8)
    rgb = pal[(np.maximum(lab, 1) - 1) % len(pal)]
    rgb[lab == 0] = 0
    return rgb


def overlay_rgb(gray: np.ndarray, label: np.ndarray | None = None, compare: np.ndarray | None = None,
                alpha: float = FILL_ALPHA) -> np.ndarray:
    """Grey image with the label filled (``alpha``) and outlined in its colours, and
    the comparison label outlined in cyan (so misalignment shows as an offset).

    >>> rgb = overlay_rgb(np.full((1, 2), 100, np.uint8), np.array([[0, 1]]))
    >>> rgb.tolist()
    [[[100, 100, 100], [255, 64, 48]]]
    """
    out = np.repeat(np.asarray(gray, np.float32)[..., None], 3, axis=2)
    if label is not None and np.any(label):
        colors = label_colors(label).astype(np.float32)
        m = np.asarray(label) > 0
        out[m] = (1 - alpha) * out[m] + alpha * colors[m]
        e = contour(label)
        out[e] = colors[e]
    if compare is not None and np.any(compare):
        out[contour(np.asarray(compare) > 0)] = COMPARE_RGB
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
