"""The common shape of every segmentation model: (image, location) -> logits.

All models take the location, even those that ignore them, so sampling, training, inference and
the shift evaluation run one code path for every registry entry. The location comes as channels or
as per-axis vectors (`models.location_input`); every model accepts both and computes the same numbers.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from .location_input import channels_from_axis_vectors, is_axis_vectors, offset_axis_vectors


class LocationAwareModel(nn.Module):
    """Base class: `forward(image (B,Cin,D,H,W), location) -> logits (B,Cout,D,H,W)`.

    `location` is (B,3,D,H,W) channels or (B, D+H+W) per-axis vectors. Location channel a is aligned
    with image axis a (0 axial D, 1 H, 2 W) and varies along that axis only (see
    `locseg_cli.location`). Subclasses implement `segment`.
    """

    uses_location: ClassVar[bool] = False
    # Whether `segment` needs the location as full channels (a batch's vectors are broadcast on the
    # device first, `location_input.model_location`); models that read per-axis profiles do not.
    needs_location_channels: ClassVar[bool] = True

    def __init__(self, location_noise: float = 0.0) -> None:
        super().__init__()
        self.location_noise = float(location_noise)

    def forward(self, image: Tensor, location: Tensor) -> Tensor:
        check_inputs(image, location)
        return self.segment(image, self.perturb_location(location, image.shape[2:]))

    def location_channels(self, image: Tensor, location: Tensor) -> Tensor:
        """The location as (B,3,D,H,W) channels, broadcast here when it came as per-axis vectors."""
        if is_axis_vectors(location):
            return channels_from_axis_vectors(location, image.shape[2:])
        return location

    def segment(self, image: Tensor, location: Tensor) -> Tensor:
        raise NotImplementedError

    def perturb_location(self, location: Tensor, spatial: tuple[int, ...] | torch.Size = ()) -> Tensor:
        """In training mode with `location_noise` > 0, shift each channel of each patch by N(0, noise).

        A per-patch offset (not per-voxel noise) models positional uncertainty between patients
        while keeping the within-patch geometry, the augmentation the paper's outlook proposes.
        `spatial` (D, H, W) splits per-axis vectors into their axes.
        """
        if not (self.training and self.location_noise > 0 and self.uses_location):
            return location
        offset = torch.randn(location.shape[0], 3, device=location.device, dtype=location.dtype) * self.location_noise
        if is_axis_vectors(location):  # the same draws and sums as for channels, per value of each axis
            return offset_axis_vectors(location, offset, spatial)
        return location + offset[:, :, None, None, None]


def check_inputs(image: Tensor, location: Tensor) -> None:
    """Fail early and clearly when a caller passes misaligned image and location tensors."""
    if image.ndim != 5:
        raise ValueError(f"image must be (B, C, D, H, W), got shape {tuple(image.shape)}")
    if is_axis_vectors(location):
        if location.shape != (image.shape[0], sum(image.shape[2:])):
            raise ValueError(f"per-axis location {tuple(location.shape)} is not (B, D+H+W) of image "
                             f"{tuple(image.shape)}")
        return
    if location.ndim != 5 or location.shape[1] != 3:
        raise ValueError(f"location must be (B, 3, D, H, W) or (B, D+H+W), got shape {tuple(location.shape)}")
    if location.shape[0] != image.shape[0] or location.shape[2:] != image.shape[2:]:
        raise ValueError(f"location {tuple(location.shape)} is not aligned with image {tuple(image.shape)}")


def convert_sync_batchnorm(model: nn.Module) -> nn.Module:
    """BatchNorm -> SyncBatchNorm, for use under DDP only; outside an initialised process group a no-op.

    (The public code used SyncBatchNorm by default, which breaks single-process runs.)
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return model
    return nn.SyncBatchNorm.convert_sync_batchnorm(model)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
