"""Fixture trees for the dataset tests (helpers in dataset_trees.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dataset_trees import AMOS_LABELS, kits_save, label, save, volume


@pytest.fixture
def btcv_tree(tmp_path: Path) -> Path:
    root = tmp_path / "btcv"
    for n in ("0001", "0002"):
        save(root / "RawData/Training/img" / f"img{n}.nii.gz", volume(int(n)))
        save(root / "RawData/Training/label" / f"label{n}.nii.gz", label((0, 1, 6, 13), seed=int(n)))
    save(root / "RawData/Testing/img/img0061.nii.gz", volume(61))
    return root


@pytest.fixture
def amos_tree(tmp_path: Path) -> Path:
    root = tmp_path / "amos22"
    for cid, split in (("amos_0001", "Tr"), ("amos_0005", "Tr"), ("amos_0507", "Tr"), ("amos_0010", "Va")):
        save(root / f"images{split}" / f"{cid}.nii.gz", volume(1))
        save(root / f"labels{split}" / f"{cid}.nii.gz", label((0, 8, 15)))
    save(root / "imagesTs/amos_0100.nii.gz", volume(2))
    (root / "dataset.json").write_text(json.dumps({
        "name": "AMOS", "description": "MICCAI2022 AMOS", "tensorImageSize": "3D", "modality": {"0": "CT"},
        "labels": AMOS_LABELS, "numTraining": 3, "numValidation": 1, "numTest": 1,
        "training": [{"image": f"./imagesTr/{c}.nii.gz", "label": f"./labelsTr/{c}.nii.gz"}
                     for c in ("amos_0001", "amos_0005", "amos_0507")],
        "validation": [{"image": "./imagesVa/amos_0010.nii.gz", "label": "./labelsVa/amos_0010.nii.gz"}],
        "test": [{"image": "./imagesTs/amos_0100.nii.gz"}],
    }))
    return root


@pytest.fixture
def kits_tree(tmp_path: Path) -> Path:
    root = tmp_path / "kits23"
    for cid in ("case_00000", "case_00088"):
        kits_save(root / "dataset" / cid / "imaging.nii.gz", volume(3))
        kits_save(root / "dataset" / cid / "segmentation.nii.gz", label((0, 1, 2, 3)))
    kits_save(root / "dataset/case_00001/segmentation.nii.gz", label((0, 1)))  # imaging not downloaded
    (root / "dataset/kits23.json").write_text("[]")
    return root
