"""Resampling as nnU-Net does it: 3rd-order images, per-class order-1 labels, separate z when anisotropic.

Labels (and class probabilities) are resampled class by class with a running arg-max, so memory
stays at two float volumes whatever the number of classes, and no class can be invented.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
from skimage.transform import resize


def _resize(arr: np.ndarray, shape: Sequence[int], order: int) -> np.ndarray:
    shape = tuple(int(s) for s in shape)
    if arr.shape == shape:
        return arr.astype(np.float32, copy=False)
    if order == 1:
        return linear_resize(arr, shape)
    return resize(arr.astype(np.float32, copy=False), shape, order=order, mode="edge", anti_aliasing=False,
                  preserve_range=True).astype(np.float32, copy=False)


def linear_resize(arr: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Order-1 resize, the same numbers as skimage's `resize(order=1, mode="edge")` (pixel centres map
    to pixel centres, edges clamp), one axis after the other: linear interpolation is separable, and
    two gathers and a weighted sum per axis are several times faster than scipy's general `zoom` --
    it runs once per class on every prediction restored to its raw geometry. Each axis is done in
    slabs of another axis (the same numbers): the two gathers then exist for one slab only, which
    halves the peak memory and stays in cache (~3x faster on a 375x332x435 restore)."""
    out = arr.astype(np.float32, copy=False)
    for axis, n_out in enumerate(shape):
        n_in = out.shape[axis]
        if n_in == n_out:
            continue
        src = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
        lo = np.floor(src).astype(np.intp)
        hi = np.minimum(lo + 1, n_in - 1)
        w = (src - lo).astype(np.float32).reshape([-1 if a == axis else 1 for a in range(out.ndim)])
        resized = np.empty(out.shape[:axis] + (n_out,) + out.shape[axis + 1:], dtype=np.float32)
        along = 1 if axis == 0 else 0  # the slab axis, any axis but the one resized
        n_along = out.shape[along] if out.ndim > 1 else 1
        for start in range(0, n_along, _SLAB):
            part = (slice(None),) * along + (slice(start, start + _SLAB),) if out.ndim > 1 else (slice(None),)
            a, b = np.take(out[part], lo, axis=axis), np.take(out[part], hi, axis=axis)
            b -= a
            b *= w
            a += b
            resized[part] = a
        out = resized
    return out


_SLAB = 16  # slices per slab in `linear_resize`


def target_shape(shape: Sequence[int], spacing: Sequence[float], new_spacing: Sequence[float]) -> tuple[int, ...]:
    return tuple(max(1, int(round(n * s / t))) for n, s, t in zip(shape, spacing, new_spacing))


def needs_separate_z(spacing: Sequence[float], new_spacing: Sequence[float], threshold: float = 3.0) -> bool:
    """nnU-Net: resample the (axial) low-resolution axis separately when spacing is very anisotropic."""
    return max(spacing) / min(spacing) > threshold or max(new_spacing) / min(new_spacing) > threshold


def resample_image(arr: np.ndarray, shape: Sequence[int], order: int = 3, separate_z: bool = False) -> np.ndarray:
    """Resample an image to `shape` (axis 0 = axial); separate_z: in-plane `order`, then z nearest."""
    if separate_z and arr.shape[0] != shape[0]:
        inplane = _resize(arr, (arr.shape[0], shape[1], shape[2]), order)
        return _resize(inplane, shape, 0)
    return _resize(arr, shape, order)


def argmax_resample(channels: Iterable[tuple[int, np.ndarray]], shape: Sequence[int], order: int = 1,
                    separate_z: bool = False, background: int = 0) -> np.ndarray:
    """Resample per-class maps (value, map) and take the arg-max at the new resolution, class by class."""
    best = np.full(tuple(shape), -np.inf, dtype=np.float32)
    out = np.full(tuple(shape), background, dtype=np.uint8)
    for value, m in channels:
        r = resample_image(m, shape, order=order, separate_z=separate_z)
        better = r > best
        out[better] = value
        np.maximum(best, r, out=best)
    return out


def resample_labels(label: np.ndarray, shape: Sequence[int], separate_z: bool = False) -> np.ndarray:
    """Labels to `shape`: one-hot order 1 per present class, arg-max (never invents a class)."""
    if label.shape == tuple(shape):
        return label.astype(np.uint8, copy=True)
    values = [int(v) for v in np.unique(label)]
    onehot: Callable[[int], np.ndarray] = lambda v: (label == v).astype(np.float32)  # noqa: E731
    return argmax_resample(((v, onehot(v)) for v in values), shape, order=1, separate_z=separate_z,
                           background=values[0] if values else 0)
