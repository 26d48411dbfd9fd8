"""Scanner geometry and acquisition: the reconstruction grid around the patient, blur and noise."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .canvas import HALF_DEPTH_ANTERIOR, HALF_DEPTH_POSTERIOR, HALF_WIDTH, Canvas
from .fields import Grid
from .patient import Patient

CT_MATRIX = 512  # reconstruction matrix of clinical CT: slices are at most 512 x 512


def acquire(c: Canvas, rng: np.random.Generator) -> np.ndarray:
    """Partial-volume blur and scanner noise, then HU as int16."""
    p = c.p
    hu = ndimage.gaussian_filter(c.hu, sigma=(0.5, 0.6, 0.6), mode="nearest")
    noise = rng.standard_normal(hu.shape, dtype=np.float32)
    noise = ndimage.gaussian_filter(noise, sigma=(0.0, 0.7, 0.7), mode="wrap")
    noise *= p.noise_hu / max(float(noise.std()), 1e-6)
    hu += noise
    np.clip(hu, -1024, 3071, out=hu)
    return np.rint(hu).astype(np.int16)


def scanner_grid(p: Patient, rng: np.random.Generator) -> Grid:
    """The reconstruction grid: the patient's field of view at its slice spacing, a square matrix
    wide enough for the body (at most CT_MATRIX pixels, so small pixels may clip the skin)."""
    sz, sy_, sx = p.spacing
    z0, z1 = p.z(p.fov_scores[0]), p.z(p.fov_scores[1])
    nz = int(round((z1 - z0) / sz)) + 1
    zline = z0 + np.arange(nz) * sz
    half_w = float(np.max(HALF_WIDTH) * p.width + p.fat + p.muscle)
    half_d = float(np.max(HALF_DEPTH_ANTERIOR + HALF_DEPTH_POSTERIOR) * p.depth + 1.6 * p.fat + p.fat_anterior
                   + 2 * p.muscle) / 2 + 16
    side = 2.0 * max(half_w, half_d) + 30.0
    n_xy = min(int(np.ceil(side / sx / 8.0) * 8), CT_MATRIX)  # small pixels: the FOV may clip the skin
    cx, cy = p.centre_xy
    ymid = 0.5 * (float(np.max(HALF_DEPTH_ANTERIOR)) * p.depth + p.fat + p.fat_anterior
                  - float(np.max(HALF_DEPTH_POSTERIOR)) * p.depth - 0.6 * p.fat - 14.0)
    xline = cx + (np.arange(n_xy) - (n_xy - 1) / 2.0) * sx
    yline = ymid + cy + (np.arange(n_xy) - (n_xy - 1) / 2.0) * sy_
    return Grid(zline, yline, xline, rng, deform_mm=(2.5, 3.0, 4.5), deform_ctrl_mm=70.0)
