"""Vectorised building blocks of the phantom: a deformed coordinate grid, smooth random fields,
and implicit shapes (ellipsoids, superellipses, tapered tubes) evaluated on bounding boxes only.

Smooth fields are drawn on a coarse control grid and upsampled with separable Gaussian weights
(three small matrix products), which is what keeps a 200x200x250 case at seconds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Box = tuple[slice, slice, slice]


def _upsample_matrix(out_coords: np.ndarray, ctrl_coords: np.ndarray, width: float) -> np.ndarray:
    d = (out_coords[:, None] - ctrl_coords[None, :]) / width
    w = np.exp(-0.5 * d * d)
    w /= w.sum(axis=1, keepdims=True)
    return w.astype(np.float32)


def smooth_field(rng: np.random.Generator, lines: Sequence[np.ndarray], ctrl_mm: float) -> np.ndarray:
    """A smooth random field (about unit standard deviation) on the grid spanned by `lines` (z, y, x),
    with features about `ctrl_mm` in size."""
    mats = []
    for line in lines:
        lo, hi = float(line[0]), float(line[-1])
        n = max(2, int(np.ceil((hi - lo) / ctrl_mm)) + 3)
        ctrl = lo - ctrl_mm + np.arange(n) * ctrl_mm
        mats.append(_upsample_matrix(np.asarray(line, dtype=np.float64), ctrl, 0.6 * ctrl_mm))
    coarse = rng.standard_normal(tuple(m.shape[1] for m in mats)).astype(np.float32)
    # (cz, cy, cx) -> (z, y, x): one matrix product per axis.
    f = np.tensordot(coarse, mats[2], axes=([2], [1]))          # cz, cy, x
    f = np.tensordot(f, mats[1], axes=([1], [1]))               # cz, x, y
    f = np.tensordot(mats[0], f, axes=([1], [0]))               # z, x, y
    f = np.ascontiguousarray(f.transpose(0, 2, 1))
    std = float(f.std())
    return f / std if std > 0 else f


class Grid:
    """Patient-frame coordinates (mm; x toward the patient's right, y anterior, z superior) of a
    canonical (z, y, x) array, displaced by a smooth random deformation."""

    def __init__(self, z: np.ndarray, y: np.ndarray, x: np.ndarray, rng: np.random.Generator,
                 deform_mm: tuple[float, float, float], deform_ctrl_mm: float):
        self.z, self.y, self.x = (np.asarray(a, dtype=np.float32) for a in (z, y, x))
        self.shape = (len(z), len(y), len(x))
        lines = (self.z, self.y, self.x)
        self.Z = self.z[:, None, None] + deform_mm[0] * smooth_field(rng, lines, deform_ctrl_mm)
        self.Y = self.y[None, :, None] + deform_mm[1] * smooth_field(rng, lines, deform_ctrl_mm)
        self.X = self.x[None, None, :] + deform_mm[2] * smooth_field(rng, lines, deform_ctrl_mm)
        self.margin = 3.0 * max(deform_mm) + 2.0

    def box(self, xr: tuple[float, float], yr: tuple[float, float], zr: tuple[float, float]) -> Box | None:
        """Index slices covering the patient-frame box (plus the deformation margin); None if empty."""
        out = []
        for line, (lo, hi) in ((self.z, zr), (self.y, yr), (self.x, xr)):
            i0 = int(np.searchsorted(line, lo - self.margin, side="left"))
            i1 = int(np.searchsorted(line, hi + self.margin, side="right"))
            if i1 <= i0:
                return None
            out.append(slice(i0, i1))
        return tuple(out)  # type: ignore[return-value]

    def coords(self, box: Box) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.X[box], self.Y[box], self.Z[box]


def ellipsoid_r(X: np.ndarray, Y: np.ndarray, Z: np.ndarray, centre: Sequence[float], semi: Sequence[float],
                power: float = 2.0, tilt_yz: float = 0.0) -> np.ndarray:
    """Normalised radius of a superellipsoid (< 1 inside); `tilt_yz` rotates it in the sagittal plane
    (radians), which keeps it mirror-symmetric in x."""
    dx = (X - centre[0]) / semi[0]
    dy0 = Y - centre[1]
    dz0 = Z - centre[2]
    if tilt_yz:
        c, s = np.cos(tilt_yz), np.sin(tilt_yz)
        dy0, dz0 = c * dy0 - s * dz0, s * dy0 + c * dz0
    dy = dy0 / semi[1]
    dz = dz0 / semi[2]
    if power == 2.0:
        return np.sqrt(dx * dx + dy * dy + dz * dz)
    return (np.abs(dx) ** power + np.abs(dy) ** power + np.abs(dz) ** power) ** (1.0 / power)


def tube_distance(X: np.ndarray, Y: np.ndarray, Z: np.ndarray, points: Sequence[Sequence[float]],
                  radii: Sequence[float]) -> np.ndarray:
    """Signed distance (mm, < 0 inside) to a tapered tube through `points` with `radii` at them."""
    pts = np.asarray(points, dtype=np.float32)
    rad = np.asarray(radii, dtype=np.float32)
    best = None
    for a, b, ra, rb in zip(pts[:-1], pts[1:], rad[:-1], rad[1:]):
        ab = b - a
        L2 = float(ab @ ab)
        px, py, pz = X - a[0], Y - a[1], Z - a[2]
        t = (px * ab[0] + py * ab[1] + pz * ab[2]) / max(L2, 1e-6)
        np.clip(t, 0.0, 1.0, out=t)
        qx, qy, qz = px - t * ab[0], py - t * ab[1], pz - t * ab[2]
        d = np.sqrt(qx * qx + qy * qy + qz * qz) - (ra + t * (rb - ra))
        best = d if best is None else np.minimum(best, d)
    return best


def tube_bounds(points: Sequence[Sequence[float]], radii: Sequence[float]):
    """The (x, y, z) ranges enclosing a tube."""
    pts = np.asarray(points, dtype=np.float64)
    r = float(max(radii))
    lo, hi = pts.min(axis=0) - r, pts.max(axis=0) + r
    return (lo[0], hi[0]), (lo[1], hi[1]), (lo[2], hi[2])


def tube_field(grid: Grid, points: Sequence[Sequence[float]], radii: Sequence[float]) -> tuple[Box, np.ndarray] | None:
    """The grid box around a tube and the signed distance to its surface in it (None: off the grid)."""
    xr, yr, zr = tube_bounds(points, radii)
    box = grid.box(xr, yr, zr)
    if box is None:
        return None
    X, Y, Z = grid.coords(box)
    return box, tube_distance(X, Y, Z, points, radii)

