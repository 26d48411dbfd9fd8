"""The patch sampler: location equals the volume's at the patch position, seeded, class-balanced."""

from __future__ import annotations

import numpy as np
import pytest

from locseg_cli.config import resolve_config
from locseg_cli.errors import LocsegError
from locseg_cli.io.manifest import read_manifest
from locseg_cli.location import volume_location_channels
from locseg_cli.preprocessing import PreprocessConfig, load_preprocessed_case, preprocess
from locseg_cli.sampling import PatchSampler
from locseg_cli.sampling.patch_sampler import crop_with_padding


@pytest.fixture
def pre(tiny_raw, tmp_path):
    preprocess(tiny_raw, tmp_path / "pre", resolve_config(PreprocessConfig, None, {"spacing": "2,2,2", "folds": 2}))
    return tmp_path / "pre"


def _sampler(pre, **kw):
    man = read_manifest(pre, "preprocess")
    args = {"patch_size": (8, 8, 8), "batch_size": 6, "seed": 3}
    args.update(kw)
    return PatchSampler(pre, man, sorted(man.cases), **args), man


def test_patch_location_is_the_volume_location_at_its_position(pre):
    sampler, man = _sampler(pre, batch_size=1)
    rng = np.random.default_rng(0)
    for _ in range(20):
        case = sampler._case(sampler.case_ids[rng.integers(len(sampler.case_ids))])
        centre = sampler._centre(case, rng, False)
        start = sampler._start(centre, case.image.shape)
        img = crop_with_padding(case.image, start, sampler.patch_size, case.pad_value)
        full = volume_location_channels(case.location)
        sl = tuple(slice(s, s + p) for s, p in zip(start, sampler.patch_size))
        assert np.array_equal(img, np.asarray(case.image)[sl])
        from locseg_cli.location import location_channels

        assert np.array_equal(location_channels(case.location, start, sampler.patch_size), full[(slice(None),) + sl])


def test_same_seed_same_batches_and_other_rank_differs(pre):
    a, _ = _sampler(pre)
    b, _ = _sampler(pre)
    for i in (0, 5, 17):
        ba, bb = a.batch(i), b.batch(i)
        for k in ("image", "location", "label"):
            assert np.array_equal(ba[k], bb[k])
    c, _ = _sampler(pre, rank=1)
    assert not np.array_equal(a.batch(0)["location"], c.batch(0)["location"])
    assert not np.array_equal(a.batch(0)["location"], a.batch(1)["location"])


def test_batch_shapes_and_dtypes(pre):
    # lean: per-axis location vectors (B, D+H+W), labels as stored (uint8)
    s, _ = _sampler(pre)
    b = s.batch(0)
    assert b["image"].shape == (6, 1, 8, 8, 8) and b["image"].dtype == np.float32
    assert b["location"].shape == (6, 24) and b["location"].dtype == np.float32
    assert b["label"].shape == (6, 1, 8, 8, 8) and b["label"].dtype == np.uint8
    # patches keep the NIfTI maps' memory order (axial fastest): cut without a transpose
    assert b["image"][0, 0].flags.f_contiguous and b["label"][0, 0].flags.f_contiguous


def test_class_balanced_centres_cover_classes_evenly(pre):
    s, man = _sampler(pre, patch_size=(1, 1, 1), batch_size=300)
    counts = np.bincount(s.batch(0)["label"].ravel(), minlength=3)
    assert counts.min() > 60  # ~100 each; uniform sampling would give the small blobs ~2% each


def test_padding_beyond_small_volumes_and_loader(pre):
    s, man = _sampler(pre, patch_size=(16, 16, 32), batch_size=2)
    b = s.batch(0)
    case = load_preprocessed_case(pre, man, s.case_ids[0])
    assert b["image"].shape == (2, 1, 16, 16, 32)
    assert (b["image"] == case.pad_value).any()
    from locseg_cli.sampling import PatchBatches

    batches = list(PatchBatches(s).loader(3, 5, workers=0))
    assert len(batches) == 2 and np.array_equal(batches[0]["image"].numpy(), s.batch(3)["image"])


def test_patch_larger_than_every_volume_is_refused(pre):
    with pytest.raises(LocsegError, match="larger than every volume"):
        _sampler(pre, patch_size=(256, 256, 256))


def _batch_cases(sampler, index: int) -> list[str]:
    """The case of each patch of batch `index`, recorded as the sampler draws them."""
    seen, draw = [], sampler._draw

    def recording(*args, **kw):
        case, start = draw(*args, **kw)
        seen.append(case.case_id)
        return case, start

    sampler._draw = recording
    try:
        batch = sampler.batch(index)
    finally:
        sampler._draw = draw
    return seen, batch


def test_volumes_per_batch_draws_that_many_volumes_in_equal_runs(pre):
    # the paper's public code: 2 volumes x 64 crops; here 2 x 3 from a 6-patch batch, 4 cases to draw from
    two, _ = _sampler(pre, volumes_per_batch=2)
    free, _ = _sampler(pre)
    distinct_free = 0
    for i in range(12):
        cases, batch = _batch_cases(two, i)
        assert len(cases) == 6 and len(set(cases[:3])) == 1 and len(set(cases[3:])) == 1
        again = two.batch(i)  # deterministic, as the default stream
        assert all(np.array_equal(batch[k], again[k]) for k in batch)
        distinct_free = max(distinct_free, len(set(_batch_cases(free, i)[0])))
    assert distinct_free > 2  # without it a batch mixes more cases: the option changes the composition
    with pytest.raises(LocsegError, match="--volumes-per-batch 4 does not divide the batch of 6"):
        _sampler(pre, volumes_per_batch=4)


def test_volumes_per_batch_zero_keeps_the_stream_of_single_samples(pre):
    s, _ = _sampler(pre)
    rng = np.random.default_rng([s.seed, s.rank, 7])
    batch = s.batch(7)
    for i in range(s.batch_size):
        img, loc, lab = s.sample(rng)
        assert np.array_equal(batch["image"][i, 0], img) and np.array_equal(batch["location"][i], loc)


def test_worker_batches_are_made_in_shared_memory_and_equal_the_stream(pre, monkeypatch):
    # in a DataLoader worker the batch is allocated in shared memory, so handing it over moves no copy
    import torch

    from locseg_cli.sampling import PatchBatches

    s, _ = _sampler(pre)
    direct = PatchBatches(s)[2]
    assert not direct["image"].is_shared()
    monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda: object())
    shared = PatchBatches(s)[2]
    assert all(t.is_shared() for t in shared.values())
    for key, array in s.batch(2).items():
        assert np.array_equal(shared[key].numpy(), array) and np.array_equal(direct[key].numpy(), array)
        assert shared[key].dtype == direct[key].dtype and shared[key].stride() == direct[key].stride()


def test_loader_with_a_worker_and_pinning_off_yields_the_stream(pre):
    from locseg_cli.sampling import PatchBatches

    s, _ = _sampler(pre)
    loader = PatchBatches(s).loader(4, 6, workers=1, pin_memory=False)
    assert loader.pin_memory is False
    got = list(loader)
    for i, batch in zip((4, 5), got):
        for key, array in s.batch(i).items():
            assert np.array_equal(batch[key].numpy(), array)
