"""Options of `locseg evaluate`."""

from __future__ import annotations

from ..config import stage_config
from ..errors import LocsegError


@stage_config("evaluate")
class EvaluateConfig:
    """What to measure: labels and merged regions, NSD tolerance, Hausdorff percentile."""

    nsd_tolerance_mm: float = 1.0
    hd_percentile: float = 95.0
    # Label values to score one by one; None = every foreground label the data names.
    labels: list[int] | None = None
    # Region name -> label values merged into one mask; None = the regions the reference dataset
    # defines (KiTS23: kidney_and_masses, masses, tumor), if any.
    regions: dict | None = None
    # Surface metrics (NSD, HD) cost a distance transform per class; False skips them.
    surface: bool = True
    workers: int = 1

    def validate(self) -> None:
        if self.nsd_tolerance_mm < 0:
            raise LocsegError(f"--nsd-tolerance-mm must be >= 0, got {self.nsd_tolerance_mm}")
        if not 0 < self.hd_percentile <= 100:
            raise LocsegError(f"--hd-percentile must be within (0, 100], got {self.hd_percentile}")
        if self.workers < 1:
            raise LocsegError(f"--workers must be >= 1 for evaluate, got {self.workers}")
        if self.labels is not None and any(v <= 0 for v in self.labels):
            raise LocsegError(f"labels must be foreground values (> 0), got {self.labels}")
        for name, values in (self.regions or {}).items():
            if not isinstance(values, (list, tuple)) or not values or \
                    not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
                raise LocsegError(f"region {name!r} must list foreground label values (> 0), got {values!r}")
            if str(name).lstrip("-").isdigit():
                raise LocsegError(f"region name {name!r} must not be a number (numbers name single labels)")

    @property
    def hd_name(self) -> str:
        """The metric's key in summaries: HD95 for the 95th percentile, HD100 for the maximum."""
        return f"HD{self.hd_percentile:g}"
