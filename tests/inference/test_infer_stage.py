"""Inference: predictions in each raw image's own geometry, whatever its orientation."""

from __future__ import annotations

import numpy as np
import pytest
from synthdata import axial_first_affine, make_case

from locseg_cli.config import resolve_config
from locseg_cli.errors import LocsegError
from locseg_cli.inference import InferConfig, infer
from locseg_cli.io.nifti import canonical_orientation, load_volume, save_volume


def _orientations(folder):
    """The same volume stored three ways: RAS (x, y, z), KiTS23 axial-first (I, P, L), and L, P, S flipped."""
    img, _ = make_case((24, 20, 18), seed=11)  # canonical (z, y, x) = (S, A, R)
    ras = np.diag([1.5, 1.5, 2.0, 1.0])
    save_volume(folder / "ras.nii.gz", img.transpose(2, 1, 0), ras, dtype=np.int16)
    save_volume(folder / "kits.nii.gz", img[::-1, ::-1, ::-1], axial_first_affine((2.0, 1.5, 1.5)), dtype=np.int16)
    lps = np.diag([-1.5, -1.5, 2.0, 1.0])
    lps[:3, 3] = (50, 60, 0)
    save_volume(folder / "lps.nii.gz", img.transpose(2, 1, 0)[::-1, ::-1, :], lps, dtype=np.int16)


def test_prediction_has_raw_shape_affine_and_is_orientation_independent(run, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    _orientations(images)
    man, did = infer(run / "run", tmp_path / "pred", resolve_config(InferConfig, None, {"threads": 1}), data=images)
    assert did and sorted(man.cases) == ["kits", "lps", "ras"]
    canon = {}
    for cid in man.cases:
        raw = load_volume(images / f"{cid}.nii.gz")
        pred = load_volume(tmp_path / "pred" / f"{cid}.nii.gz", dtype=None)
        assert pred.array.shape == raw.array.shape and pred.array.dtype == np.uint8
        assert np.allclose(pred.affine, raw.affine)
        orient, _ = canonical_orientation(raw.affine, raw.array.shape)
        canon[cid] = orient.to_canonical(pred.array)
    assert np.array_equal(canon["ras"], canon["kits"]) and np.array_equal(canon["ras"], canon["lps"])
    _, did = infer(run / "run", tmp_path / "pred", resolve_config(InferConfig, None, {"threads": 1}), data=images)
    assert not did


def test_infer_from_preprocessed_and_mirroring_keeps_shape(run, tmp_path):
    cfg = resolve_config(InferConfig, None, {"mirror_axes": "2", "save_probabilities": True, "threads": 1})
    man, _ = infer(run / "run", tmp_path / "pred", cfg, pre=run / "pre", cases=["case_001"])
    raw = load_volume(run / "raw/imagesTr/case_001_0000.nii.gz")
    pred = load_volume(tmp_path / "pred/case_001.nii.gz", dtype=None)
    assert pred.array.shape == raw.array.shape and np.allclose(pred.affine, raw.affine)
    with np.load(tmp_path / "pred/probabilities/case_001.npz") as z:
        p = z["probabilities"].astype(np.float32)
    assert p.shape[0] == 3 and np.allclose(p.sum(0), 1, atol=1e-2)


def test_infer_errors(run, tmp_path):
    cfg = resolve_config(InferConfig)
    with pytest.raises(LocsegError, match="exactly one of --data"):
        infer(run / "run", tmp_path / "p", cfg)
    with pytest.raises(LocsegError, match="cases not found: nope"):
        infer(run / "run", tmp_path / "p", cfg, pre=run / "pre", cases=["nope"])
    with pytest.raises(LocsegError, match="expected `train`"):
        infer(run / "pre", tmp_path / "p", cfg, pre=run / "pre")
    assert not (tmp_path / "p").exists()


def test_the_run_carries_the_preprocessing_plan_it_was_trained_on(run):
    """`PreprocessPlan.of` reads the same plan from the preprocess output and from the run's embedded copy,
    and the embedded JSON is the plan's own `run_json` (the one format, whichever stage writes it)."""
    from locseg_cli.io.manifest import read_manifest
    from locseg_cli.preprocessing import PreprocessPlan

    pre_man, run_man = read_manifest(run / "pre", "preprocess"), read_manifest(run / "run", "train")
    plan, embedded = PreprocessPlan.of(pre_man), PreprocessPlan.of(run_man)
    assert run_man.extra["preprocess"] == plan.run_json()
    assert (embedded.config, embedded.spacing, embedded.labels, embedded.intensity, embedded.dataset) == \
        (plan.config, plan.spacing, plan.labels, plan.intensity, plan.dataset)
    assert embedded.location == "volume" and embedded.orientation == ("S", "A", "R")
