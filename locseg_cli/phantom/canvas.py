"""The canvas the painters draw on: canonical (z, y, x) HU and label arrays with the body's outline.

The body's cross-section (inner boundary of the abdominal/chest wall) is a profile along the
body-position scale, scaled per patient.
"""

from __future__ import annotations

import numpy as np

from .fields import Box, Grid
from .patient import Patient

# Body cross-section (inner boundary of the abdominal/chest wall, mm, before the patient's scaling)
# along the body-position scale: half-width, anterior and posterior half-depth.
PROFILE_SCORES = np.array([-15, -4, 3, 12, 22, 29, 36, 44, 52, 60, 68, 73, 76, 79, 95], dtype=np.float64)
HALF_WIDTH = np.array([125, 132, 140, 143, 140, 132, 128, 130, 132, 135, 138, 134, 95, 48, 44], dtype=np.float64)
HALF_DEPTH_ANTERIOR = np.array([80, 82, 85, 82, 78, 80, 86, 92, 92, 90, 84, 78, 60, 45, 43], dtype=np.float64)
HALF_DEPTH_POSTERIOR = np.array([88, 88, 88, 88, 88, 88, 88, 88, 88, 88, 88, 86, 66, 46, 44], dtype=np.float64)
SPINE_DEPTH = np.array([55, 55, 55, 55, 55, 55, 55, 55, 48, 42, 40, 40, 36, 30, 30], dtype=np.float64)
BACK_MUSCLE = np.array([0, 0, 0, 0, 0, 0, 0, 0, 4, 18, 24, 22, 12, 2, 0], dtype=np.float64)  # shoulder girdle
NECK_SCALE = np.array([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0.7, 0.45, 0.4], dtype=np.float64)


class Canvas:
    """The canonical (z, y, x) HU and label arrays being painted, with the body's geometry."""

    def __init__(self, grid: Grid, p: Patient):
        self.g = grid
        self.p = p
        self.hu = np.full(grid.shape, -1000.0, dtype=np.float32)
        self.lab = np.zeros(grid.shape, dtype=np.uint8)
        s = grid.z / p.mm_per_score
        self.score_of_slice = s
        w, d = p.width, p.depth
        self.A = np.interp(s, PROFILE_SCORES, HALF_WIDTH).astype(np.float32) * w
        self.Bant = np.interp(s, PROFILE_SCORES, HALF_DEPTH_ANTERIOR).astype(np.float32) * d
        self.back = np.interp(s, PROFILE_SCORES, BACK_MUSCLE).astype(np.float32)  # posterior wall muscle, inward
        self.Bpost = np.interp(s, PROFILE_SCORES, HALF_DEPTH_POSTERIOR).astype(np.float32) * d - self.back
        neck = np.interp(s, PROFILE_SCORES, NECK_SCALE).astype(np.float32)
        self.spine_y = (-np.interp(s, PROFILE_SCORES, HALF_DEPTH_POSTERIOR).astype(np.float32) * d + p.fat * 0.6 * neck + np.interp(s, PROFILE_SCORES, SPINE_DEPTH) * np.sqrt(d)).astype(
            np.float32)
        self.neck = neck

    # profile values at a patient-frame z (mm)
    def at(self, name: str, z: float) -> float:
        s = z / self.p.mm_per_score
        w, d = self.p.width, self.p.depth
        if name == "A":
            return float(np.interp(s, PROFILE_SCORES, HALF_WIDTH) * w)
        if name == "Bant":
            return float(np.interp(s, PROFILE_SCORES, HALF_DEPTH_ANTERIOR) * d)
        if name == "Bpost":  # inner boundary of the back wall
            return float(np.interp(s, PROFILE_SCORES, HALF_DEPTH_POSTERIOR) * d - np.interp(s, PROFILE_SCORES, BACK_MUSCLE))
        if name == "spine_y":
            neck = float(np.interp(s, PROFILE_SCORES, NECK_SCALE))
            return float(-np.interp(s, PROFILE_SCORES, HALF_DEPTH_POSTERIOR) * d + self.p.fat * 0.6 * neck
                         + np.interp(s, PROFILE_SCORES, SPINE_DEPTH) * np.sqrt(d))
        raise KeyError(name)

    def paint(self, box: Box, mask: np.ndarray, value, label: int | None = 0) -> None:
        """Set HU (scalar or array over the box) where `mask`; set the label too unless `label` is None."""
        sub = self.hu[box]
        if np.ndim(value):
            sub[mask] = value[mask]
        else:
            sub[mask] = value
        if label is not None:
            self.lab[box][mask] = label
