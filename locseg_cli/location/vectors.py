"""Per-axis location vectors and the location channels of patches cut from them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

AXES = ("axial", "coronal", "sagittal")  # canonical array axes 0, 1, 2


def location_vectors(shape: Sequence[int], axial: np.ndarray | None = None) -> list[np.ndarray]:
    """The three 1D location vectors of a volume of `shape` (z, y, x).

    Volume coordinates: `linspace(-0.5, 0.5, L)` per axis. `axial` replaces the axis-0 vector
    (e.g. body-part-regression scores already mapped to (score - 50) / 100 per slice).
    """
    vecs = [np.linspace(-0.5, 0.5, int(n), dtype=np.float32) if n > 1 else np.zeros(1, np.float32)
            for n in shape]
    if axial is not None:
        axial = np.asarray(axial, dtype=np.float32)
        if axial.shape != (int(shape[0]),):
            raise ValueError(f"axial location has {axial.shape[0]} values for {shape[0]} slices")
        vecs[0] = axial
    return vecs


def slice_location(vec: np.ndarray, start: int, length: int) -> np.ndarray:
    """`vec[start:start+length]`, extended linearly beyond either end (patches past the border)."""
    vec = np.asarray(vec, dtype=np.float32)
    n = len(vec)
    if 0 <= start and start + length <= n:  # inside the volume (most patches): a plain copy
        return vec[start:start + length].copy()
    idx = np.arange(start, start + length)
    inside = np.clip(idx, 0, n - 1)
    out = vec[inside].astype(np.float32, copy=True)
    if n > 1:
        lo, hi = idx < 0, idx > n - 1
        if lo.any():
            out[lo] = vec[0] + (vec[1] - vec[0]) * idx[lo]
        if hi.any():
            out[hi] = vec[-1] + (vec[-1] - vec[-2]) * (idx[hi] - (n - 1))
    return out


def location_channels(vectors: Sequence[np.ndarray], start: Sequence[int], size: Sequence[int]) -> np.ndarray:
    """The (3, *size) location channels of a patch whose first voxel is at `start`."""
    out = np.empty((3, *size), dtype=np.float32)
    for a in range(3):
        seg = slice_location(vectors[a], int(start[a]), int(size[a]))
        shape = [1, 1, 1]
        shape[a] = int(size[a])
        out[a] = seg.reshape(shape)
    return out


def patch_location_into(vectors: Sequence[np.ndarray], start: Sequence[int], size: Sequence[int],
                        out: np.ndarray) -> np.ndarray:
    """Write a patch's per-axis location (axial, then coronal, then sagittal: D + H + W values) into `out`.

    The lean form of `location_channels`: channel a of the patch is this segment a broadcast along
    axis a, so the three segments carry all of it in D + H + W floats instead of 3 x D x H x W.
    """
    offset = 0
    for vec, s, n in zip(vectors, start, size):
        s, n = int(s), int(n)
        if 0 <= s and s + n <= len(vec):  # inside the volume (most patches): a plain copy
            out[offset:offset + n] = vec[s:s + n]
        else:
            out[offset:offset + n] = slice_location(vec, s, n)
        offset += n
    return out


def patch_location_vectors(vectors: Sequence[np.ndarray], start: Sequence[int], size: Sequence[int]) -> np.ndarray:
    """The (D + H + W,) per-axis location of a patch whose first voxel is at `start` (see `patch_location_into`)."""
    return patch_location_into(vectors, start, size, np.empty(sum(int(n) for n in size), dtype=np.float32))


def channels_from_patch_vectors(lean: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """(..., 3, *size) location channels from (..., D + H + W) per-axis location: `location_channels` of the
    same patch, for the places that need the channels on the host (tests, MONAI comparisons)."""
    size = tuple(int(n) for n in size)
    lead = lean.shape[:-1]
    out = np.empty((*lead, 3, *size), dtype=np.float32)
    offset = 0
    for a, n in enumerate(size):
        shape = [1, 1, 1]
        shape[a] = n
        out[..., a, :, :, :] = lean[..., offset:offset + n].reshape(*lead, *shape)
        offset += n
    return out


def volume_location_channels(vectors: Sequence[np.ndarray]) -> np.ndarray:
    """The location channels of a whole volume."""
    return location_channels(vectors, (0, 0, 0), tuple(len(v) for v in vectors))


def apply_shift(vectors: Sequence[np.ndarray], shift_percent: float, axes: str = "axial") -> list[np.ndarray]:
    """Shift the location signal by `shift_percent`% of its full range (1.0): axial only, or all axes."""
    if not 0 <= shift_percent <= 100:
        raise ValueError(f"shift must be within 0..100 %, got {shift_percent}")
    d = shift_percent / 100.0
    return [v + d if (a == 0 or axes == "all") else v.copy() for a, v in enumerate(vectors)]


def axial_from_scores(z_known: np.ndarray, scores: np.ndarray, z_query: np.ndarray) -> np.ndarray:
    """Axial location (score - 50) / 100 at world positions `z_query` from per-slice body-part scores.

    Slices with a finite score inside 0..100 are the valid range; queries within it are interpolated,
    queries outside it take the value of a least-squares line fitted to the valid slices (the paper's
    linear extrapolation). Raises ValueError with fewer than two valid slices.
    """
    z_known = np.asarray(z_known, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    valid = np.isfinite(scores) & (scores >= 0) & (scores <= 100)
    if valid.sum() < 2:
        raise ValueError("fewer than two slices with a valid body-part score")
    zk, sk = z_known[valid], scores[valid]
    order = np.argsort(zk)
    zk, sk = zk[order], sk[order]
    slope, intercept = np.polyfit(zk, sk, 1)
    zq = np.asarray(z_query, dtype=np.float64)
    out = np.interp(zq, zk, sk)
    outside = (zq < zk[0]) | (zq > zk[-1])
    out[outside] = slope * zq[outside] + intercept
    return ((out - 50.0) / 100.0).astype(np.float32)
