"""Options of `locseg shift-eval`."""

from __future__ import annotations

from typing import Literal

from ..config import stage_config
from ..errors import LocsegError


@stage_config("shift-eval")
class ShiftEvalConfig:
    """Which location shifts to evaluate, and how to run the sliding window for each."""

    shifts: list[float] = (0.0, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0)  # % of the location signal's full range
    axes: Literal["axial", "all"] = "axial"  # shift the axial channel only (the paper) or all three
    checkpoint: Literal["best", "last"] = "last"  # final weights (nnU-Net); best: chosen on validation
    overlap: float = 0.5
    sw_batch_size: int = 4
    device: str | None = None
    amp: bool = True
    threads: int | None = None

    def validate(self) -> None:
        bad = [s for s in self.shifts if not 0 <= s <= 100]
        if bad:
            raise LocsegError(f"--shifts must be within 0..100 %, got {', '.join(f'{s:g}' for s in bad)}")
        if not self.shifts:
            raise LocsegError("--shifts: give at least one shift (e.g. 0,1,5,10,25,50,100)")
        self.shifts = sorted({float(s) for s in self.shifts})
        if not 0 <= self.overlap < 1:
            raise LocsegError(f"--overlap must be in [0, 1), got {self.overlap}")
