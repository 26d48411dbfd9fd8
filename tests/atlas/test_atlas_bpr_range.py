"""Body-position ranges: recorded by `atlas --bpr`, applied by `postprocess --method bpr-range`."""

from __future__ import annotations

import numpy as np
import pytest
from atlas_cohort import N_CASES, SHAPE, SPACING, fold0, preprocess_cohort, write_predictions

from locseg_cli.atlas import AtlasConfig, build_atlas
from locseg_cli.io.atomic import write_json
from locseg_cli.io.manifest import StageWriter
from locseg_cli.io.nifti import load_volume
from locseg_cli.postprocessing import PostprocessConfig, postprocess


def _slice_score(s: np.ndarray) -> np.ndarray:
    return 10.0 + 2.0 * s  # canonical slice s (0 = most inferior) -> body-part score


def write_scores(folder):
    """A `bpr` output: per case, the score of each slice at its world z (as `locseg bpr score` writes)."""
    with StageWriter("bpr", folder, {}, {}) as w:
        for i in range(N_CASES):
            cid = f"case_{i:03d}"
            s = np.arange(SHAPE[0], dtype=np.float64)
            # even cases are stored with world z = 2 s, odd ones axial first from z = 30 down: z = -8 + 2 s
            z_world = SPACING[0] * s + (0.0 if i % 2 == 0 else -8.0)
            scores = _slice_score(s)
            write_json(w.path(f"{cid}.json"), {"cleaned slice scores": scores.tolist(),
                                                "z": (z_world - z_world[0]).tolist(),
                                                "z_world_mm": z_world.tolist()})
            w.add_case(cid, {"scores": f"{cid}.json"}, {}, cid)
        w.finish({})


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bprcohort")
    raw, pre = preprocess_cohort(tmp)
    write_scores(tmp / "bpr")
    return raw, pre, tmp / "bpr"


def test_ranges_recorded_and_stray_class_removed(cohort, tmp_path):
    _, pre, bpr = cohort
    info = build_atlas(pre, tmp_path / "atlas", AtlasConfig(max_dilation=1), bpr=bpr)
    # the upper organ spans canonical slices 3..6, the lower one 12..15
    assert info["classes"]["1"]["bpr_range"] == pytest.approx([_slice_score(3), _slice_score(6)], abs=1e-3)
    assert info["classes"]["2"]["bpr_range"] == pytest.approx([_slice_score(12), _slice_score(15)], abs=1e-3)
    assert info["bpr_range_source"].startswith("bpr scores")

    val = fold0()["val"]
    expected = write_predictions(pre, tmp_path / "pred", val)  # stray class 1 at slices 14..15: scores 38..40
    man, _ = postprocess(tmp_path / "pred", tmp_path / "post", PostprocessConfig(method=("bpr-range",), bpr_margin=2.0),
                         atlas=tmp_path / "atlas", bpr=bpr)
    for cid in val:
        out = load_volume(tmp_path / "post" / f"{cid}.nii.gz", dtype=None).array
        assert np.array_equal(out, expected[cid])
        assert man.cases[cid]["meta"]["postprocess"]["removed_voxels"] == {"bpr-range": {"1": 8}}

    # a margin wide enough to reach the stray slices keeps everything
    man, _ = postprocess(tmp_path / "pred", tmp_path / "post-wide",
                         PostprocessConfig(method=("bpr-range",), bpr_margin=20.0), atlas=tmp_path / "atlas", bpr=bpr)
    assert all(c["meta"]["postprocess"]["removed_voxels"] == {"bpr-range": {}} for c in man.cases.values())


def test_atlas_without_scores_has_no_ranges_and_bpr_range_refuses_it(cohort, tmp_path):
    from locseg_cli.errors import LocsegError

    _, pre, bpr = cohort
    info = build_atlas(pre, tmp_path / "atlas", AtlasConfig(max_dilation=1))
    assert info["classes"]["1"]["bpr_range"] is None
    write_predictions(pre, tmp_path / "pred", fold0()["val"])
    with pytest.raises(LocsegError, match="no body-position ranges"):
        postprocess(tmp_path / "pred", tmp_path / "post", PostprocessConfig(method=("bpr-range",)),
                    atlas=tmp_path / "atlas", bpr=bpr)
