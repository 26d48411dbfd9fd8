"""A BPR-location run predicts a new scan in one command: infer scores it with the regressor the run records.

Tiny phantoms (a bone disc whose place tells the body height) with the disc as the one class; seconds.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from locseg_cli.bpr.config import BprScoreConfig, BprTrainConfig
from locseg_cli.bpr.inference import score_dataset
from locseg_cli.bpr.train import train_regressor
from locseg_cli.config import resolve_config
from locseg_cli.datasets.writers import DatasetWriter
from locseg_cli.errors import LocsegError
from locseg_cli.inference import InferConfig, infer
from locseg_cli.io.manifest import read_manifest
from locseg_cli.io.nifti import load_volume, save_volume
from locseg_cli.preprocessing import PreprocessConfig, PreprocessPlan, preprocess
from locseg_cli.training import TrainConfig, train

TINY_BPR = dict(width=4, size=32, pixel_mm=14.0, batch_volumes=3, checkpoint_every=5, steps=10)
TINY_TRAIN = {"model": "locbam", "features": "4,4,8,8,16,4", "patch_size": "16,16,32", "batch_size": 2,
              "epochs": 1, "iterations_per_epoch": 2, "val_every": 0, "workers": 0, "locbam_reduction": 4,
              "threads": 1, "fold": -1}
PIXEL, DZ = 8.0, 8.0


def _scan(phantom_array, start_score: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(column, row, slice) HU of a phantom whose lowest slice is at body score `start_score`, RAS affine."""
    canon = phantom_array(start_score + np.arange(n) * DZ / 8.5, pixel_mm=PIXEL)  # (z, y, x)
    aff = np.diag([PIXEL, PIXEL, DZ, 1.0])
    aff[:3, 3] = (-190.0, -190.0, 100.0 + start_score * 8.5)
    return np.ascontiguousarray(canon.transpose(2, 1, 0)), aff


@pytest.fixture(scope="module")
def bpr_run(tmp_path_factory, phantom_slices):
    """root with model/ (regressor), scores/, pre/ (--location bpr) and run/ (LocBAM)."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("bprinfer")
    w = DatasetWriter(root / "raw", {0: "background", 1: "bone"})
    for cid, start, n in (("t1", -5.0, 40), ("t2", 30.0, 40), ("t3", 60.0, 45)):
        img, aff = _scan(phantom_slices, start, n)
        w.write_case(cid, img, (img > 500).astype(np.uint8), aff)
    w.finish()
    # slice indices of the two anchors: score 0 in t1 (from -5, 8 mm = 0.94 units a slice), 100 in t3 (from 60)
    (root / "marks.json").write_text(json.dumps({"t1": {"pelvis_start": 5}, "t3": {"eyes_end": 42}}))
    train_regressor(root / "raw", root / "model", BprTrainConfig(**TINY_BPR), landmarks_file=root / "marks.json")
    score_dataset(root / "model", root / "raw", root / "scores", BprScoreConfig())
    preprocess(root / "raw", root / "pre", resolve_config(PreprocessConfig, None, {
        "spacing": f"{DZ},{PIXEL},{PIXEL}", "location": "bpr", "folds": 2}), bpr=root / "scores")
    train(root / "pre", root / "run", resolve_config(TrainConfig, None, TINY_TRAIN))
    return root


def test_the_run_records_its_regressor(bpr_run):
    plan = PreprocessPlan.of(read_manifest(bpr_run / "run", "train"))
    assert plan.bpr_scoring["model"] == str((bpr_run / "model").resolve())
    assert plan.bpr_scoring["config"]["smoothing_sigma"] == BprScoreConfig().smoothing_sigma


def test_a_new_scan_needs_no_scores_of_its_own_nifti_and_dicom(bpr_run, phantom_slices, tmp_path):
    cfg = resolve_config(InferConfig, None, {"threads": 1})
    img, aff = _scan(phantom_slices, 20.0, 30)
    save_volume(tmp_path / "new" / "n1.nii.gz", img, aff, dtype=np.int16)
    man, did = infer(bpr_run / "run", tmp_path / "pred", cfg, data=tmp_path / "new")
    assert did and "bpr-model" in man.inputs
    # the same as scoring first with `bpr score` and handing the scores over
    score_dataset(bpr_run / "model", tmp_path / "new", tmp_path / "scores", BprScoreConfig())
    infer(bpr_run / "run", tmp_path / "pred-scored", cfg, data=tmp_path / "new", bpr=tmp_path / "scores")
    pred = load_volume(tmp_path / "pred/n1.nii.gz", dtype=None).array
    np.testing.assert_array_equal(pred, load_volume(tmp_path / "pred-scored/n1.nii.gz", dtype=None).array)
    # and as a DICOM series: the same prediction, on the series' grid
    pytest.importorskip("pydicom")
    from synthdata import write_dicom_series

    write_dicom_series(tmp_path / "dicom" / "n1", img, aff)
    infer(bpr_run / "run", tmp_path / "pred-dicom", cfg, data=tmp_path / "dicom" / "n1")
    np.testing.assert_array_equal(pred, load_volume(tmp_path / "pred-dicom/n1.nii.gz", dtype=None).array)


def test_a_run_whose_regressor_is_gone_says_so(bpr_run, phantom_slices, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(bpr_run / "run", run)
    m = json.loads((run / "manifest.json").read_text())
    m["extra"]["preprocess"]["extra"]["bpr_scoring"]["model"] = str(tmp_path / "moved")
    (run / "manifest.json").write_text(json.dumps(m))
    img, aff = _scan(phantom_slices, 20.0, 30)
    save_volume(tmp_path / "new" / "n1.nii.gz", img, aff, dtype=np.int16)
    with pytest.raises(LocsegError) as err:
        infer(run, tmp_path / "pred", resolve_config(InferConfig), data=tmp_path / "new")
    assert str(err.value).startswith(f"{run}: the BPR model this run records is gone ({tmp_path / 'moved'})")
    assert not (tmp_path / "pred").exists()
