"""The two forms a model's location input takes: channels (B, 3, D, H, W) or per-axis vectors (B, D + H + W).

Location channel a varies along image axis a only, so its values are one profile of L_a numbers per
patch broadcast over the two other axes. Training batches carry the profiles alone (axial, then
coronal, then sagittal, concatenated; (B, 3, P) for a cubic patch of edge P), a 128 x 32^3 batch's
location in 48 KiB instead of 48 MiB; the channels are made on the device for the models that
concatenate them (CoordConv), and LocBAM's gates read the profiles directly.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .layout import to_layout


def is_axis_vectors(location: Tensor) -> bool:
    """True for the per-axis form (B, D + H + W), False for channels (B, 3, D, H, W)."""
    return location.dim() == 2


def axis_profiles(location: Tensor, spatial: Sequence[int]) -> tuple[Tensor, Tensor, Tensor]:
    """The three per-axis profiles (B, L_a) of a location in either form.

    From channels, each profile is read off one line of its channel (the channel is constant across
    the two other axes), so both forms give the very same numbers: a mean over those axes would
    equal them in exact arithmetic but differs by float rounding (summing P^2 equal float32 values).
    """
    if is_axis_vectors(location):
        d, h, w = (int(n) for n in spatial)
        return location[:, :d], location[:, d:d + h], location[:, d + h:d + h + w]
    return location[:, 0, :, 0, 0], location[:, 1, 0, :, 0], location[:, 2, 0, 0, :]


def channels_from_axis_vectors(vectors: Tensor, spatial: Sequence[int]) -> Tensor:
    """(B, 3, D, H, W) location channels broadcast from (B, D + H + W) per-axis vectors, where they live."""
    d, h, w = (int(n) for n in spatial)
    p0, p1, p2 = axis_profiles(vectors, (d, h, w))
    out = vectors.new_empty((vectors.shape[0], 3, d, h, w))
    out[:, 0] = p0[:, :, None, None]
    out[:, 1] = p1[:, None, :, None]
    out[:, 2] = p2[:, None, None, :]
    return out


def offset_axis_vectors(vectors: Tensor, offset: Tensor, spatial: Sequence[int]) -> Tensor:
    """`vectors` (B, D + H + W) plus a per-patch, per-axis `offset` (B, 3): each value of axis a moved by
    offset[:, a], as adding offset[:, a] to channel a moves every voxel of it."""
    per_value = torch.cat([offset[:, a:a + 1].expand(-1, int(n)) for a, n in enumerate(spatial)], dim=1)
    return vectors + per_value


def model_location(needs_channels: bool, vectors: Tensor, spatial: Sequence[int],
                   memory_format: torch.memory_format) -> Tensor:
    """What a model is fed from a batch's per-axis vectors: channels in `memory_format` for a model that
    concatenates them (`LocationAwareModel.needs_location_channels`), the vectors themselves otherwise."""
    if needs_channels:
        return to_layout(channels_from_axis_vectors(vectors, spatial), memory_format)
    return vectors
