"""Options of `locseg infer`."""

from __future__ import annotations

from typing import Literal

from ..config import stage_config
from ..errors import LocsegError


@stage_config("infer")
class InferConfig:
    checkpoint: Literal["best", "last"] = "last"  # final weights (nnU-Net); best: chosen on validation
    subset: Literal["all", "val"] = "all"  # val: only the run's validation cases (held-out evaluation)
    overlap: float = 0.5  # sliding-window overlap (nnU-Net: step 0.5 of the tile)
    sw_batch_size: int = 4
    mirror_axes: list[int] = ()  # test-time mirroring over these axes (0 axial, 1, 2); location flips along
    save_probabilities: bool = False  # probabilities/{case}.npz (float16, preprocessed grid, C x z x y x)
    device: str | None = None
    amp: bool = True  # autocast where native: bf16 on CUDA and on CPUs with native bf16 (runtime.device)
    shift: float = 0.0  # axial location shift in % of the full range (shift-eval)
    shift_axes: Literal["axial", "all"] = "axial"
    threads: int | None = None

    def validate(self) -> None:
        if not 0 <= self.overlap < 1:
            raise LocsegError(f"--overlap must be in [0, 1), got {self.overlap}")
        if not 0 <= self.shift <= 100:
            raise LocsegError(f"--shift must be within 0..100 %, got {self.shift}")
        self.mirror_axes = sorted({int(a) for a in self.mirror_axes})
        if any(a not in (0, 1, 2) for a in self.mirror_axes):
            raise LocsegError(f"--mirror-axes must be among 0, 1, 2, got {self.mirror_axes}")
