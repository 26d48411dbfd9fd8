"""The options that shape a model, shared by every stage that builds one (train, infer, shift-eval).

A plain dataclass, not a stage config: the training config subclasses it, so every field here is
also a CLI/preset option of `locseg train`, and the resolved values travel with the run.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from ..errors import LocsegError

PAPER_FEATURES: tuple[int, int, int, int, int, int] = (32, 32, 64, 128, 256, 32)

LocBAMPlacement = Literal["input", "first_block", "last_decoder", "logits"]
# The activation layout a network computes in (models.layout resolves "auto" for a device).
MemoryFormat = Literal["auto", "channels_last", "contiguous"]


@dataclasses.dataclass
class ModelConfig:
    """Model options. Defaults are the paper's public code's: BasicUNet widths and HANet's gate settings."""

    model: str = "baseline"
    in_channels: int = 1
    out_channels: int = 2
    features: tuple[int, int, int, int, int, int] = PAPER_FEATURES
    norm: Literal["instance", "batch"] = "instance"
    dropout: float = 0.0
    # CoordConv: location channels at the input only (paper ref. 13) or at every stage (ref. 9).
    coordconv_inject: Literal["input", "all"] = "input"
    # LocBAM (HANet defaults: r 32, kernel 3, 3 layers, mean pooling, dropout 0.1).
    locbam_placement: LocBAMPlacement = "first_block"
    locbam_reduction: int = 32
    locbam_kernel: int = 3
    locbam_layers: int = 3
    locbam_dropout: float = 0.1
    locbam_norm: Literal["batch", "instance", "none"] = "batch"
    # Where the pooled location is added inside a gate: before the first conv (HANet pos_injection=1),
    # after it ("mid", pos_injection=2), or nowhere ("none": a location-blind attention ablation).
    locbam_inject: Literal["input", "mid", "none"] = "input"
    # Gating + fusion in one recomputing pass (same numbers as the straightforward form, less memory/time).
    locbam_fused: bool = True
    # Std of a random per-patch offset added to each location channel in training mode (0 = off).
    location_noise: float = 0.0

    def validate(self) -> None:
        """Reject option values no model can be built from (one line naming the option)."""
        if self.in_channels < 1:
            raise LocsegError(f"--in-channels must be >= 1, got {self.in_channels}")
        if self.out_channels < 1:
            raise LocsegError(f"--out-channels must be >= 1, got {self.out_channels}")
        if len(self.features) != 6 or any(int(f) < 1 for f in self.features):
            raise LocsegError(f"--features needs six positive widths, got {tuple(self.features)}")
        if not 0.0 <= self.dropout < 1.0:
            raise LocsegError(f"--dropout must be within [0, 1), got {self.dropout}")
        if not 0.0 <= self.locbam_dropout < 1.0:
            raise LocsegError(f"--locbam-dropout must be within [0, 1), got {self.locbam_dropout}")
        if self.locbam_reduction < 1:
            raise LocsegError(f"--locbam-reduction must be >= 1, got {self.locbam_reduction}")
        if self.locbam_kernel < 1 or self.locbam_kernel % 2 == 0:
            raise LocsegError(f"--locbam-kernel must be odd and positive, got {self.locbam_kernel}")
        if self.locbam_layers not in (2, 3):
            raise LocsegError(f"--locbam-layers must be 2 or 3 (HANet's choices), got {self.locbam_layers}")
        if self.location_noise < 0:
            raise LocsegError(f"--location-noise must be >= 0, got {self.location_noise}")
