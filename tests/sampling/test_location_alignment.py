"""Each patch's location channels are the volume's location cut at the image patch's own position.

The image voxels encode their position, so the position of every patch is read from the patch
itself; its location must then be the per-axis vectors sliced there (not one voxel beside it).
"""

from __future__ import annotations

import numpy as np

from locseg_cli.io.manifest import Manifest
from locseg_cli.location import channels_from_patch_vectors
from locseg_cli.preprocessing.store import PreprocessedCase
from locseg_cli.sampling import PatchSampler

SHAPE = (20, 18, 16)
PATCH = (8, 6, 4)


def _sampler(sampling: str = "uniform", batch_size: int = 6) -> PatchSampler:
    rng = np.random.default_rng(0)
    cases = {}
    for cid in ("a", "b"):
        image = np.arange(np.prod(SHAPE), dtype=np.float32).reshape(SHAPE)  # the voxel's flat index
        label = (rng.random(SHAPE) > 0.7).astype(np.uint8)
        # distinct, irregular vectors: a patch one voxel off has other values on every axis
        location = [np.cumsum(rng.random(n) + 0.1).astype(np.float32) for n in SHAPE]
        classes = {int(v): np.argwhere(label == v).astype(np.int32) for v in np.unique(label)}
        cases[cid] = PreprocessedCase(cid, image, label, location, classes, 0.0)
    entries = {cid: {"files": {"label": f"labels/{cid}.nii"}, "meta": {"shape": list(SHAPE)}} for cid in cases}
    sampler = PatchSampler("unused", Manifest("preprocess", {}, cases=entries), sorted(cases), PATCH, batch_size,
                           seed=5, sampling=sampling)
    sampler._cases.update(cases)
    return sampler


def _expected_location(case: PreprocessedCase, image_patch: np.ndarray) -> np.ndarray:
    start = np.unravel_index(int(image_patch.flat[0]), SHAPE)
    out = np.empty((3, *PATCH), dtype=np.float32)
    for a in range(3):
        shape = [1, 1, 1]
        shape[a] = PATCH[a]
        out[a] = np.broadcast_to(case.location[a][start[a]:start[a] + PATCH[a]].reshape(shape), PATCH)
    return out


def _case_of(sampler: PatchSampler, image_patch: np.ndarray, location: np.ndarray) -> PreprocessedCase:
    """Both cases share the image; the location (channels) tells them apart (it matches one case at most)."""
    hits = [c for c in sampler._cases.values() if np.array_equal(location, _expected_location(c, image_patch))]
    return hits[0] if hits else sampler._cases["a"]


def test_sample_location_is_cut_where_the_image_patch_is():
    for sampling in ("uniform", "class_balanced"):
        sampler = _sampler(sampling)
        rng = np.random.default_rng(1)
        for _ in range(30):
            img, lean, _ = sampler.sample(rng)
            loc = channels_from_patch_vectors(lean, PATCH)
            case = _case_of(sampler, img, loc)
            assert np.array_equal(loc, _expected_location(case, img))


def test_batch_location_is_cut_where_each_image_patch_is():
    for sampling in ("uniform", "class_balanced"):
        sampler = _sampler(sampling, batch_size=8)
        for index in range(4):
            batch = sampler.batch(index)
            for img, loc in zip(batch["image"][:, 0], channels_from_patch_vectors(batch["location"], PATCH)):
                case = _case_of(sampler, img, loc)
                assert np.array_equal(loc, _expected_location(case, img))
