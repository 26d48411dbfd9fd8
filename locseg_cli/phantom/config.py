"""The options of `locseg synth` (one dataclass: preset keys and command-line options alike)."""

from __future__ import annotations

from typing import Literal

from ..config import stage_config
from ..errors import LocsegError

# Raw spacing draws: in-plane range (mm) and the slice spacings scanners commonly reconstruct at.
SPACING_PRESETS: dict[str, tuple[tuple[float, float], tuple[float, ...]]] = {
    # Small raw volumes (~200x200x150-280) that a CPU generates in seconds; the demo resamples to ~4 mm anyway.
    "demo": ((1.6, 2.1), (2.5, 3.0, 4.0, 5.0)),
    # The spacing spread of clinical abdominal CT (BTCV/AMOS/KiTS): 512x512 slices, 1.5-5 mm apart.
    "clinical": ((0.6, 1.0), (1.5, 2.0, 2.5, 3.0, 5.0)),
}


@stage_config("synth")
class SynthConfig:
    """How the synthetic CT cohort is drawn. Every case depends only on (seed, case index) and these."""

    cases: int = 12
    seed: int = 0
    fov: Literal["fixed", "varying"] = "fixed"
    layout: str = "nnunet"
    workers: int = 2
    spacing: str = "demo"  # "demo", "clinical", or a fixed "z,y,x" in mm
    orientation: Literal["varying", "fixed"] = "varying"  # fixed: every case stored with axcodes R,A,S
    score_range: tuple[float, float] = (-4.0, 78.0)  # body positions a fixed-FOV case covers (BPR scale)
    # How far (in lumbar levels, uniform +-) the soft tissue that would otherwise mark a vertebral level
    # -- the psoas' origin and taper, the quadratus lumborum, the aortic bifurcation with the iliac
    # confluence -- moves against the spine, independently per structure and patient. 0 ties them to
    # the levels (the demo's cohort); 1 leaves a 32^3 patch nothing nearby to count levels by.
    level_cue_jitter: float = 0.0
    montage_cases: int = 4
    name: str = "Synth"
    prefix: str = "synth"

    def validate(self) -> None:
        from ..datasets.writers import LAYOUT_WRITERS

        if self.cases < 1:
            raise LocsegError(f"--cases must be at least 1, got {self.cases}")
        if self.workers < 0:
            raise LocsegError(f"--workers must be 0 or more, got {self.workers}")
        if self.layout not in LAYOUT_WRITERS:
            raise LocsegError(f"--layout: unknown layout {self.layout!r} (known: {', '.join(LAYOUT_WRITERS)})")
        lo, hi = self.score_range
        if not (-15.0 <= lo < hi <= 90.0) or hi - lo < 20.0:
            raise LocsegError(f"score_range must lie within -15..90 and span at least 20, got {lo}..{hi}")
        if not 0.0 <= self.level_cue_jitter <= 2.0:
            raise LocsegError(f"--level-cue-jitter must be 0..2 lumbar levels, got {self.level_cue_jitter}")
        if self.montage_cases < 0:
            raise LocsegError("montage_cases must be 0 or more")
        parse_spacing(self.spacing)
        from ..io.atomic import validate_case_id

        validate_case_id(f"{self.prefix}_000", "--prefix")

    @property
    def case_ids(self) -> list[str]:
        width = max(3, len(str(self.cases - 1)))
        return [f"{self.prefix}_{i:0{width}d}" for i in range(self.cases)]


def parse_spacing(spacing: str) -> tuple[tuple[float, float], tuple[float, ...]] | tuple[float, float, float]:
    """A named spacing spread, or a fixed (z, y, x) spacing in mm."""
    if spacing in SPACING_PRESETS:
        return SPACING_PRESETS[spacing]
    parts = [p for p in spacing.replace(" ", "").split(",") if p]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3 or not all(0.3 <= v <= 10.0 for v in values):
        raise LocsegError(f"--spacing must be {', '.join(SPACING_PRESETS)} or 'z,y,x' in mm "
                          f"(each 0.3-10), got {spacing!r}")
    return values  # type: ignore[return-value]
