"""A prediction goes back to the raw grid where its voxels came from, body crop included.

The raw image has air around the body, so the body box is smaller than the volume and starts away
from its first voxel: a restore that forgot the box's offset would put every label beside its place.
"""

from __future__ import annotations

import numpy as np

from locseg_cli.config import resolve_config
from locseg_cli.io.nifti import Volume
from locseg_cli.preprocessing import PreprocessConfig, prepare_case

RAW_SHAPE = (30, 26, 22)  # (x, y, z) as stored: the canonical array is reoriented from it
SPACING = (2.0, 1.5, 1.0)  # x, y, z mm


def _raw_case() -> tuple[Volume, Volume]:
    rng = np.random.default_rng(4)
    image = np.full(RAW_SHAPE, -1000.0, dtype=np.float32)  # air
    body = (slice(6, 25), slice(4, 19), slice(3, 16))
    image[body] = rng.normal(40, 10, size=image[body].shape)
    label = np.zeros(RAW_SHAPE, dtype=np.float32)
    label[8:14, 6:12, 5:9] = 1
    label[15:22, 10:17, 9:14] = 2
    label[20:24, 5:8, 4:7] = 3
    affine = np.diag([*SPACING, 1.0])
    affine[:3, 3] = (-30.0, 12.0, 100.0)
    return Volume(image, affine), Volume(label, affine)


def test_restored_prediction_lands_on_the_raw_voxels_it_came_from():
    image, label = _raw_case()
    # spacing (z, y, x) equal to the raw spacing: no resampling, so the round trip is exact
    cfg = resolve_config(PreprocessConfig, None, {"spacing": "1,1.5,2"})
    prep = prepare_case(image, label, cfg, (1.0, 1.5, 2.0))
    geometry = prep.geometry
    assert geometry.box_shape != geometry.canonical_shape  # the body crop is not the whole volume
    assert any(a > 0 for a, _ in geometry.crop)
    assert prep.label.shape == geometry.box_shape
    classes = [0, 1, 2, 3]
    restored = geometry.restore_argmax(classes, lambda c: (prep.label == c).astype(np.float32))
    assert restored.shape == RAW_SHAPE
    np.testing.assert_array_equal(restored, label.array.astype(np.uint8))
    np.testing.assert_array_equal(geometry.restore(prep.label), label.array.astype(np.uint8))
