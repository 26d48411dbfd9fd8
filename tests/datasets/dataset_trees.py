"""Helpers that build dataset fixture trees: a few voxels per volume, real file names and quirks."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

SHAPE = (4, 5, 6)
RAS_AFFINE = np.array([[0.8, 0, 0, -10.0], [0, 0.8, 0, 20.0], [0, 0, 2.5, 30.0], [0, 0, 0, 1]])


def volume(seed: int = 0, shape=SHAPE) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 100, shape).astype(np.float32)


def label(values=(0, 1, 2), shape=SHAPE, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).choice(np.asarray(values), size=shape).astype(np.uint8)


def save(path: Path, array: np.ndarray, affine: np.ndarray = RAS_AFFINE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = nib.Nifti1Image(array, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    nib.save(img, str(path))
    return path


AMOS_LABELS = {"0": "background", "1": "spleen", "2": "right kidney", "3": "left kidney", "4": "gall bladder",
               "5": "esophagus", "6": "liver", "7": "stomach", "8": "arota", "9": "postcava", "10": "pancreas",
               "11": "right adrenal gland", "12": "left adrenal gland", "13": "duodenum", "14": "bladder",
               "15": "prostate/uterus"}


def kits_save(path: Path, array_ras: np.ndarray) -> Path:
    """Store like KiTS23: axial axis first (I,P,L), sform only."""
    from locseg_cli.datasets.writers import save_kits23_volume

    path.parent.mkdir(parents=True, exist_ok=True)
    save_kits23_volume(path, array_ras, RAS_AFFINE)
    return path
