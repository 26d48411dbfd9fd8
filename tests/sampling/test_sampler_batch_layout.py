"""`PatchSampler.batch` writes straight into the batch arrays: it must equal stacking `sample()` per patch,
and its lean location must broadcast to the channels the patch's location always was."""

from __future__ import annotations

import numpy as np
import pytest

from locseg_cli.config import resolve_config
from locseg_cli.io.manifest import read_manifest
from locseg_cli.location import (
    channels_from_patch_vectors,
    location_channels,
    patch_location_vectors,
    slice_location,
)
from locseg_cli.preprocessing import PreprocessConfig, preprocess
from locseg_cli.sampling import PatchSampler


@pytest.fixture
def pre(tiny_raw, tmp_path):
    preprocess(tiny_raw, tmp_path / "pre", resolve_config(PreprocessConfig, None, {"spacing": "2,2,2", "folds": 2}))
    return tmp_path / "pre"


@pytest.mark.parametrize("sampling,patch", [("class_balanced", (8, 8, 8)), ("nnunet", (16, 16, 32)),
                                            ("uniform", (4, 40, 8))])
def test_batch_equals_stacked_samples(pre, sampling, patch):
    man = read_manifest(pre, "preprocess")
    s = PatchSampler(pre, man, sorted(man.cases), patch, 7, seed=2, sampling=sampling)
    for index in (0, 3):
        b = s.batch(index)
        rng = np.random.default_rng([s.seed, s.rank, index])
        n_fg = int(round(s.foreground_fraction * s.batch_size)) if sampling == "nnunet" else 0
        ref = [s.sample(rng, forced_fg=i < n_fg) for i in range(s.batch_size)]
        assert np.array_equal(b["image"], np.stack([r[0] for r in ref])[:, None].astype(np.float32))
        assert np.array_equal(b["location"], np.stack([r[1] for r in ref]))
        assert np.array_equal(b["label"], np.stack([r[2] for r in ref])[:, None])
        assert b["image"].dtype == np.float32 and b["label"].dtype == np.uint8
        assert b["location"].shape == (7, sum(patch)) and b["location"].dtype == np.float32


def test_slice_location_inside_and_past_the_ends():
    vec = np.array([0.0, 0.25, 0.5, 1.0], dtype=np.float32)
    assert np.array_equal(slice_location(vec, 1, 2), [0.25, 0.5])
    assert np.allclose(slice_location(vec, -2, 3), [-0.5, -0.25, 0.0])
    assert np.allclose(slice_location(vec, 3, 3), [1.0, 1.5, 2.0])


def test_patch_location_vectors_broadcast_to_the_patch_channels():
    # inside and past either end of every axis; a non-cubic patch
    rng = np.random.default_rng(0)
    vectors = [[np.sort(rng.random(n)).astype(np.float32) for n in (5, 9, 7)] for _ in range(4)]
    starts = [(-2, 0, 3), (0, 4, 0), (3, -1, 5), (1, 1, 1)]
    lean = np.stack([patch_location_vectors(v, s, (4, 6, 5)) for v, s in zip(vectors, starts)])
    assert lean.shape == (4, 4 + 6 + 5)
    channels = channels_from_patch_vectors(lean, (4, 6, 5))
    for i in range(4):
        assert np.array_equal(channels[i], location_channels(vectors[i], starts[i], (4, 6, 5)))
