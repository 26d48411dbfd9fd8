"""The paper's three models (LocBAM paper §2; see docs/models.md), registered by name."""

from __future__ import annotations

import torch
from torch import Tensor

from .backbone import UNetBackbone, location_pyramid
from .base import LocationAwareModel
from .config import ModelConfig
from .locbam import LocBAM
from .registry import register_model


class BaselineUNet(LocationAwareModel):
    """BasicUNet on the image alone; the location is accepted and ignored."""

    uses_location = False
    needs_location_channels = False

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg.location_noise)
        self.unet = UNetBackbone(cfg.in_channels, cfg.out_channels, cfg.features, cfg.norm, cfg.dropout)

    def segment(self, image: Tensor, location: Tensor) -> Tensor:
        return self.unet(image)


class CoordConvUNet(LocationAwareModel):
    """BasicUNet with the location channels concatenated to the input (and optionally to every block)."""

    uses_location = True

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg.location_noise)
        self.inject_all = cfg.coordconv_inject == "all"
        self.unet = UNetBackbone(cfg.in_channels + 3, cfg.out_channels, cfg.features, cfg.norm, cfg.dropout,
                                 inject_channels=3 if self.inject_all else 0)

    def segment(self, image: Tensor, location: Tensor) -> Tensor:
        loc = self.location_channels(image, location).to(image.dtype)
        x = _cat_channels(image, loc)
        return self.unet(x, levels=location_pyramid(loc) if self.inject_all else None)


class LocBAMUNet(LocationAwareModel):
    """BasicUNet with a LocBAM block at one hook point (default: after the first conv block).

    Its gates read only the per-axis location profiles, so it takes the batch's vectors as they come.
    """

    uses_location = True
    needs_location_channels = False

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg.location_noise)
        self.placement = cfg.locbam_placement
        channels = {"input": cfg.in_channels, "first_block": cfg.features[0], "last_decoder": cfg.features[5],
                    "logits": cfg.out_channels}[self.placement]
        self.unet = UNetBackbone(cfg.in_channels, cfg.out_channels, cfg.features, cfg.norm, cfg.dropout)
        self.locbam = LocBAM(channels, reduction=cfg.locbam_reduction, kernel=cfg.locbam_kernel,
                             layers=cfg.locbam_layers, dropout=cfg.locbam_dropout, norm=cfg.locbam_norm,
                             inject=cfg.locbam_inject, fused=cfg.locbam_fused)

    def segment(self, image: Tensor, location: Tensor) -> Tensor:
        def hook(point: str, t: Tensor) -> Tensor:
            return self.locbam(t, location) if point == self.placement else t

        return self.unet(image, hook=hook)


def _cat_channels(a: Tensor, b: Tensor) -> Tensor:
    return torch.cat([a, b], dim=1)


@register_model("baseline")
def build_baseline(cfg: ModelConfig) -> LocationAwareModel:
    """BasicUNet, no location (the paper's baseline)."""
    return BaselineUNet(cfg)


@register_model("coordconv")
def build_coordconv(cfg: ModelConfig) -> LocationAwareModel:
    """CoordConv: location channels concatenated to the CT (--coordconv-inject all: at every block)."""
    return CoordConvUNet(cfg)


@register_model("locbam")
def build_locbam(cfg: ModelConfig) -> LocationAwareModel:
    """LocBAM: per-axis location-aware 1D attention gates + 1x1x1 fusion after the first block."""
    return LocBAMUNet(cfg)
