"""Measure, rather than assert, how location-ambiguous the phantom is at a given resampling.

For patches of the size a model sees, centred on structures that only their position tells
apart, compare the patches' CT content (Pearson correlation of HU clipped to [-200, 300]):
- right kidney vs left kidney translated (what a CNN compares) and vs left kidney mirrored:
  if "mirrored" is much higher than "translated", the surroundings are mirror images and a CNN can
  read the side from them (see docs/phantom.md, "The location question"); if they are about equal, the patch carries no side cue;
- adjacent lumbar levels (L2-L3, L3-L4) vs the same level in another patient: if adjacent levels
  look as alike as the same level does across patients, the patch does not tell the level.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from nibabel import orientations as nio
from scipy import ndimage

from .anatomy import LABEL_OF
from .config import SynthConfig
from .generate import generate_case
from .storage import SynthCase


def resample_canonical(case: SynthCase, spacing_zyx: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The case's image and labels reoriented to (z, y, x) = S, A, R and resampled (linear / nearest)."""
    t = nio.ornt_transform(nio.io_orientation(case.affine), nio.axcodes2ornt(("S", "A", "R")))
    img = nio.apply_orientation(case.image, t).astype(np.float32)
    lab = nio.apply_orientation(case.label, t)
    aff = case.affine @ nio.inv_ornt_aff(t, case.image.shape)
    factors = np.sqrt((aff[:3, :3] ** 2).sum(axis=0)) / np.asarray(spacing_zyx, dtype=np.float64)
    return ndimage.zoom(img, factors, order=1), ndimage.zoom(lab, factors, order=0)


def _patch(img: np.ndarray, centre: np.ndarray, size: int) -> np.ndarray:
    lo = np.round(centre).astype(int) - size // 2
    padded = np.pad(img, size, mode="constant", constant_values=-1000.0)
    sl = tuple(slice(a + size, a + 2 * size) for a in lo)
    return np.clip(padded[sl], -200.0, 300.0)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def patch_similarity(config: SynthConfig, spacing_zyx: Sequence[float] = (5.0, 4.0, 4.0), patch: int = 32,
                     cases: Sequence[int] = (0, 1, 2, 3)) -> dict[str, float]:
    """Mean patch correlations (see the module docstring) over `cases` of the cohort `config`."""
    out: dict[str, list[float]] = {"kidney_translated": [], "kidney_mirrored": [], "adjacent_levels": [],
                                   "same_level_other_case": []}
    previous: np.ndarray | None = None
    for i in cases:
        img, lab = resample_canonical(generate_case(i, config), spacing_zyx)
        centre = {}
        for name in ("right_kidney", "left_kidney", "L2", "L3", "L4"):
            mask = lab == LABEL_OF[name]
            if mask.any():
                centre[name] = np.array(ndimage.center_of_mass(mask))
        if "right_kidney" in centre and "left_kidney" in centre:
            right = _patch(img, centre["right_kidney"], patch)
            left = _patch(img, centre["left_kidney"], patch)
            out["kidney_translated"].append(_corr(right, left))
            out["kidney_mirrored"].append(_corr(right, left[:, :, ::-1]))
        if all(n in centre for n in ("L2", "L3", "L4")):
            p2, p3, p4 = (_patch(img, centre[n], patch) for n in ("L2", "L3", "L4"))
            out["adjacent_levels"] += [_corr(p2, p3), _corr(p3, p4)]
            if previous is not None:
                out["same_level_other_case"].append(_corr(p3, previous))
            previous = p3
    return {k: float(np.mean(v)) if v else float("nan") for k, v in out.items()}
