"""Largest-component filtering, masking and body-position ranges on hand-made masks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from locseg_cli.app import main
from locseg_cli.atlas.build import class_score_ranges
from locseg_cli.errors import LocsegError
from locseg_cli.io.manifest import StageWriter, read_manifest
from locseg_cli.io.nifti import load_volume, save_volume
from locseg_cli.postprocessing import PostprocessConfig, largest_component, mask_outside, postprocess
from locseg_cli.postprocessing.bpr_range import out_of_range, voxel_world_z


def _two_blobs() -> np.ndarray:
    lab = np.zeros((10, 10, 10), np.uint8)
    lab[1:4, 1:4, 1:4] = 1  # 27 voxels: kept
    lab[6:8, 6:8, 6:8] = 1  # 8 voxels: removed
    lab[6:9, 1:3, 1:3] = 2  # class 2: one component of 12
    return lab


def test_lcf_keeps_the_largest_component_per_class():
    lab = _two_blobs()
    out, removed = largest_component(lab)
    expected = lab.copy()
    expected[6:8, 6:8, 6:8] = 0
    assert np.array_equal(out, expected)
    assert removed == {1: 8, 2: 0}
    assert np.array_equal(lab, _two_blobs())  # the input is left alone
    only2, removed = largest_component(lab, classes=[2])
    assert np.array_equal(only2, lab) and removed == {2: 0}


def test_lcf_connectivity_decides_whether_corners_touch():
    lab = np.zeros((6, 6, 6), np.uint8)
    lab[0:2, 0:2, 0:2] = 3
    lab[2:4, 2:4, 2:4] = 3  # touches the first cube at one corner only
    lab[5, 5, 5] = 3
    out26, rm26 = largest_component(lab, connectivity=26)
    assert rm26 == {3: 1} and out26[5, 5, 5] == 0 and out26[2, 2, 2] == 3
    out6, rm6 = largest_component(lab, connectivity=6)
    assert rm6 == {3: 9}  # equal cubes: the first in C order stays
    assert out6[0, 0, 0] == 3 and out6[2, 2, 2] == 0 and out6[5, 5, 5] == 0
    with pytest.raises(ValueError):
        largest_component(lab, connectivity=8)


def test_mask_outside_removes_exactly_the_voxels_outside():
    lab = _two_blobs()
    keep = np.zeros(lab.shape, bool)
    keep[:5] = True
    out, removed = mask_outside(lab, {1: keep})
    assert removed == {1: 8}
    assert np.array_equal(out == 1, (lab == 1) & keep)
    assert np.array_equal(out == 2, lab == 2)


def test_class_score_ranges_and_out_of_range():
    lab = np.zeros((5, 3, 3), np.uint8)
    lab[1:3, 1, 1] = 1
    lab[4, 0, 0] = 2
    scores = np.array([10.0, 20.0, 30.0, np.nan, 50.0])
    other = np.zeros((3, 2, 2), np.uint8)
    other[0, 0, 0] = 1
    ranges = class_score_ranges([(lab, scores), (other, np.array([5.0, 6.0, 7.0]))], [1, 2, 3])
    assert ranges == {1: [5.0, 30.0], 2: [50.0, 50.0], 3: None}

    pred = np.zeros((4, 2, 2), np.uint8)
    pred[:, 0, 0] = 1
    pred[:, 1, 1] = 2
    slice_scores = np.array([0.0, 4.0, 31.0, 40.0]).reshape(4, 1, 1)
    allowed = out_of_range(pred, slice_scores, {1: ranges[1], 2: ranges[2], 3: None}, margin=2.0)
    out, removed = mask_outside(pred, allowed)
    assert removed == {1: 2, 2: 4}
    assert list(out[:, 0, 0]) == [0, 1, 1, 0]  # 4 and 31 lie within [5-2, 30+2]
    assert list(out[:, 1, 1]) == [0, 0, 0, 0]  # 40 is 8 below 50-2


def test_voxel_world_z_follows_the_affine():
    aff = np.diag([0.8, 0.8, 2.5, 1.0])
    aff[2, 3] = -100.0
    z = voxel_world_z(aff, (4, 5, 6))
    assert z.shape == (1, 1, 6)
    assert np.allclose(z.ravel(), -100.0 + 2.5 * np.arange(6))
    axial_first = np.zeros((4, 4))
    axial_first[:3, :3] = [[0, 0, -1], [0, -1, 0], [-3, 0, 0]]
    axial_first[3, 3] = 1
    assert np.allclose(voxel_world_z(axial_first, (3, 2, 2)).ravel(), [0.0, -3.0, -6.0])


def _infer_output(folder, labels_by_case, affine):
    with StageWriter("infer", folder, {"run": "r", "pre": "p"}, {}) as w:
        for cid, lab in labels_by_case.items():
            save_volume(w.path(f"{cid}.nii.gz"), lab, affine, dtype=np.uint8)
            w.add_case(cid, {"prediction": f"{cid}.nii.gz"}, {"spacing": [1.0, 1.0, 2.0]}, cid)
        w.finish({"labels": {"0": "background", "1": "a", "2": "b"}})


def test_postprocess_stage_writes_infer_shaped_output_and_skips_when_up_to_date(tmp_path):
    aff = np.diag([1.0, 1.0, 2.0, 1.0])
    _infer_output(tmp_path / "pred", {"c1": _two_blobs(), "c2": _two_blobs()[::-1].copy()}, aff)
    man, did = postprocess(tmp_path / "pred", tmp_path / "post", PostprocessConfig(method=("lcf",)))
    assert did and read_manifest(tmp_path / "post", "postprocess").cases.keys() == {"c1", "c2"}
    out = load_volume(tmp_path / "post" / "c1.nii.gz", dtype=None)
    assert out.array.dtype == np.uint8 and np.allclose(out.affine, aff)
    assert np.array_equal(out.array, largest_component(_two_blobs())[0])
    assert man.cases["c1"]["meta"]["postprocess"]["removed_voxels"] == {"lcf": {"1": 8}}
    assert man.cases["c1"]["meta"]["spacing"] == [1.0, 1.0, 2.0]
    assert man.extra["labels"]["2"] == "b" and man.config["run"] == "r" and man.config["pre"] == "p"
    _, did = postprocess(tmp_path / "pred", tmp_path / "post", PostprocessConfig(method=("lcf",)))
    assert not did
    # postprocess output chains into another postprocess
    man2, _ = postprocess(tmp_path / "post", tmp_path / "post2", PostprocessConfig(method=("lcf",)))
    assert man2.cases["c1"]["meta"]["postprocess"]["removed_voxels"] == {"lcf": {}}


def test_postprocess_refusals(tmp_path):
    _infer_output(tmp_path / "pred", {"c1": _two_blobs()}, np.eye(4))
    with pytest.raises(LocsegError, match="needs --bpr"):
        postprocess(tmp_path / "pred", tmp_path / "o1", PostprocessConfig(method=("bpr-range",)))
    with pytest.raises(LocsegError, match="unknown method"):
        from locseg_cli.config import resolve_config

        resolve_config(PostprocessConfig, None, {"method": "lcf,median"})
    (tmp_path / "notpred").mkdir()
    with pytest.raises(LocsegError, match="no manifest.json"):
        postprocess(tmp_path / "notpred", tmp_path / "o2", PostprocessConfig())


def test_postprocess_cli(tmp_path, capsys):
    _infer_output(tmp_path / "pred", {"c1": _two_blobs()}, np.eye(4))
    with pytest.raises(SystemExit) as ex:
        main(["postprocess", "--pred", str(tmp_path / "pred"), "--out", str(tmp_path / "post"),
              "--method", "lcf", "--connectivity", "6"])
    assert ex.value.code == 0
    assert "lcf removed 8 voxels" in capsys.readouterr().out
    assert json.loads((tmp_path / "post" / "manifest.json").read_text())["config"]["connectivity"] == 6
    with pytest.raises(SystemExit) as ex:
        main(["postprocess", "--pred", str(tmp_path / "pred"), "--out", str(tmp_path / "p2"), "--method", "atlas"])
    assert ex.value.code == 2
