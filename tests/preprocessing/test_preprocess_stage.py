"""Preprocessing: geometry round trips, labels, orientation independence, caching, folds."""

from __future__ import annotations

import json

import numpy as np
import pytest
from synthdata import write_dataset

from locseg_cli.config import resolve_config
from locseg_cli.io.manifest import read_manifest
from locseg_cli.io.nifti import load_volume
from locseg_cli.location import location_vectors
from locseg_cli.preprocessing import CaseGeometry, PreprocessConfig, preprocess
from locseg_cli.preprocessing.resample import resample_labels
from locseg_cli.preprocessing.splits import kfold_splits


def _cfg(**kw):
    return resolve_config(PreprocessConfig, None, {"spacing": "2,2,2", "folds": 2, **kw})


def test_outputs_and_location_vectors(tiny_raw, tmp_path):
    man, did = preprocess(tiny_raw, tmp_path / "pre", _cfg())
    assert did and sorted(man.cases) == [f"case_{i:03d}" for i in range(4)]
    entry = man.cases["case_000"]
    img = load_volume(tmp_path / "pre" / entry["files"]["image"], mmap=True).array
    assert isinstance(img, np.memmap)  # uncompressed, memory-mappable
    assert list(img.shape) == entry["meta"]["shape"]
    assert 0.0 <= img.min() and img.max() <= 1.0  # HU window -> [0, 1]
    with np.load(tmp_path / "pre" / entry["files"]["location"]) as z:
        for got, want in zip((z["axial"], z["coronal"], z["sagittal"]), location_vectors(img.shape)):
            assert np.allclose(got, want)
    assert man.extra["labels"] == {"0": "background", "1": "upper", "2": "lower"}
    assert 0 < man.extra["ptvc"]["small"]


def test_axial_first_case_preprocesses_like_the_canonical_one(tiny_raw, tmp_path):
    # case_001 is written KiTS23-style (axial first, every axis flipped); the data is the same as case_000's
    # up to the noise seed, so the labels must coincide voxel for voxel after preprocessing.
    preprocess(tiny_raw, tmp_path / "pre", _cfg())
    a = load_volume(tmp_path / "pre/labels/case_000.nii", dtype=None).array
    b = load_volume(tmp_path / "pre/labels/case_001.nii", dtype=None).array
    assert a.shape == b.shape and np.array_equal(a, b)


def test_geometry_round_trip_restores_raw_labels(tiny_raw, tmp_path):
    man, _ = preprocess(tiny_raw, tmp_path / "pre", _cfg(spacing="2,1.5,1.5"))
    for cid in ("case_000", "case_001"):
        geo = CaseGeometry.from_meta(man.cases[cid]["meta"]["geometry"])
        lab = load_volume(tmp_path / "pre" / man.cases[cid]["files"]["label"], dtype=None).array
        raw = load_volume(tiny_raw / f"labelsTr/{cid}.nii.gz", dtype=None)
        back = geo.restore(lab.astype(np.uint8), order=0)
        assert back.shape == raw.array.shape
        assert np.array_equal(back, raw.array)  # same spacing: exact
        assert np.allclose(geo.affine, raw.affine)


def test_label_resampling_never_invents_a_class():
    rng = np.random.default_rng(0)
    lab = np.zeros((20, 20, 20), np.uint8)
    lab[2:8, 2:8, 2:8] = 1
    lab[10:18, 5:15, 3:9] = 3
    lab[rng.random(lab.shape) > 0.995] = 5
    for shape in ((13, 27, 9), (40, 40, 40), (7, 7, 7)):
        out = resample_labels(lab, shape)
        assert set(np.unique(out)) <= {0, 1, 3, 5}


def test_rerun_is_up_to_date_and_config_change_redoes(tiny_raw, tmp_path):
    preprocess(tiny_raw, tmp_path / "pre", _cfg())
    _, did = preprocess(tiny_raw, tmp_path / "pre", _cfg())
    assert not did
    man, did = preprocess(tiny_raw, tmp_path / "pre", _cfg(window="-100,200"))
    assert did and read_manifest(tmp_path / "pre", "preprocess").config["window"] == [-100.0, 200.0]


def test_changed_raw_case_is_the_only_one_redone(tmp_path):
    raw = write_dataset(tmp_path / "raw", n=3)
    man1, _ = preprocess(raw, tmp_path / "pre", _cfg())
    mtimes = {c: (tmp_path / "pre" / e["files"]["image"]).stat().st_mtime_ns for c, e in man1.cases.items()}
    img = load_volume(raw / "imagesTr/case_002_0000.nii.gz")
    from locseg_cli.io.nifti import save_volume

    save_volume(raw / "imagesTr/case_002_0000.nii.gz", img.array + 1, img.affine, dtype=np.int16)
    man2, did = preprocess(raw, tmp_path / "pre", _cfg())
    after = {c: (tmp_path / "pre" / e["files"]["image"]).stat().st_mtime_ns for c, e in man2.cases.items()}
    assert did
    assert after["case_000"] == mtimes["case_000"] and after["case_001"] == mtimes["case_001"]
    assert after["case_002"] != mtimes["case_002"]


def test_zscore_normalisation_uses_foreground_fingerprint(tiny_raw, tmp_path):
    man, _ = preprocess(tiny_raw, tmp_path / "pre", _cfg(normalization="zscore"))
    ints = man.extra["intensity"]
    assert ints["percentile_00_5"] <= ints["mean"] <= ints["percentile_99_5"]
    img = load_volume(tmp_path / "pre/images/case_000.nii").array
    lab = load_volume(tmp_path / "pre/labels/case_000.nii", dtype=None).array
    assert abs(float(img[lab > 0].mean())) < 1.0


@pytest.mark.parametrize("n, k", [(30, 5), (7, 5), (3, 5), (10, 2)])
def test_kfold_splits_partition_the_cases(n, k):
    ids = [f"c{i:02d}" for i in range(n)]
    splits = kfold_splits(ids, k, 12345)
    assert len(splits) == min(n, k)
    vals = [v for s in splits for v in s["val"]]
    assert sorted(vals) == ids
    sizes = [len(s["val"]) for s in splits]
    assert max(sizes) - min(sizes) <= 1
    for s in splits:
        assert sorted(s["train"] + s["val"]) == ids and s["train"] == sorted(s["train"])
    assert kfold_splits(ids, k, 12345) == splits
    assert kfold_splits(ids, k, 1) != splits or n <= 3


def test_class_subset_keeps_values_and_predictions_use_them(tiny_raw, tmp_path):
    from locseg_cli.errors import LocsegError
    from locseg_cli.evaluation import EvaluateConfig, evaluate
    from locseg_cli.inference import InferConfig, infer
    from locseg_cli.training import TrainConfig, train

    with pytest.raises(LocsegError, match="'liver' is not a foreground class of this dataset"):
        preprocess(tiny_raw, tmp_path / "bad", _cfg(labels="lower,liver"))
    man, _ = preprocess(tiny_raw, tmp_path / "pre", _cfg(labels="lower"))
    assert man.extra["labels"] == {"0": "background", "2": "lower"}
    full, _ = preprocess(tiny_raw, tmp_path / "full", _cfg())
    for cid, entry in man.cases.items():
        sub = load_volume(tmp_path / "pre" / entry["files"]["label"], dtype=None).array
        ref = load_volume(tmp_path / "full" / full.cases[cid]["files"]["label"], dtype=None).array
        assert set(np.unique(sub)) <= {0, 2} and np.array_equal(sub == 2, ref == 2)  # "upper" is background now
    tiny = {"features": "4,4,8,8,16,4", "batch_size": 2, "epochs": 1, "iterations_per_epoch": 2, "val_every": 2,
            "patch_size": "16,16,32", "workers": 0, "threads": 1}
    train(tmp_path / "pre", tmp_path / "run", resolve_config(TrainConfig, None, tiny))
    assert json.loads((tmp_path / "run" / "config.json").read_text())["out_channels"] == 3  # values, not a count
    infer(tmp_path / "run", tmp_path / "pred", resolve_config(InferConfig, None, {"subset": "val", "threads": 1}),
          pre=tmp_path / "pre")
    summary = evaluate(tmp_path / "pred", tiny_raw, tmp_path / "eval", resolve_config(EvaluateConfig, None,
                                                                                      {"surface": False}))
    assert list(summary["mean"]) == ["2"]  # only the kept class is scored, against the raw labels
    for p in (tmp_path / "pred").glob("*.nii.gz"):
        assert set(np.unique(load_volume(p, dtype=None).array)) <= {0, 2}
