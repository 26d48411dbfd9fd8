"""Resampling: the fast order-1 path gives the numbers skimage gives."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize("shape,out", [((20, 17, 13), (41, 9, 30)), ((7, 5, 3), (7, 11, 3)), ((1, 4, 4), (3, 8, 8)),
                                       ((9, 9, 9), (2, 1, 5))])
def test_linear_resize_matches_skimage_order_1(shape, out):
    from skimage.transform import resize

    from locseg_cli.preprocessing.resample import linear_resize

    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    ref = resize(x, out, order=1, mode="edge", anti_aliasing=False, preserve_range=True)
    got = linear_resize(x, out)
    assert got.shape == out and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, atol=1e-5)
