"""Options of `locseg report`."""

from __future__ import annotations

from typing import Literal

from ..config import stage_config
from ..errors import LocsegError


@stage_config("report")
class ReportConfig:
    title: str = "locseg report"
    overlay_view: Literal["coronal", "axial"] = "coronal"  # the slice plane of the qualitative overlays
    dpi: int = 110

    def validate(self) -> None:
        if not 30 <= self.dpi <= 600:
            raise LocsegError(f"--dpi must be within 30..600, got {self.dpi}")
