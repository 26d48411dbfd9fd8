"""The one definition of the location signal."""

from __future__ import annotations

import numpy as np
import pytest

from locseg_cli.location import (
    apply_shift,
    axial_from_scores,
    location_channels,
    location_vectors,
    slice_location,
    volume_location_channels,
)


def test_volume_coordinates_are_linspace_over_the_volume():
    v = location_vectors((10, 20, 5))
    for vec, n in zip(v, (10, 20, 5)):
        assert np.allclose(vec, np.linspace(-0.5, 0.5, n))


def test_patch_location_equals_slice_of_volume_channels():
    vecs = location_vectors((12, 9, 15))
    full = volume_location_channels(vecs)
    start, size = (3, 2, 5), (4, 6, 7)
    patch = location_channels(vecs, start, size)
    sl = tuple(slice(s, s + n) for s, n in zip(start, size))
    assert np.array_equal(patch, full[(slice(None),) + sl])
    # each channel varies along its own axis only
    assert np.ptp(patch[0], axis=0).max() > 0 and np.ptp(patch[0], axis=(1, 2)).max() == 0
    assert np.ptp(patch[2], axis=(0, 1)).max() == 0


def test_location_extends_linearly_past_the_border():
    vec = np.linspace(-0.5, 0.5, 11).astype(np.float32)
    out = slice_location(vec, -2, 15)
    assert np.allclose(out, np.linspace(-0.5 - 0.2, 0.5 + 0.2, 15), atol=1e-6)


def test_axial_shift_moves_only_the_axial_channel():
    vecs = location_vectors((8, 8, 8))
    shifted = apply_shift(vecs, 25)
    assert np.allclose(shifted[0], vecs[0] + 0.25)
    assert np.array_equal(shifted[1], vecs[1]) and np.array_equal(shifted[2], vecs[2])
    assert np.allclose(apply_shift(vecs, 100, "all")[2], vecs[2] + 1.0)
    with pytest.raises(ValueError):
        apply_shift(vecs, 101)


def test_axial_from_scores_interpolates_and_extrapolates_linearly():
    z = np.arange(0, 100, 5.0)
    scores = 20 + 0.5 * z  # 20..69.5
    scores[0] = np.nan
    scores[-1] = 150  # out of range: ignored
    q = np.array([10.0, 42.5, -20.0, 200.0])
    out = axial_from_scores(z, scores, q)
    expected = (20 + 0.5 * q - 50) / 100
    assert np.allclose(out, expected, atol=1e-5)
    with pytest.raises(ValueError):
        axial_from_scores(z, np.full_like(z, np.nan), q)
