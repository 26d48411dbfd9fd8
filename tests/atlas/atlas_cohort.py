"""A tiny labelled cohort, preprocessed for real, and `infer`-shaped predictions over it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from locseg_cli.config import resolve_config
from locseg_cli.datasets.writers import DatasetWriter
from locseg_cli.io.manifest import StageWriter, read_manifest
from locseg_cli.io.nifti import save_volume
from locseg_cli.preprocessing import PreprocessConfig, preprocess
from locseg_cli.preprocessing.splits import kfold_splits

SHAPE = (20, 16, 16)  # canonical (z, y, x)
SPACING = (2.0, 1.5, 1.5)
LABELS = {0: "background", 1: "upper", 2: "lower"}
N_CASES = 6


def case_ids() -> list[str]:
    return [f"case_{i:03d}" for i in range(N_CASES)]


def fold0() -> dict[str, list[str]]:
    """The fold-0 split preprocess will make (nnU-Net's KFold, 2 folds)."""
    return kfold_splits(case_ids(), 2, 12345)[0]


def canonical_case(i: int) -> tuple[np.ndarray, np.ndarray]:
    """Image and label in canonical (S, A, R) order. The upper organ of fold 0's validation cases
    lies one voxel further anterior than in its training cases: at dilation 0 the atlas covers
    3/4 of it, at dilation 1 all of it."""
    img = np.full(SHAPE, 40, np.int16)  # all body: the body crop keeps the whole volume
    lab = np.zeros(SHAPE, np.uint8)
    dy = 1 if f"case_{i:03d}" in fold0()["val"] else 0
    lab[3:7, 4 + dy:8 + dy, 4:8] = 1
    lab[12:16, 8:12, 8:12] = 2
    img[lab > 0] = 150
    return img, lab


def to_storage(arr: np.ndarray, i: int) -> tuple[np.ndarray, np.ndarray]:
    """How case i is stored: even cases (x, y, z) RAS, odd cases axial first toward I, P, L."""
    if i % 2 == 0:
        return arr.transpose(2, 1, 0).copy(), np.diag([SPACING[2], SPACING[1], SPACING[0], 1.0])
    aff = np.eye(4)
    aff[:3, :3] = np.array([[0, 0, -SPACING[2]], [0, -SPACING[1], 0], [-SPACING[0], 0, 0]])
    aff[:3, 3] = (10.0, -20.0, 30.0)
    return arr[::-1, ::-1, ::-1].copy(), aff


def write_cohort(root: Path) -> Path:
    w = DatasetWriter(root, LABELS, layout="nnunet", name="AtlasTiny")
    for i in range(N_CASES):
        img, lab = canonical_case(i)
        simg, aff = to_storage(img, i)
        slab, _ = to_storage(lab, i)
        w.write_case(f"case_{i:03d}", simg, slab, aff)
    w.finish()
    return root


def preprocess_cohort(tmp: Path) -> tuple[Path, Path]:
    raw = write_cohort(tmp / "raw")
    pre = tmp / "pre"
    preprocess(raw, pre, resolve_config(PreprocessConfig, None, {"spacing": "2,1.5,1.5", "folds": 2}))
    return raw, pre


def write_predictions(pre: Path, out: Path, cases: list[str], spurious: bool = True) -> dict[str, np.ndarray]:
    """An `infer`-shaped output: each case's reference label plus (optionally) a stray blob of class 1
    far from where class 1 ever lies. Returns the expected label after atlas masking, in raw order."""
    man = read_manifest(pre, "preprocess")
    expected = {}
    with StageWriter("infer", out, {"run": "fake-run"}, {}) as w:
        for cid in cases:
            i = int(cid.split("_")[1])
            _, lab = canonical_case(i)
            pred = lab.copy()
            if spurious:
                pred[14:16, 1:3, 1:3] = 1  # stray class 1, 7+ voxels below its lowest training position
            spred, aff = to_storage(pred, i)
            slab, _ = to_storage(lab, i)
            save_volume(w.path(f"{cid}.nii.gz"), spred, aff, dtype=np.uint8)
            meta = {"spacing": list(SPACING), "geometry": man.cases[cid]["meta"]["geometry"],
                    "shape": list(spred.shape)}
            w.add_case(cid, {"prediction": f"{cid}.nii.gz"}, meta, cid)
            expected[cid] = slab
        w.finish({"labels": {str(k): v for k, v in LABELS.items()}})
    return expected
