"""Stage configs of `locseg bpr train | score | import` (light: no torch here)."""

from __future__ import annotations

from typing import Literal

from ..config import stage_config
from ..errors import LocsegError


@stage_config("bpr-train")
class BprTrainConfig:
    """Self-supervised slice-score regressor training (bpreg's recipe, sized for a CPU by default)."""

    arch: Literal["compact", "vgg"] = "compact"  # compact CNN, or bpreg's VGG16 layout (GPU)
    width: int = 16  # base channels (compact: 16; vgg: 64 is VGG16's)
    steps: int = 2400  # optimiser steps (~15 min on one CPU thread at the default size)
    batch_volumes: int = 8  # volumes per step
    slices_per_volume: int = 4  # m equidistant slices per volume (bpreg 4, Yan 8)
    min_gap_mm: float = 5.0  # distance between neighbouring sampled slices, drawn uniformly
    max_gap_mm: float = 100.0
    # bpreg's heuristic target as a cross-entropy (same optimum, no vanishing gradient for badly placed
    # slices); "heuristic" is bpreg's squared form, "yan" Yan et al.'s -log sigmoid(step)
    order_loss: Literal["heuristic", "logistic", "yan"] = "logistic"
    order_alpha: float = 0.5  # heuristic order loss: sigmoid(alpha * score step) ... (bpreg's alpha_h)
    order_beta: float = 0.025  # ... against sigmoid(beta * mm step) (bpreg's beta_h)
    distance_weight: float = 0.02  # weight of the distance (equal-steps) loss
    landmark_slices: int = 8  # landmark slices per step (0: purely self-supervised, bpreg's recipe)
    landmark_weight: float = 0.1  # weight of the landmark loss (scores of landmarks across volumes)
    landmark_jitter_mm: float = 0.0  # landmark loss: slices up to this far from a landmark, target moved along
    lr: float = 1e-3  # Adam, cosine decay to 2% over `steps`
    augment: bool = True  # in-plane flips/transpose, HU shift/scale, noise, zoom
    zoom: float = 0.15  # augmentation: in-plane zoom by up to +- this fraction (0: none; bpreg has none)
    pixel_mm: float = 3.5
    size: int = 128
    checkpoint_every: int = 50
    seed: int = 0
    threads: int | None = None  # torch CPU threads (None = torch's default)

    def validate(self) -> None:
        if self.slices_per_volume < 3:
            raise LocsegError("--slices-per-volume must be at least 3 (the distance loss needs 3)")
        if not 0 < self.min_gap_mm <= self.max_gap_mm:
            raise LocsegError("need 0 < --min-gap-mm <= --max-gap-mm")
        for name in ("width", "steps", "batch_volumes", "size", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise LocsegError(f"--{name.replace('_', '-')} must be at least 1")
        if not 0 <= self.zoom < 0.5:
            raise LocsegError("--zoom must be in [0, 0.5)")
        if self.landmark_slices < 0 or self.landmark_weight < 0 or self.landmark_jitter_mm < 0:
            raise LocsegError("--landmark-slices, --landmark-weight and --landmark-jitter-mm must be 0 or more")
        if self.threads is not None and self.threads < 1:
            raise LocsegError("--threads must be at least 1")
        if self.lr <= 0 or self.pixel_mm <= 0:
            raise LocsegError("--lr and --pixel-mm must be positive")


@stage_config("bpr")
class BprScoreConfig:
    """Scoring with a trained regressor; cleaning as bpreg does it."""

    batch_slices: int = 64
    smoothing_sigma: float = 10.0  # mm
    r_slope_threshold: float = 0.28  # "valid z-spacing" when |1 - slope/expected| <= this

    def validate(self) -> None:
        if self.batch_slices < 1 or self.smoothing_sigma < 0 or self.r_slope_threshold <= 0:
            raise LocsegError("--batch-slices must be >= 1, --smoothing-sigma >= 0, --r-slope-threshold > 0")


@stage_config("bpr-import")
class BprImportConfig:
    """Import of bpreg's own JSON files.

    `order` says how bpreg's slice list maps onto the image file's axial axis: `bpreg` applies
    bpreg's own reordering rule to the image's affine (what bpreg did when it wrote the file);
    `stored` means slice i is index i of the file's axial axis; `reversed` the opposite.
    """

    order: Literal["bpreg", "stored", "reversed"] = "bpreg"
