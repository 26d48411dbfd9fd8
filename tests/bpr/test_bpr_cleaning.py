"""bpreg-style cleaning: outlier tails, slope checks, z-ordering, body part examined, record keys."""

from __future__ import annotations

import json

import numpy as np
import pytest

from locseg_cli.bpr.scores import (
    CleaningSettings,
    body_part_examined,
    body_part_examined_tag,
    boundary_indices,
    build_record,
    clean_scores,
    reference_lookup_table,
    transform_scores,
)

BPREG_KEYS = ("cleaned slice scores", "unprocessed slice scores", "z", "look-up table", "valid z-spacing",
              "reverse z-ordering", "expected slope", "observed slope", "slope ratio", "z-spacing",
              "body part examined", "body part examined tag")

IDENTITY = CleaningSettings(transform_min=0.0, transform_max=100.0)  # raw == score, bpreg's slopes


def _linear(n: int = 200, dz: float = 5.0, start: float = -10.0, slope: float = 0.118) -> tuple[np.ndarray, float]:
    return start + slope * np.arange(n) * dz, dz


def test_transform_maps_anchors_to_0_and_100():
    out = transform_scores(np.array([2.0, 7.0, 4.5]), 2.0, 7.0)
    np.testing.assert_allclose(out, [0.0, 100.0, 50.0])


def test_outlier_tails_become_nan_and_the_middle_survives():
    s, dz = _linear()
    s[:15] = s[15] + (15 - np.arange(15)) * 3.0  # legs read as higher: slope -0.6/mm below the 0-slice
    s[190:] = s[190] + (np.arange(190, 200) - 190) * 5.0  # slope 1/mm above the 100-slice
    c = clean_scores(s, dz, IDENTITY)
    assert np.isnan(c.cleaned[:12]).all()
    assert np.isnan(c.cleaned[192:]).all()
    assert np.isfinite(c.cleaned[20:185]).all()
    assert np.isfinite(c.unprocessed).all()  # unprocessed scores keep every slice
    assert c.valid_zspacing == 1.0 and c.reverse_zordering == 0.0


def test_plausible_curve_keeps_every_slice():
    s, dz = _linear()
    c = clean_scores(s, dz, IDENTITY)
    assert np.isfinite(c.cleaned).all()
    assert c.slope == pytest.approx(0.118, rel=1e-3)
    assert c.slope_ratio == pytest.approx(1.0, rel=1e-3)


@pytest.mark.parametrize("slope,valid", [(0.118 * 1.5, 0.0), (0.118 * 0.6, 0.0), (0.118 * 1.2, 1.0)])
def test_implausible_slope_sets_valid_zspacing_false(slope, valid):
    s, dz = _linear(slope=slope)
    c = clean_scores(s, dz, IDENTITY)
    assert c.valid_zspacing == valid
    rec = build_record(c, reference_lookup_table())
    assert rec["valid z-spacing"] == valid
    if valid == 0.0:
        assert rec["body part examined tag"] == "NONE"


def test_decreasing_scores_flag_reverse_z_ordering():
    s, dz = _linear()
    c = clean_scores(s[::-1].copy(), dz, IDENTITY)
    assert c.reverse_zordering == 1.0
    assert c.slope < 0
    assert c.valid_zspacing == 1.0  # bpreg compares |slope|


def test_empty_slices_are_nan_and_do_not_bend_the_smoothing():
    s, dz = _linear()
    s[50:55] = 500.0  # what a regressor may say about an air-only slice
    empty = np.zeros(len(s), bool)
    empty[50:55] = True
    c = clean_scores(s, dz, IDENTITY, empty)
    assert np.isnan(c.cleaned[50:55]).all()
    assert np.nanmax(np.abs(c.cleaned - _linear()[0])) < 2.0  # the gap's step, smoothed
    unmasked = clean_scores(s, dz, IDENTITY)
    assert np.nanmax(np.abs(unmasked.cleaned - _linear()[0])) > 20.0


def test_boundary_indices_follow_bpreg():
    assert boundary_indices(np.array([-5.0, 0.5, 50, 99.0, 120])) == (1.0, 3.0)
    lo, hi = boundary_indices(np.array([40.0, 50.0, 60.0]))  # nothing within 10 of 0 or 100
    assert np.isnan(lo) and np.isnan(hi)
    lo, hi = boundary_indices(np.array([100.0, 50.0, 0.0]))  # reversed: the 0-slice is dropped
    assert np.isnan(lo) and hi == 0.0


def test_body_part_examined_uses_the_lookup_table():
    scores = np.linspace(0, 100, 101)
    table = reference_lookup_table()
    parts = body_part_examined(scores, table)
    assert parts["pelvis"] == [float(i) for i in range(0, 29)]  # 0 <= s < 28.8
    assert parts["legs"] == []
    tag = body_part_examined_tag(scores, 8.5, 1.0, table)
    assert tag == "HEAD-NECK-CHEST-ABDOMEN-PELVIS"
    chest = np.linspace(50, 72, 40)
    assert body_part_examined_tag(chest, 5.0, 1.0, table) in ("CHEST", "CHEST-ABDOMEN")


def test_record_has_bpreg_keys_and_is_json():
    s, dz = _linear(n=30)
    c = clean_scores(s, dz, IDENTITY)
    rec = build_record(c, reference_lookup_table(), z_world_mm=np.arange(30.0), file_index=np.arange(30)[::-1],
                       axial_axis=2, case_id="x")
    for k in BPREG_KEYS:
        assert k in rec, k
    assert len(rec["z"]) == len(rec["cleaned slice scores"]) == len(rec["z_world_mm"]) == 30
    back = json.loads(json.dumps(rec))
    assert back["slice_index"][0] == 29 and back["z-spacing"] == dz
