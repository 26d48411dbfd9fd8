"""Slices the regressor sees: canonical order whatever the storage order, HU window, 3.5 mm grid."""

from __future__ import annotations

import json

import numpy as np

from locseg_cli.bpr.slices import _fit_square, load_slices, resample_inplane, scale_hu
from locseg_cli.datasets import open_dataset


def test_scale_hu_window():
    np.testing.assert_allclose(scale_hu(np.array([-2000.0, -1000.0, 250.0, 1500.0, 3000.0])),
                               [-1, -1, 0, 1, 1], atol=1e-6)


def test_fit_square_pads_with_air_and_crops_centred():
    x = np.zeros((1, 4, 10), np.float32)
    x[0, :, 5] = 1
    out = _fit_square(x, 6)
    assert out.shape == (1, 6, 6)
    assert out[0, 0].tolist() == [-1] * 6  # padded rows are air
    assert out[0, 1:5, 3].tolist() == [1, 1, 1, 1]  # column 5 of 10 -> 3 of the centred 6


def test_resample_inplane_to_target_pixels():
    x = np.zeros((2, 100, 50), np.float32)
    out = resample_inplane(x, (1.0, 2.0), pixel_mm=4.0, size=32)
    assert out.shape == (2, 32, 32)
    # 100 mm x 100 mm -> 25 x 25 pixels, padded by 3 before and 4 after
    assert (out[:, 3:28, 3:28] == 0).all()
    assert (out[:, :, :3] == -1).all() and (out[:, :, 28:] == -1).all() and (out[:, :3] == -1).all()


def test_every_storage_order_gives_the_same_slices(tmp_path, phantom_cohort):
    cases = [("a", 10.0, 12, 10.0, "last"), ("b", 10.0, 12, 10.0, "reversed"), ("c", 10.0, 12, 10.0, "first")]
    raw = phantom_cohort(tmp_path / "raw", cases)
    stacks = {c.case_id: load_slices(c.image, pixel_mm=8.0, size=48) for c in open_dataset(raw).cases}
    ref = stacks["a"]
    assert ref.axial_axis == 2 and stacks["c"].axial_axis == 0
    assert np.all(np.diff(ref.z_world_mm) > 0)  # inferior first
    for cid in ("b", "c"):
        np.testing.assert_allclose(stacks[cid].slices, ref.slices, atol=1e-5)
        np.testing.assert_allclose(stacks[cid].z_world_mm, ref.z_world_mm, atol=1e-6)
        assert stacks[cid].z_spacing == ref.z_spacing == 10.0
        pos = json.loads((raw / "bodypos" / f"{cid}.json").read_text())
        # file_index maps each canonical slice back to the file's slice at the same world z
        np.testing.assert_allclose(np.asarray(pos["z_world_mm"])[stacks[cid].file_index], ref.z_world_mm)
    assert stacks["b"].file_index.tolist() == list(range(11, -1, -1))
    assert not ref.empty.any()
