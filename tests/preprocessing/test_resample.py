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


@pytest.mark.parametrize("out", [(23, 29, 17), (7, 9, 6)])
def test_labels_are_the_argmax_of_per_class_linear_resampling(out):
    """nnU-Net's label resampling: each class's one-hot map at order 1, then the arg-max (first class
    on ties). Cubic interpolation overshoots near small structures and moves their borders."""
    from locseg_cli.preprocessing.resample import linear_resize, resample_labels

    rng = np.random.default_rng(7)
    label = np.zeros((13, 16, 11), dtype=np.uint8)
    for value in range(1, 6):  # small blobs, a few voxels wide, touching each other
        z, y, x = rng.integers(0, 10), rng.integers(0, 13), rng.integers(0, 8)
        label[z:z + rng.integers(1, 4), y:y + rng.integers(1, 4), x:x + rng.integers(1, 4)] = value
    values = [int(v) for v in np.unique(label)]
    per_class = np.stack([linear_resize((label == v).astype(np.float32), out) for v in values])
    expected = np.asarray(values, dtype=np.uint8)[np.argmax(per_class, axis=0)]
    np.testing.assert_array_equal(resample_labels(label, out), expected)
