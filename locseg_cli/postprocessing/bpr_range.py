"""Body-position range filtering (beyond the paper): for scans with varying fields of view, a class
is removed at slices whose body-part-regression score lies outside the range where that class
occurred in training (`atlas.build.class_score_ranges`), widened by a margin.

Scores are on bpreg's 0..100 scale; the location signal stores (score - 50) / 100.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


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
