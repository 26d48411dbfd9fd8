"""Atlas building blocks on hand-made arrays: probability, distances, coverage, choices."""

from __future__ import annotations

import math

import numpy as np
import pytest

from locseg_cli.atlas.build import (
    atlas_shape,
    choose_by_coverage,
    choose_by_score,
    coverage_curves,
    probability_atlas,
    resize_nearest,
    support_distance,
)


def test_atlas_shape_is_the_median_and_respects_the_voxel_cap():
    assert atlas_shape([(10, 20, 30), (12, 22, 28), (30, 40, 50)]) == (12, 22, 30)
    small = atlas_shape([(40, 40, 40)], max_voxels=1000)
    assert small == (10, 10, 10)


def test_resize_nearest_keeps_values_and_doubles_exactly():
    a = np.arange(8, dtype=np.uint8).reshape(2, 2, 2)
    b = resize_nearest(a, (4, 4, 4))
    assert np.array_equal(b, a.repeat(2, 0).repeat(2, 1).repeat(2, 2))
    assert np.array_equal(resize_nearest(b, (2, 2, 2)), a)


def test_probability_is_the_fraction_of_cases_per_voxel():
    a = np.zeros((4, 4, 4), np.uint8)
    b = np.zeros_like(a)
    a[1, 1, 1] = 1
    b[1, 1, 1] = 1
    b[2, 2, 2] = 1
    b[0, 0, 0] = 2
    prob, n = probability_atlas([a, b], [1, 2], (4, 4, 4))
    assert n == 2
    assert prob[1][1, 1, 1] == 1.0 and prob[1][2, 2, 2] == 0.5 and prob[1].sum() == 1.5
    assert prob[2][0, 0, 0] == 0.5 and prob[2].sum() == 0.5


def test_ball_and_cube_dilations():
    p = np.zeros((9, 9, 9), np.float32)
    p[4, 4, 4] = 1.0
    ball = support_distance(p, "ball")
    cube = support_distance(p, "cube")
    assert ball[4, 4, 4] == 0 and ball[4, 4, 6] == 2 and ball[5, 5, 5] == pytest.approx(math.sqrt(3))
    assert cube[5, 5, 5] == 1 and cube[6, 2, 4] == 2
    assert (ball <= 1).sum() == 7  # the centre and its 6 face neighbours
    assert (cube <= 1).sum() == 27
    capped = support_distance(p, "ball", limit=2)
    assert capped[0, 0, 0] == 3 and capped[4, 4, 6] == 2
    assert np.all(support_distance(np.zeros((3, 3, 3), np.float32), "ball", limit=2) == 3)


def test_coverage_curve_and_choices():
    p = np.zeros((6, 6, 6), np.float32)
    p[2:4, 2:4, 2:4] = 1.0
    val = np.zeros((6, 6, 6), np.uint8)
    val[2:4, 2:4, 3:5] = 1  # shifted by one voxel: half inside the support
    curves = coverage_curves({1: support_distance(p), 2: support_distance(p)}, [val], [0, 1, 2])
    assert curves[1] == {0: 0.5, 1: 1.0, 2: 1.0}
    assert all(math.isnan(v) for v in curves[2].values())  # class 2 absent from validation
    assert choose_by_coverage(curves[1], 0.99) == 1
    assert choose_by_coverage({0: 0.2, 1: 0.5}, 0.99) == 1
    assert choose_by_score({0: 0.8, 1: 0.9, 2: 0.9, 3: 0.7}) == 2
    assert choose_by_score({0: float("nan"), 1: float("nan")}) == 1
