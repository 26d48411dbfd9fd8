"""Options of `locseg report`."""

from __future__ import annotations

from typing import Literal

from ..config import stage_config
from ..errors import LocsegError

BOOTSTRAP_ROUNDS = 10_000
BOOTSTRAP_SEED = 0


@stage_config("report")
class ReportConfig:
    title: str = "locseg report"
    overlay_view: Literal["coronal", "axial"] = "coronal"  # the slice plane of the qualitative overlays
    dpi: int = 110
    bootstrap_rounds: int = BOOTSTRAP_ROUNDS  # resamples of the scans behind the paired table's 95 % intervals
    bootstrap_seed: int = BOOTSTRAP_SEED  # fixed, so a rerun reproduces every interval

    def validate(self) -> None:
        if not 30 <= self.dpi <= 600:
            raise LocsegError(f"--dpi must be within 30..600, got {self.dpi}")
        if self.bootstrap_rounds < 100:
            raise LocsegError(f"--bootstrap-rounds must be at least 100, got {self.bootstrap_rounds}")
