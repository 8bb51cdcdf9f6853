"""A head phantom in world millimetres: skull, brain, an optional hemorrhage, the salivary and
lacrimal glands, and the arteries of a CT angiography with an optional clot.

The head seed workflows (glands on a full-body CT, intracranial hemorrhage on head CT slices,
clots on CTA and plain CT) write their publishers' layouts from this one definition, and the
tiny TotalSegmentator weights learn the skull from it, so a recipe's crop to the skull keeps the
glands it must keep. Coordinates are head-local RAS+ (x right, y anterior, z superior, origin at
the head's centre); :class:`Head` places and scales a subject's head in the world. Like
:mod:`.anatomy`, this module imports nothing else of :mod:`totalseg_bids.testing`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..core.nifti import Grid
from .anatomy import grid_coordinates

#: Head tissue classes after 0 air and 1 soft tissue, in class order (class = position + 2).
HEAD_CLASSES = ("skull", "brain", "hemorrhage", "parotid_left", "parotid_right", "submandibular_left",
                "submandibular_right", "lacrimal_left", "lacrimal_right", "artery", "clot")
#: The glands of the gland workflow, in label order (1..6).
GLANDS = HEAD_CLASSES[3:9]
AIR, SOFT = 0, 1
CLASS = {name: i + 2 for i, name in enumerate(HEAD_CLASSES)}
#: CT numbers (HU) per class: a plain CT, and the arterial phase of a CT angiography (CTA)
_HU_PLAIN = (-1000.0, 40.0, 1000.0, 32.0, 72.0, -20.0, -20.0, 52.0, 52.0, 46.0, 46.0, 40.0, 78.0)
_HU_CTA = (-1000.0, 40.0, 1000.0, 34.0, 72.0, -20.0, -20.0, 60.0, 60.0, 46.0, 46.0, 330.0, 45.0)
NOISE_HU = 12.0
#: glands: (centre, semi-axes) in head mm, right side (+x); the left is the mirror image
_GLANDS = {"parotid": ((56.0, 2.0, -55.0), (9.0, 14.0, 16.0)),
           "submandibular": ((30.0, 32.0, -80.0), (8.0, 10.0, 7.0)),
           "lacrimal": ((30.0, 79.0, 22.0), (8.0, 6.0, 7.0))}
#: arteries (segments with a radius, mm): both middle cerebral arteries, internal carotids, basilar
ARTERIES = (((-55.0, 10.0, -20.0), (55.0, 10.0, -20.0), 3.5),
            ((20.0, 14.0, -60.0), (20.0, 10.0, -20.0), 3.5), ((-20.0, 14.0, -60.0), (-20.0, 10.0, -20.0), 3.5),
            ((0.0, -12.0, -60.0), (0.0, -10.0, -25.0), 3.0))


@dataclass
class Head:
    """One subject's head: where it sits (world mm of its centre), its size, and what it has."""

    centre: np.ndarray = field(default_factory=lambda: np.zeros(3))
    scale: float = 1.0
    #: (centre, semi-axes) of an intracranial hemorrhage in head mm, or None
    hemorrhage: tuple[tuple[float, float, float], tuple[float, float, float]] | None = None
    #: (x from, x to) of the clot along the left middle cerebral artery, or None
    clot: tuple[float, float] | None = None
    #: a neck below the head (a full-body CT), down to this head-local z
    neck_to: float | None = None

    def classes_xyz(self, wx: np.ndarray, wy: np.ndarray, wz: np.ndarray) -> np.ndarray:
        """Tissue class per world point (arrays of one shape): see :data:`HEAD_CLASSES`."""
        x, y, z = ((w - c) / self.scale for w, c in zip((wx, wy, wz), self.centre))
        out = np.zeros(np.shape(x), np.uint8)
        out[_ellipsoid(x, y, z, (0, 0, 0), (80, 100, 110))] = SOFT
        if self.neck_to is not None:
            out[(x ** 2 + (y + 5) ** 2 <= 45 ** 2) & (z < -60) & (z >= self.neck_to)] = SOFT
        inner = _ellipsoid(x, y, z, (0, 0, 0), (66, 86, 94))
        cranium = _ellipsoid(x, y, z, (0, 0, 0), (72, 92, 100)) & ~inner & (z >= -40)
        base = inner & (z >= -46) & (z < -40)
        ring = (x / 50) ** 2 + ((y - 5) / 62) ** 2
        mandible = (z >= -75) & (z <= -62) & (ring >= 0.72) & (ring <= 1.0) & (y >= -10)
        out[cranium | base | mandible] = CLASS["skull"]
        out[inner & (z >= -40)] = CLASS["brain"]
        if self.hemorrhage is not None:
            out[_ellipsoid(x, y, z, *self.hemorrhage) & (out == CLASS["brain"])] = CLASS["hemorrhage"]
        for name, (centre, axes) in _GLANDS.items():
            for side, sign in (("right", 1.0), ("left", -1.0)):
                out[_ellipsoid(x, y, z, (sign * centre[0], *centre[1:]), axes)] = CLASS[f"{name}_{side}"]
        self._paint_arteries(out, x, y, z)
        return out

    def _paint_arteries(self, out: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> None:
        """The arteries (inside the brain and the skull base) and the clot along the left middle cerebral one."""
        for a, b, radius in ARTERIES:
            out[(_segment_distance(x, y, z, a, b) <= radius) & (out != AIR)] = CLASS["artery"]
        if self.clot is not None:
            a, b, radius = ARTERIES[0]
            near = _segment_distance(x, y, z, a, b) <= radius
            out[near & (x >= self.clot[0]) & (x <= self.clot[1])] = CLASS["clot"]


def _ellipsoid(x, y, z, centre, axes) -> np.ndarray:
    return (((x - centre[0]) / axes[0]) ** 2 + ((y - centre[1]) / axes[1]) ** 2
            + ((z - centre[2]) / axes[2]) ** 2) <= 1.0


def _segment_distance(x, y, z, a, b) -> np.ndarray:
    """Distance (mm) of every point to the segment ``a``-``b``.

    >>> float(_segment_distance(np.array(0.0), np.array(3.0), np.array(0.0), (-1, 0, 0), (1, 0, 0)))
    3.0
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    d = b - a
    t = np.clip(((x - a[0]) * d[0] + (y - a[1]) * d[1] + (z - a[2]) * d[2]) / float(d @ d), 0.0, 1.0)
    return np.sqrt((x - a[0] - t * d[0]) ** 2 + (y - a[1] - t * d[1]) ** 2 + (z - a[2] - t * d[2]) ** 2)


def head_of(index: int, seed: int, hemorrhage: bool = False, clot: bool = False) -> Head:
    """Phantom subject ``index``'s head (size, and where a hemorrhage or clot lies, vary per subject)."""
    rng = np.random.default_rng([seed, index, 11])
    head = Head(scale=float(rng.uniform(0.94, 1.06)))
    if hemorrhage:
        centre = (float(rng.uniform(-30, 30)), float(rng.uniform(-30, 40)), float(rng.uniform(0, 45)))
        head.hemorrhage = (centre, tuple(float(r) for r in rng.uniform(9, 16, size=3)))
    if clot:
        start = float(rng.uniform(-46, -30))
        head.clot = (start, start + float(rng.uniform(8, 14)))
    return head


def render_ct(classes: np.ndarray, rng: np.random.Generator, angiography: bool = False) -> np.ndarray:
    """int16 CT numbers of a class map (plain, or the arterial phase of a CTA), with noise."""
    values = np.asarray(_HU_CTA if angiography else _HU_PLAIN, np.float32)
    img = values[classes] + rng.normal(0.0, NOISE_HU, size=classes.shape).astype(np.float32)
    return np.clip(np.rint(img), -1024, 3071).astype(np.int16)


def head_classes(head: Head, grid: Grid) -> np.ndarray:
    """The class map of ``head`` on ``grid``."""
    return head.classes_xyz(*grid_coordinates(grid))


def gland_labels(classes: np.ndarray) -> np.ndarray:
    """The glands as labels 1..6 in :data:`GLANDS` order (everything else 0).

    >>> gland_labels(np.array([0, CLASS["brain"], CLASS["parotid_left"], CLASS["lacrimal_right"]])).tolist()
    [0, 0, 1, 6]
    """
    lut = np.zeros(len(HEAD_CLASSES) + 2, np.uint8)
    for i, name in enumerate(GLANDS, start=1):
        lut[CLASS[name]] = i
    return lut[classes]
