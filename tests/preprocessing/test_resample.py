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


@pytest.mark.parametrize("shape,out,separate_z", [
    ((12, 14, 10), (31, 25, 19), False),  # up-sampling, as a restore to the raw grid
    ((12, 14, 10), (5, 9, 10), False),  # down-sampling, one axis unchanged
    ((6, 14, 10), (19, 25, 23), True),  # anisotropic: in-plane linear, z nearest
    ((6, 14, 10), (6, 25, 23), True),
])
@pytest.mark.parametrize("kind", ["logits", "smooth", "ties"])
def test_argmax_resample_equals_resampling_every_class(shape, out, separate_z, kind):
    """The order-1 arg-max computes only the voxels near a class border, with the same result as
    resampling every class map to the new grid (also on ties and near-ties, bit for bit)."""
    from locseg_cli.preprocessing.resample import argmax_resample

    rng = np.random.default_rng(3)
    values = [0, 1, 2, 4, 7]
    if kind == "logits":  # noisy: borders everywhere
        maps = {v: rng.normal(size=shape).astype(np.float32) for v in values}
    elif kind == "smooth":  # large regions with one winner, as a trained network's logits
        z, y, x = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
        centres = rng.uniform(-1, 1, size=(len(values), 3))
        maps = {v: (10 - 8 * ((z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2)).astype(np.float32)
                for v, c in zip(values, centres)}
        maps[2] = maps[1] + np.float32(1e-7)  # a near-tie everywhere between two classes
    else:  # one-hot maps of a label (exact ties between all other classes)
        label = rng.choice(values, size=shape, p=[0.6, 0.1, 0.1, 0.1, 0.1])
        maps = {v: (label == v).astype(np.float32) for v in values}
    got = argmax_resample(values, maps.__getitem__, out, order=1, separate_z=separate_z)
    every_class = argmax_resample(values, maps.__getitem__, out, order=1, separate_z=separate_z, dense=True)
    np.testing.assert_array_equal(got, every_class)


@pytest.mark.parametrize("shape,out,separate_z", [
    ((12, 14, 10), (31, 25, 19), False),
    ((12, 14, 10), (5, 9, 10), False),
    ((6, 14, 10), (19, 25, 23), True),
    ((6, 14, 10), (6, 25, 23), True),
    ((6, 14, 10), (6, 14, 10), False),  # nothing to resample: a copy, exact
])
@pytest.mark.parametrize("kind", ["logits", "smooth", "ties"])
def test_interpolate_argmax_follows_resampling_every_class(shape, out, separate_z, kind):
    """The restore's torch path gives the labels of resampling every class map (`argmax_resample`'s
    definition) wherever the two best classes differ by more than float32 rounding of the coordinate."""
    from locseg_cli.preprocessing.resample import argmax_resample, interpolate_argmax, resample_image

    rng = np.random.default_rng(5)
    values = [0, 1, 2, 4, 7]
    if kind == "logits":
        maps = {v: rng.normal(size=shape).astype(np.float32) for v in values}
    elif kind == "smooth":
        z, y, x = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
        centres = rng.uniform(-1, 1, size=(len(values), 3))
        maps = {v: (10 - 8 * ((z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2)).astype(np.float32)
                for v, c in zip(values, centres)}
    else:
        label = rng.choice(values, size=shape, p=[0.6, 0.1, 0.1, 0.1, 0.1])
        maps = {v: (label == v).astype(np.float32) for v in values}
    got = interpolate_argmax(values, maps.__getitem__, out, separate_z=separate_z, slab=4)
    every_class = argmax_resample(values, maps.__getitem__, out, order=1, separate_z=separate_z, dense=True)
    resampled = np.sort(np.stack([resample_image(maps[v], out, order=1, separate_z=separate_z) for v in values]), 0)
    scale = max(float(np.abs(resampled).max()), 1.0)
    close = resampled[-1] - resampled[-2] <= 1e-4 * scale
    assert got.shape == tuple(out) and got.dtype == np.uint8
    np.testing.assert_array_equal(got[~close], every_class[~close])
    if shape == out:  # nothing resampled: a copy, exact
        np.testing.assert_array_equal(got, every_class)
    elif kind == "logits":  # noisy logits: near-ties are rare
        assert close.mean() < 0.01
