"""Body-position range filtering (beyond the paper): for scans with varying fields of view, a class
is removed at slices whose body-part-regression score lies outside the range where that class
occurred in training, widened by a margin.

Scores are on bpreg's 0..100 scale; the location signal stores (score - 50) / 100.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np


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


def voxel_world_z(affine: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """World superior coordinate (mm) of each voxel, as an array broadcastable to `shape`."""
    a = np.asarray(affine, dtype=np.float64)
    z = np.full([1] * len(shape), a[2, 3])
    for axis, n in enumerate(shape):
        coef = a[2, axis]
        if coef == 0:
            continue
        view = [1] * len(shape)
        view[axis] = int(n)
        z = z + (coef * np.arange(int(n), dtype=np.float64)).reshape(view)
    return z


def voxel_scores(record: dict[str, Any], affine: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Body-part score of each voxel of a raw image (broadcastable to `shape`) from its score record."""
    from ..bpr import location_scores

    z = voxel_world_z(affine, shape)
    return location_scores(record, z.ravel()).reshape(z.shape)


def out_of_range(labels: np.ndarray, scores: np.ndarray, ranges: dict[int, list[float] | None],
                 margin: float) -> dict[int, np.ndarray]:
    """{class: voxels where the class may stay}: score within its training range +- `margin`.

    Classes without a training range are left alone (every voxel allowed).
    """
    allowed: dict[int, np.ndarray] = {}
    for c, rng in ranges.items():
        if rng is None or not (labels == c).any():
            continue
        ok = (scores >= rng[0] - margin) & (scores <= rng[1] + margin)
        allowed[int(c)] = np.broadcast_to(ok, labels.shape)
    return allowed
