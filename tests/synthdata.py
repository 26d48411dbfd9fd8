"""Small synthetic CT-like cases and raw datasets that tests write for themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np

LABELS = {0: "background", 1: "upper", 2: "lower"}


def axial_first_affine(spacing=(2.0, 1.0, 1.0), origin=(10.0, -20.0, 30.0)) -> np.ndarray:
    """KiTS23-like: array axis 0 is axial toward Inferior, axis 1 toward Posterior, 2 toward Left."""
    aff = np.eye(4)
    aff[:3, :3] = np.array([[0, 0, -spacing[2]], [0, -spacing[1], 0], [-spacing[0], 0, 0]])
    aff[:3, 3] = origin
    return aff


def make_case(shape_zyx=(24, 20, 18), seed=0, spacing=(2.0, 1.5, 1.5)):
    """A small CT-like volume in canonical (z, y, x) order: a body, an upper and a lower blob."""
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape_zyx], indexing="ij")
    body = (y**2 + x**2) < 0.8
    img = np.where(body, 40.0, -1000.0) + rng.normal(0, 5, shape_zyx)
    lab = np.zeros(shape_zyx, np.uint8)
    up = ((z - 0.45) ** 2 + y**2 + x**2) < 0.12
    low = ((z + 0.45) ** 2 + y**2 + x**2) < 0.12
    lab[up], lab[low] = 1, 2
    img[up | low] = 150.0
    return img.astype(np.int16), lab


def canonical_affine(spacing=(2.0, 1.5, 1.5)) -> np.ndarray:
    """Array (z, y, x) with axcodes S, A, R."""
    aff = np.zeros((4, 4))
    aff[0, 2], aff[1, 1], aff[2, 0], aff[3, 3] = spacing[2], spacing[1], spacing[0], 1
    return aff


def write_dataset(root: Path, n: int = 4, axial_first: tuple[int, ...] = (1,), shape=(24, 20, 18),
                  class_groups: dict[str, tuple[int, ...]] | None = None) -> Path:
    """An nnU-Net v2 raw dataset of `n` tiny cases; cases in `axial_first` are stored KiTS23-style."""
    from locseg_cli.datasets.writers import DatasetWriter

    w = DatasetWriter(root, LABELS, layout="nnunet", name="Tiny", class_groups=class_groups)
    for i in range(n):
        img, lab = make_case(shape, seed=i)
        if i in axial_first:
            # canonical (S, A, R) -> (I, P, L): flip every axis; axis order already z first
            img, lab = img[::-1, ::-1, ::-1].copy(), lab[::-1, ::-1, ::-1].copy()
            aff = axial_first_affine((2.0, 1.5, 1.5))
        else:
            # store as (x, y, z) RAS, the usual NIfTI order
            img, lab = img.transpose(2, 1, 0).copy(), lab.transpose(2, 1, 0).copy()
            aff = np.diag([1.5, 1.5, 2.0, 1.0])
        w.write_case(f"case_{i:03d}", img, lab, aff)
    w.finish()
    return root


def write_tiny_run(root: Path, **train_options) -> Path:
    """A raw dataset, its preprocessing (2 mm, 2 folds) and a seconds-long LocBAM training under `root`.

    Returns the run folder (`root/run`); `train_options` override the tiny defaults (TrainConfig keys).
    """
    from locseg_cli.config import resolve_config
    from locseg_cli.preprocessing import PreprocessConfig, preprocess
    from locseg_cli.training import TrainConfig, train

    write_dataset(root / "raw", n=4)
    preprocess(root / "raw", root / "pre", resolve_config(PreprocessConfig, None, {"spacing": "2,2,2", "folds": 2}))
    options = {"model": "locbam", "features": "4,4,8,8,16,4", "patch_size": "16,16,32", "batch_size": 4, "epochs": 1,
               "iterations_per_epoch": 4, "val_every": 0, "workers": 0, "locbam_reduction": 4, "threads": 1}
    train(root / "pre", root / "run", resolve_config(TrainConfig, None, {**options, **train_options}))
    return root / "run"
