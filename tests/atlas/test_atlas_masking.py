"""`locseg atlas` on a preprocessed cohort, and `postprocess --method atlas` with its atlas."""

from __future__ import annotations

import json

import numpy as np
import pytest
from atlas_cohort import fold0, preprocess_cohort, write_predictions

from locseg_cli.app import main
from locseg_cli.atlas import Atlas, AtlasConfig, build_atlas
from locseg_cli.errors import LocsegError
from locseg_cli.io.manifest import read_manifest
from locseg_cli.io.nifti import load_volume
from locseg_cli.postprocessing import PostprocessConfig, postprocess


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return preprocess_cohort(tmp_path_factory.mktemp("cohort"))


def test_coverage_choice_and_curve_recorded(cohort, tmp_path):
    _, pre = cohort
    info = build_atlas(pre, tmp_path / "atlas", AtlasConfig(max_dilation=3, coverage=0.99))
    assert info["train_cases"] == sorted(fold0()["train"]) or set(info["train_cases"]) == set(fold0()["train"])
    upper, lower = info["classes"]["1"], info["classes"]["2"]
    assert upper["curve"] == {"0": 0.75, "1": 1.0, "2": 1.0, "3": 1.0}  # 48 of 64 voxels at dilation 0
    assert upper["dilation"] == 1 and lower["dilation"] == 0
    assert upper["support_voxels"] == 64 and lower["support_voxels"] == 64
    atlas = Atlas.load(tmp_path / "atlas")
    assert atlas.shape == (20, 16, 16) and atlas.dilation == {1: 1, 2: 0}
    assert atlas.probability[1].max() == 1.0
    assert atlas.support(1).sum() == 64 + 6 * 16  # the 4x4x4 cube grown by one layer on each face
    on_disk = json.loads((tmp_path / "atlas" / "atlas.json").read_text())
    assert on_disk["classes"]["1"]["curve"] == upper["curve"]


def test_dice_choice_and_atlas_masking_removes_only_the_stray_blob(cohort, tmp_path):
    raw, pre = cohort
    val = fold0()["val"]
    write_predictions(pre, tmp_path / "valpred", val)
    info = build_atlas(pre, tmp_path / "atlas", AtlasConfig(max_dilation=3), pred=tmp_path / "valpred", ref=raw)
    curve = info["classes"]["1"]["curve"]
    # dilation 0 keeps 48 of the 64 true voxels and drops the blob: Dice 2*48/(48+64)
    assert curve["0"] == pytest.approx(2 * 48 / (48 + 64))
    assert curve["1"] == curve["2"] == curve["3"] == 1.0
    assert info["classes"]["1"]["dilation"] == 3  # ties go to the largest dilation
    assert info["criterion"].startswith("validation Dice")

    expected = write_predictions(pre, tmp_path / "pred", val)
    manifest, did = postprocess(tmp_path / "pred", tmp_path / "post", PostprocessConfig(method=("atlas",)),
                                atlas=tmp_path / "atlas")
    assert did and manifest.stage == "postprocess"
    for cid in val:
        out = load_volume(tmp_path / "post" / f"{cid}.nii.gz", dtype=None)
        src = load_volume(tmp_path / "pred" / f"{cid}.nii.gz", dtype=None)
        assert np.array_equal(out.array, expected[cid])
        assert np.allclose(out.affine, src.affine)
        assert manifest.cases[cid]["meta"]["postprocess"]["removed_voxels"] == {"atlas": {"1": 8}}
    assert manifest.extra["labels"]["1"] == "upper"
    assert manifest.config["run"] == "fake-run"
    read_manifest(tmp_path / "post", "postprocess")


def test_atlas_cli_and_refusals(cohort, tmp_path, capsys):
    raw, pre = cohort
    with pytest.raises(SystemExit) as ex:
        main(["atlas", "--pre", str(pre), "--out", str(tmp_path / "atlas"), "--max-dilation", "2"])
    assert ex.value.code == 0
    text = capsys.readouterr().out
    assert "upper" in text and "lower" in text
    with pytest.raises(LocsegError, match="fold"):
        build_atlas(pre, tmp_path / "a2", AtlasConfig(fold=7))
    write_predictions(pre, tmp_path / "pred", fold0()["val"])
    with pytest.raises(LocsegError, match="--atlas"):
        postprocess(tmp_path / "pred", tmp_path / "post", PostprocessConfig(method=("atlas",)))
