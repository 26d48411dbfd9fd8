"""Per-case metrics on hand-made masks, checked against values computed independently here."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from locseg_cli.evaluation import EvaluateConfig, case_metrics, summarize
from locseg_cli.evaluation.metrics import label_keys


def _surface_points(mask: np.ndarray, spacing) -> np.ndarray:
    """Voxels of the mask with a 6-neighbour outside it (outside the array counts as outside), in mm."""
    padded = np.pad(mask, 1)
    inner = padded[1:-1, 1:-1, 1:-1].copy()
    for axis in range(3):
        for shift in (-1, 1):
            inner &= np.roll(padded, shift, axis=axis)[1:-1, 1:-1, 1:-1]
    edge = mask & ~inner
    return np.argwhere(edge) * np.asarray(spacing, float)


def _brute_force(pred: np.ndarray, ref: np.ndarray, spacing, tol: float, pct: float) -> tuple[float, float]:
    p, r = _surface_points(pred, spacing), _surface_points(ref, spacing)
    d = cdist(p, r)
    d_pr, d_rp = d.min(axis=1), d.min(axis=0)
    hd = max(np.percentile(d_pr, pct), np.percentile(d_rp, pct))
    nsd = ((d_pr <= tol).sum() + (d_rp <= tol).sum()) / (len(d_pr) + len(d_rp))
    return float(nsd), float(hd)


def _two_cubes(shift: int = 2) -> tuple[np.ndarray, np.ndarray]:
    pred = np.zeros((12, 12, 14), np.uint8)
    ref = np.zeros_like(pred)
    pred[2:7, 3:8, 2:8] = 1
    ref[2:7, 3:8, 2 + shift:8 + shift] = 1
    return pred, ref


def test_dice_iou_and_counts_of_two_displaced_cubes():
    pred, ref = _two_cubes(shift=2)
    m = case_metrics(pred, ref, [1], (1.0, 1.0, 1.0), EvaluateConfig(surface=False))["1"]
    n = 5 * 5 * 6
    tp = 5 * 5 * 4
    assert (m["TP"], m["FP"], m["FN"]) == (tp, n - tp, n - tp)
    assert m["TN"] == pred.size - (2 * n - tp)
    assert m["n_pred"] == n and m["n_ref"] == n
    assert m["Dice"] == pytest.approx(2 * tp / (2 * n))
    assert m["IoU"] == pytest.approx(tp / (2 * n - tp))
    assert "NSD" not in m


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (2.5, 0.8, 1.3)])
def test_nsd_and_hd95_match_brute_force_surface_distances(spacing):
    pred, ref = _two_cubes(shift=3)
    pred[4, 5, 9] = 1  # a spur, so the distances are not all alike
    cfg = EvaluateConfig(nsd_tolerance_mm=2.0, hd_percentile=95)
    m = case_metrics(pred, ref, [1], spacing, cfg)["1"]
    nsd, hd = _brute_force(pred.astype(bool), ref.astype(bool), spacing, 2.0, 95)
    assert m["HD95"] == pytest.approx(hd, rel=1e-5)
    assert m["NSD"] == pytest.approx(nsd, rel=1e-6)
    assert 0 < m["NSD"] < 1


def test_hd_of_parallel_plates_is_their_distance_by_hand():
    pred = np.zeros((10, 8, 8), np.uint8)
    ref = np.zeros_like(pred)
    pred[2, 2:6, 2:6] = 1
    ref[5, 2:6, 2:6] = 1
    spacing = (2.0, 0.7, 0.7)  # the plates are 3 slices = 6 mm apart
    m = case_metrics(pred, ref, [1], spacing, EvaluateConfig(nsd_tolerance_mm=5.9))["1"]
    assert m["HD95"] == pytest.approx(6.0)
    assert m["NSD"] == 0.0
    m = case_metrics(pred, ref, [1], spacing, EvaluateConfig(nsd_tolerance_mm=6.0, hd_percentile=100))["1"]
    assert m["HD100"] == pytest.approx(6.0)
    assert m["NSD"] == 1.0
    assert m["Dice"] == 0.0


def test_empty_masks_follow_nnunet_conventions():
    pred = np.zeros((6, 7, 8), np.uint8)
    ref = np.zeros_like(pred)
    pred[1:3, 1:3, 1:3] = 2  # label 2 predicted but absent from the reference; label 1 absent from both
    spacing = (2.0, 1.0, 1.0)
    m = case_metrics(pred, ref, [1, 2], spacing)
    assert math.isnan(m["1"]["Dice"]) and math.isnan(m["1"]["IoU"])
    assert math.isnan(m["1"]["NSD"]) and math.isnan(m["1"]["HD95"])
    assert m["2"]["Dice"] == 0.0 and m["2"]["IoU"] == 0.0 and m["2"]["NSD"] == 0.0
    assert m["2"]["HD95"] == pytest.approx(math.sqrt(12.0**2 + 7**2 + 8**2))
    assert m["2"]["FP"] == 8 and m["2"]["n_ref"] == 0


def test_regions_merge_label_values():
    ref = np.zeros((4, 6, 6), np.uint8)
    pred = np.zeros_like(ref)
    ref[1:3, 1:5, 1:3] = 1
    ref[1:3, 1:5, 3:5] = 2
    pred[1:3, 1:5, 1:5] = 3  # every voxel predicted as label 3
    keys = {"1": [1], "masses": [2, 3], "all": [1, 2, 3]}
    m = case_metrics(pred, ref, keys, (1.0, 1.0, 1.0), EvaluateConfig(surface=False))
    assert m["1"]["Dice"] == 0.0
    assert m["masses"]["TP"] == 16 and m["masses"]["FP"] == 16
    assert m["masses"]["Dice"] == pytest.approx(2 * 16 / (32 + 16))
    assert m["all"]["Dice"] == 1.0
    assert label_keys([3, 1]) == {"3": [3], "1": [1]}


def test_summary_skips_nan_cases_in_means():
    cfg = EvaluateConfig(surface=False)
    pred_a, ref_a = _two_cubes(shift=2)
    ref_b = np.zeros_like(ref_a)
    pred_b = np.zeros_like(ref_a)
    per_case = [{"metrics": case_metrics(pred_a, ref_a, [1, 2], (1, 1, 1), cfg)},
                {"metrics": case_metrics(pred_b, ref_b, [1, 2], (1, 1, 1), cfg)}]
    s = summarize(per_case, ["1", "2"], ["1", "2"], cfg)
    assert s["mean"]["1"]["Dice"] == pytest.approx(per_case[0]["metrics"]["1"]["Dice"])
    assert math.isnan(s["mean"]["2"]["Dice"])
    assert s["foreground_mean"]["Dice"] == pytest.approx(s["mean"]["1"]["Dice"])
    assert s["mean"]["1"]["TP"] == pytest.approx(per_case[0]["metrics"]["1"]["TP"] / 2)


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="shape"):
        case_metrics(np.zeros((2, 2, 2)), np.zeros((2, 2, 3)), [1], (1, 1, 1))
