"""axial_location / location_scores / load_scores: the API preprocess calls."""

from __future__ import annotations

import numpy as np
import pytest

from locseg_cli.bpr import axial_location, load_scores, location_scores
from locseg_cli.errors import LocsegError
from locseg_cli.io.atomic import write_json
from locseg_cli.io.manifest import StageWriter


def _record(z, cleaned, **extra):
    rec = {"cleaned slice scores": [float(v) for v in cleaned], "z_world_mm": [float(v) for v in z],
           "unprocessed slice scores": [float(v) for v in cleaned], "case_id": "c1"}
    rec.update(extra)
    return rec


def test_inside_the_valid_range_scores_are_interpolated():
    z = np.arange(0, 500, 5.0)
    s = 10 + 0.118 * z + 0.5 * np.sin(z / 20)  # valid everywhere (10 .. 69)
    rec = _record(z, s)
    np.testing.assert_allclose(axial_location(rec, z), (s - 50) / 100, atol=1e-6)
    mid = (z[:-1] + z[1:]) / 2
    np.testing.assert_allclose(location_scores(rec, mid), (s[:-1] + s[1:]) / 2, atol=1e-4)
    assert axial_location(rec, z).dtype == np.float32


def test_outside_the_valid_range_extrapolation_is_linear():
    z = np.arange(0, 1000, 5.0)
    true = -20 + 0.118 * z  # -20 .. 97.9
    noisy = true + 0.3 * np.cos(z / 7)
    cleaned = noisy.copy()
    cleaned[:10] = np.nan  # a cleaned-away tail
    rec = _record(z, cleaned)
    valid = np.isfinite(cleaned) & (cleaned >= 0) & (cleaned <= 100)
    lo = z[valid].min()
    below = np.arange(-400, lo - 1, 10.0)
    out = location_scores(rec, below)
    assert np.abs(np.diff(out, 2)).max() < 1e-3  # a straight line (float32 output)
    np.testing.assert_allclose(np.diff(out) / 10.0, 0.118, rtol=0.02)  # with the valid slices' slope
    assert out.min() < -50  # not clipped to the 0..100 scale
    far_above = location_scores(rec, np.array([1500.0, 2000.0]))
    assert far_above[1] - far_above[0] == pytest.approx(0.118 * 500, rel=0.02)


def test_scores_above_100_are_replaced_by_the_line():
    z = np.arange(0, 300, 5.0)
    s = 60 + 0.2 * z  # 60 .. 119.8: the top part is out of range
    rec = _record(z, s)
    top = z[s > 100]
    np.testing.assert_allclose(location_scores(rec, top), 60 + 0.2 * top, atol=1e-6)


def test_a_scan_wholly_above_the_range_uses_its_own_scores():
    z = np.arange(0, 200, 10.0)
    s = 105 + 0.1 * z  # head above the eyes: 105 .. 124
    rec = _record(z, s)
    q = np.array([-100.0, 55.0, 300.0])
    np.testing.assert_allclose(location_scores(rec, q), 105 + 0.1 * q, atol=1e-4)


def test_slice_order_of_the_record_does_not_matter():
    z = np.arange(0, 400, 4.0)
    s = 5 + 0.118 * z
    q = np.linspace(-100, 600, 37)
    a = axial_location(_record(z, s), q)
    b = axial_location(_record(z[::-1], s[::-1]), q)
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_records_without_world_z_or_valid_slices_fail_with_one_line():
    rec = {"cleaned slice scores": [1.0, 2.0, 3.0], "case_id": "c1"}
    with pytest.raises(LocsegError, match="--data"):
        axial_location(rec, np.zeros(3))
    with pytest.raises(LocsegError, match="valid"):
        axial_location(_record([0, 1, 2], [np.nan, np.nan, 160]), np.zeros(3))
    with pytest.raises(LocsegError, match="z_world_mm"):
        axial_location(_record([0, 1], [1.0, 2.0, 3.0]), np.zeros(3))


def test_null_scores_from_other_writers_count_as_nan():
    rec = _record([0, 10, 20, 30], [10, 11, 12, 13])
    rec["cleaned slice scores"][0] = None
    out = location_scores(rec, np.array([10.0, 30.0, -10.0]))
    np.testing.assert_allclose(out, [11, 13, 9], atol=1e-5)


def test_load_scores_reads_a_bpr_stage_folder(tmp_path):
    out = tmp_path / "bpr"
    rec = _record([0, 10], [1, 2])
    with StageWriter("bpr", out, {}, {}) as w:
        write_json(w.path("c1.json"), rec)
        w.add_case("c1", {"scores": "c1.json"}, {}, "fp")
        w.finish()
    assert load_scores(out, "c1")["cleaned slice scores"] == [1.0, 2.0]
    with pytest.raises(LocsegError, match="no body-part scores for case"):
        load_scores(out, "c2")
    with pytest.raises(LocsegError):
        load_scores(out, "../c1")
    with pytest.raises(LocsegError, match="manifest"):
        load_scores(tmp_path, "c1")
