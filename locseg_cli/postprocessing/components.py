"""Largest-connected-component filtering: per class, keep only its largest 3D component."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

CONNECTIVITY = {6: 1, 18: 2, 26: 3}  # neighbours -> scipy's generate_binary_structure rank


def present_classes(labels: np.ndarray) -> list[int]:
    return [int(v) for v in np.unique(labels) if v != 0]


def largest_component(labels: np.ndarray, classes: Sequence[int] | None = None,
                      connectivity: int = 26) -> tuple[np.ndarray, dict[int, int]]:
    """A copy of `labels` where each class in `classes` (default: all present) keeps only its largest
    connected component; removed voxels become background. Returns (labels, removed voxels per class).

    Ties between equally large components keep the one met first in C order, so the result is
    deterministic. Only the class's bounding box is labelled, which keeps large volumes fast.
    """
    if connectivity not in CONNECTIVITY:
        raise ValueError(f"connectivity must be 6, 18 or 26, got {connectivity}")
    structure = ndimage.generate_binary_structure(labels.ndim, CONNECTIVITY[connectivity])
    out = labels.copy()
    removed: dict[int, int] = {}
    todo = present_classes(labels) if classes is None else [int(c) for c in classes]
    for c in todo:
        mask = labels == c
        boxes = ndimage.find_objects(mask.astype(np.uint8))
        if not boxes or boxes[0] is None:
            removed[c] = 0
            continue
        box = boxes[0]
        comp, n = ndimage.label(mask[box], structure=structure)
        if n <= 1:
            removed[c] = 0
            continue
        sizes = np.bincount(comp.ravel())[1:]
        keep = int(np.argmax(sizes)) + 1
        drop = (comp != keep) & (comp > 0)
        region = out[box]
        region[drop] = 0
        removed[c] = int(drop.sum())
    return out, removed


def mask_outside(labels: np.ndarray, allowed: dict[int, np.ndarray]) -> tuple[np.ndarray, dict[int, int]]:
    """A copy of `labels` where voxels of class c outside `allowed[c]` (a boolean mask) become
    background. Returns (labels, removed voxels per class)."""
    out = labels.copy()
    removed: dict[int, int] = {}
    for c, keep in allowed.items():
        if keep.shape != labels.shape:
            raise ValueError(f"mask of class {c} has shape {keep.shape}, labels {labels.shape}")
        drop = (labels == c) & ~keep
        out[drop] = 0
        removed[int(c)] = int(drop.sum())
    return out, removed
