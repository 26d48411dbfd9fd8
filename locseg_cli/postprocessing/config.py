"""Options of `locseg postprocess`."""

from __future__ import annotations

from ..config import stage_config
from ..errors import LocsegError

METHODS = ("lcf", "atlas", "bpr-range")


@stage_config("postprocess")
class PostprocessConfig:
    """Which filters run, in order (e.g. atlas then lcf), and on which classes."""

    method: tuple[str, ...] = ("lcf",)
    # Label values to filter; None = every class present.
    classes: list[int] | None = None
    # Neighbourhood of the connected components: 6, 18 or 26 voxels.
    connectivity: int = 26
    # bpr-range: margin (body-position score units) added on both sides of a class's training range.
    bpr_margin: float = 2.0

    def validate(self) -> None:
        if not self.method:
            raise LocsegError("--method: give at least one of " + ", ".join(METHODS))
        for m in self.method:
            if m not in METHODS:
                raise LocsegError(f"--method: unknown method {m!r} (known: {', '.join(METHODS)})")
        if len(set(self.method)) != len(self.method):
            raise LocsegError(f"--method lists a method twice: {','.join(self.method)}")
        if self.connectivity not in (6, 18, 26):
            raise LocsegError(f"--connectivity must be 6, 18 or 26, got {self.connectivity}")
        if self.bpr_margin < 0:
            raise LocsegError(f"--bpr-margin must be >= 0, got {self.bpr_margin}")
