"""The two location forms a model takes: per-axis vectors broadcast to exactly the channels, and back."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from locseg_cli.location import channels_from_patch_vectors, location_vectors, patch_location_vectors
from locseg_cli.models.base import check_inputs
from locseg_cli.models.location_input import (
    axis_profiles,
    channels_from_axis_vectors,
    model_location,
    offset_axis_vectors,
)

SIZE = (4, 6, 5)


def _vectors(batch: int = 3) -> torch.Tensor:
    vecs = location_vectors((9, 11, 13))
    return torch.from_numpy(np.stack([patch_location_vectors(vecs, (i - 1, 2 * i, 3 - i), SIZE) for i in range(batch)]))


def test_device_broadcast_equals_the_host_channels_and_profiles_read_back_exactly():
    vectors = _vectors()
    channels = channels_from_axis_vectors(vectors, SIZE)
    assert torch.equal(channels, torch.from_numpy(channels_from_patch_vectors(vectors.numpy(), SIZE)))
    for from_vectors, from_channels in zip(axis_profiles(vectors, SIZE), axis_profiles(channels, SIZE)):
        assert torch.equal(from_vectors, from_channels)


def test_an_offset_per_axis_moves_the_vectors_as_it_moves_the_channels():
    vectors, offset = _vectors(), torch.tensor([[0.1, -0.2, 0.3], [0.0, 1.0, 2.0], [-1.0, 0.5, 0.25]])
    moved = offset_axis_vectors(vectors, offset, SIZE)
    assert torch.equal(channels_from_axis_vectors(moved, SIZE),
                       channels_from_axis_vectors(vectors, SIZE) + offset[:, :, None, None, None])


def test_model_location_broadcasts_only_for_models_that_need_channels():
    vectors = _vectors()
    assert model_location(False, vectors, SIZE, torch.channels_last_3d) is vectors
    channels = model_location(True, vectors, SIZE, torch.channels_last_3d)
    assert channels.shape == (3, 3, *SIZE) and channels.is_contiguous(memory_format=torch.channels_last_3d)


def test_misaligned_vectors_are_refused():
    image = torch.zeros(3, 1, *SIZE)
    check_inputs(image, _vectors())
    with pytest.raises(ValueError, match=r"not \(B, D\+H\+W\)"):
        check_inputs(image, _vectors()[:, :-1])
    with pytest.raises(ValueError, match=r"not \(B, D\+H\+W\)"):
        check_inputs(image[:2], _vectors())
