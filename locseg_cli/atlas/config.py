"""Options of `locseg atlas`."""

from __future__ import annotations

from typing import Literal

from ..config import stage_config
from ..errors import LocsegError


@stage_config("atlas")
class AtlasConfig:
    """Which fold builds the atlas, which dilations are tried, and how one is chosen."""

    fold: int = 0
    # Dilations tried: 0..max_dilation voxels of the atlas grid.
    max_dilation: int = 6
    kernel: Literal["ball", "cube"] = "ball"
    # Without validation predictions: the smallest dilation whose support holds this fraction of
    # the validation fold's label voxels.
    coverage: float = 0.995
    # The atlas grid is the median box shape, scaled down uniformly if it has more voxels than this.
    max_voxels: int = 16_777_216

    def validate(self) -> None:
        if self.fold < 0:
            raise LocsegError(f"--fold must be >= 0, got {self.fold}")
        if self.max_dilation < 0:
            raise LocsegError(f"--max-dilation must be >= 0, got {self.max_dilation}")
        if not 0 < self.coverage <= 1:
            raise LocsegError(f"--coverage must be within (0, 1], got {self.coverage}")
        if self.max_voxels < 1:
            raise LocsegError(f"--max-voxels must be >= 1, got {self.max_voxels}")
