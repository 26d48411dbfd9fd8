"""Per-class probability atlases and their dilated supports (paper ref. 14, used on BTCV).

Every training label (cropped canonical box) is resized to one grid, the median box shape, and
one-hot averaged: `probability[c]` is the fraction of training cases with class c at a voxel.
The support of class c is where that fraction is > 0, dilated by r voxels of a ball or cube kernel;
all dilations come from one distance transform of the support's complement.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from scipy import ndimage


def atlas_shape(shapes: Sequence[Sequence[int]], max_voxels: int | None = None) -> tuple[int, ...]:
    """The median shape of `shapes`, shrunk uniformly to at most `max_voxels` voxels."""
    med = np.median(np.asarray(shapes, dtype=np.float64), axis=0)
    shape = np.maximum(1, np.round(med)).astype(int)
    if max_voxels is not None and int(np.prod(shape)) > max_voxels:
        f = (max_voxels / float(np.prod(shape))) ** (1.0 / len(shape))
        shape = np.maximum(1, np.floor(shape * f)).astype(int)
    return tuple(int(s) for s in shape)


def resize_nearest(array: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Nearest-neighbour resize by voxel centres (labels keep their values exactly)."""
    index = []
    for n_in, n_out in zip(array.shape, shape):
        idx = np.floor((np.arange(int(n_out)) + 0.5) * n_in / n_out).astype(np.int64)
        index.append(np.minimum(idx, n_in - 1))
    return array[np.ix_(*index)]


def probability_atlas(labels: Iterable[np.ndarray], classes: Sequence[int],
                      shape: Sequence[int]) -> tuple[dict[int, np.ndarray], int]:
    """({class: fraction of cases with the class at each voxel}, number of cases)."""
    counts = {int(c): np.zeros(tuple(shape), dtype=np.uint32) for c in classes}
    n = 0
    for lab in labels:
        small = resize_nearest(np.asarray(lab), shape)
        for c, cnt in counts.items():
            cnt += small == c
        n += 1
    if n == 0:
        raise ValueError("no labels to build an atlas from")
    return {c: (cnt / n).astype(np.float32) for c, cnt in counts.items()}, n


def support_distance(probability: np.ndarray, kernel: str = "ball", limit: int | None = None) -> np.ndarray:
    """Distance (atlas voxels) of every voxel to the class's support (probability > 0); 0 inside.

    `dist <= r` is the support dilated by a ball (Euclidean) or cube (chessboard) of radius r.
    Distances beyond `limit` are reported as `limit + 1` (computed only near the support: fast).
    """
    support = probability > 0
    far = np.float32(np.inf if limit is None else limit + 1)
    out = np.full(support.shape, far, dtype=np.float32)
    if not support.any():
        return out
    box = []
    for axis in range(support.ndim):
        other = tuple(a for a in range(support.ndim) if a != axis)
        idx = np.flatnonzero(support.any(axis=other))
        pad = support.shape[axis] if limit is None else limit + 1
        box.append(slice(max(0, int(idx[0]) - pad), min(support.shape[axis], int(idx[-1]) + 1 + pad)))
    box = tuple(box)
    if kernel == "ball":
        dist = ndimage.distance_transform_edt(~support[box])
    elif kernel == "cube":
        dist = ndimage.distance_transform_cdt(~support[box], metric="chessboard")
    else:
        raise ValueError(f"kernel must be 'ball' or 'cube', got {kernel!r}")
    dist = dist.astype(np.float32)
    if limit is not None:
        dist = np.minimum(dist, far)
    out[box] = dist
    return out


def coverage_curves(distances: dict[int, np.ndarray], labels: Iterable[np.ndarray],
                    dilations: Sequence[int]) -> dict[int, dict[int, float]]:
    """Per class: fraction of its voxels (over all `labels`, on the atlas grid) inside each dilated
    support. Cases without the class add nothing; NaN when no case has it."""
    inside = {c: np.zeros(len(dilations), dtype=np.int64) for c in distances}
    total = dict.fromkeys(distances, 0)
    shape = next(iter(distances.values())).shape if distances else None
    for lab in labels:
        small = resize_nearest(np.asarray(lab), shape)
        for c, dist in distances.items():
            d = dist[small == c]
            total[c] += d.size
            inside[c] += np.asarray([(d <= r).sum() for r in dilations], dtype=np.int64)
    return {c: {int(r): (float(i) / total[c] if total[c] else float("nan")) for r, i in zip(dilations, inside[c])}
            for c in distances}


def restore_support_distance(distance: np.ndarray, geometry, limit: int) -> np.ndarray:
    """An atlas-grid distance map in a case's raw geometry (linear, so `<= r + 0.5` is the dilated
    support resized); voxels outside the case's box count as far from every support."""
    return geometry.restore(distance.astype(np.float32), order=1, fill=float(limit + 1))


def raw_support(raw_distance: np.ndarray, dilation: int) -> np.ndarray:
    return raw_distance <= dilation + 0.5


def choose_by_coverage(curve: dict[int, float], target: float) -> int:
    """The smallest dilation reaching `target` coverage; the largest tried when none does."""
    for r in sorted(curve):
        if curve[r] >= target:
            return r
    return max(curve)


def choose_by_score(curve: dict[int, float]) -> int:
    """The dilation with the best score; among ties the largest (the safest for unseen cases)."""
    finite = {r: s for r, s in curve.items() if np.isfinite(s)}
    if not finite:
        return max(curve)
    best = max(finite.values())
    return max(r for r, s in finite.items() if s >= best - 1e-12)


def class_score_ranges(cases: Iterable[tuple[np.ndarray, np.ndarray]],
                       classes: Sequence[int]) -> dict[int, list[float] | None]:
    """{class: [lowest, highest] score of an axial slice holding the class} over `cases`.

    Each case is (label array with the axial axis first, score of each axial slice); slices with a
    non-finite score are ignored. None for a class never seen.
    """
    lo = {int(c): np.inf for c in classes}
    hi = {int(c): -np.inf for c in classes}
    for labels, scores in cases:
        scores = np.asarray(scores, dtype=np.float64)
        if scores.shape != (labels.shape[0],):
            raise ValueError(f"{scores.size} slice scores for {labels.shape[0]} axial slices")
        present = {int(v) for v in np.unique(labels)}
        for c in lo:
            if c not in present:
                continue
            axial = (labels == c).reshape(labels.shape[0], -1).any(axis=1) & np.isfinite(scores)
            if axial.any():
                lo[c] = min(lo[c], float(scores[axial].min()))
                hi[c] = max(hi[c], float(scores[axial].max()))
    return {c: ([lo[c], hi[c]] if np.isfinite(lo[c]) else None) for c in lo}
