"""Axial slices as the regressor sees them: canonical order, HU window, 3.5 mm pixels, 128x128.

The volume is reoriented by its affine (never by assumed axis order), so slice 0 is the most
inferior one whatever the file's axis order or z direction; each slice keeps its world superior
coordinate and its index in the file, so scores can be mapped back to any other grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from ..io.nifti import Volume, canonical_orientation, load_volume

HU_RANGE = (-1000.0, 1500.0)
PIXEL_MM = 3.5
SIZE = 128
_EMPTY_LEVEL = -1.0 + 1e-3  # a slice no brighter than this holds air only (after scaling to [-1, 1])


@dataclass
class SliceStack:
    """The slices of one volume, most inferior first."""

    slices: np.ndarray  # (n, size, size) float32 in [-1, 1]
    z_spacing: float  # mm between slices
    z_world_mm: np.ndarray  # (n,) world superior coordinate of each slice (at the in-plane centre)
    file_index: np.ndarray  # (n,) index of each slice along the file's axial axis as stored
    axial_axis: int  # which array axis of the file is axial
    empty: np.ndarray  # (n,) bool: slices that hold nothing but air (bpreg calls them background)

    def __len__(self) -> int:
        return len(self.slices)


def scale_hu(array: np.ndarray, hu_range: tuple[float, float] = HU_RANGE) -> np.ndarray:
    """Clip to the HU window and map it linearly onto [-1, 1] (bpreg's input scaling)."""
    lo, hi = hu_range
    out = np.clip(np.asarray(array, dtype=np.float32), lo, hi)
    return (out - lo) * (2.0 / (hi - lo)) - 1.0


def _fit_square(x: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop or pad (with -1, i.e. air) the last two axes to `size`."""
    out = np.full((x.shape[0], size, size), -1.0, dtype=np.float32)
    src, dst = [], []
    for n in x.shape[1:]:
        if n >= size:
            s = (n - size) // 2
            src.append(slice(s, s + size))
            dst.append(slice(0, size))
        else:
            d = (size - n) // 2
            src.append(slice(0, n))
            dst.append(slice(d, d + n))
    out[:, dst[0], dst[1]] = x[:, src[0], src[1]]
    return out


def resample_inplane(x: np.ndarray, spacing_yx: tuple[float, float], pixel_mm: float = PIXEL_MM,
                     size: int = SIZE, chunk: int = 64) -> np.ndarray:
    """Resample axes 1, 2 of (n, H, W) to `pixel_mm` pixels and fit them to size x size.

    Downsampling is preceded by a Gaussian blur whose width follows bpreg's rule (sigma 0.8 at a
    factor of 0.25), so thin structures do not alias.
    """
    factors = [s / pixel_mm for s in spacing_yx]
    new_shape = [max(1, int(round(n * f))) for n, f in zip(x.shape[1:], factors)]
    sigma = [0.0] + [0.8 * 0.25 / f if f < 1 else 0.0 for f in factors]
    zoom = [1.0] + [m / n for m, n in zip(new_shape, x.shape[1:])]
    parts = []
    for start in range(0, x.shape[0], chunk):
        part = np.asarray(x[start:start + chunk], dtype=np.float32)
        if any(sigma):
            part = ndimage.gaussian_filter(part, sigma, truncate=3.0)
        parts.append(ndimage.zoom(part, zoom, order=1, mode="nearest", grid_mode=True))
    out = np.concatenate(parts, axis=0) if parts else np.zeros((0, *new_shape), np.float32)
    return _fit_square(out, size)


def prepare_slices(volume: Volume, pixel_mm: float = PIXEL_MM, size: int = SIZE,
                   hu_range: tuple[float, float] = HU_RANGE) -> SliceStack:
    """A volume's axial slices in canonical (inferior -> superior) order, ready for the regressor."""
    orientation, affine = canonical_orientation(volume.affine, volume.array.shape)
    canon = orientation.to_canonical(volume.array)
    spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    axial_axis = int(np.flatnonzero(orientation.transform[:, 0] == 0)[0])
    flipped = orientation.transform[axial_axis, 1] < 0
    n = canon.shape[0]
    file_index = np.arange(n)[::-1].copy() if flipped else np.arange(n)
    slices = resample_inplane(scale_hu(canon, hu_range), (float(spacing[1]), float(spacing[2])), pixel_mm, size)
    idx = np.stack([np.arange(n), np.full(n, (canon.shape[1] - 1) / 2), np.full(n, (canon.shape[2] - 1) / 2),
                    np.ones(n)])
    z_world = (affine @ idx)[2]
    empty = slices.reshape(n, -1).max(axis=1) <= _EMPTY_LEVEL if n else np.zeros(0, bool)
    return SliceStack(slices.astype(np.float32, copy=False), float(spacing[0]), z_world.astype(np.float64),
                      file_index, axial_axis, empty)


def load_slices(path: str | Path, pixel_mm: float = PIXEL_MM, size: int = SIZE,
                hu_range: tuple[float, float] = HU_RANGE) -> SliceStack:
    """Read a CT volume and prepare its slices (see `prepare_slices`)."""
    return prepare_slices(load_volume(path), pixel_mm, size, hu_range)
