"""Options of `locseg preprocess` (every field can be set in a preset or on the command line)."""

from __future__ import annotations

from typing import Literal

from ..config import stage_config
from ..errors import LocsegError


@stage_config("preprocess")
class PreprocessConfig:
    # `--spacing lowres` (or `spacing: lowres` in a preset) means what presets/spacing/lowres.yaml sets
    NAMED_VALUES = {"spacing": ("spacing", "three numbers z,y,x in mm")}

    dataset: str | None = None  # raw layout (btcv, amos22, kits23, nnunet, ...); None = auto-detect
    spacing: tuple[float, float, float] = (2.0, 1.5, 1.5)  # target (z, y, x) mm; the paper's low-res
    spacing_mode: Literal["fixed", "dataset-median"] = "fixed"  # dataset-median: nnU-Net's median spacing
    normalization: Literal["window", "zscore"] = "window"  # fixed HU window (paper code) or nnU-Net CT z-score
    window: tuple[float, float] = (-175.0, 250.0)  # HU window mapped to [0, 1]
    location: Literal["volume", "bpr", "truth"] = "volume"  # axial signal: volume coords, BPR scores, or the
    # synthetic cohort's ground-truth body position (bodypos/*.json)
    crop_body: bool = True
    body_threshold: float = -500.0  # HU; the body is what is denser than this
    anisotropy_threshold: float = 3.0  # max/min spacing above which z is resampled separately (nnU-Net)
    exclude: list[str] = ()  # case ids to leave out (e.g. KiTS23's corrupted scans)
    labels: list[str] = ()  # classes to keep (names or values); the others become background. Values are
    # kept as they are (predictions carry the dataset's own numbering); empty = every class
    skip_invalid: bool = False  # go on without cases the integrity check rejects
    folds: int = 5
    split_seed: int = 12345  # nnU-Net's KFold random_state
    class_samples: int = 10000  # voxel positions stored per class for class-balanced sampling
    workers: int = 1
    seed: int = 0

    def validate(self) -> None:
        if any(s <= 0 for s in self.spacing):
            raise LocsegError(f"--spacing must be positive, got {self.spacing}")
        if self.window[1] <= self.window[0]:
            raise LocsegError(f"--window must be (low, high) with low < high, got {self.window}")
        if self.folds < 2:
            raise LocsegError(f"--folds must be at least 2, got {self.folds}")
        self.exclude = list(self.exclude)
        self.labels = [str(v) for v in self.labels]

    def kept_labels(self, table: dict[int, str], source: object = None) -> dict[int, str]:
        """The dataset's label table restricted to `labels` (background always kept)."""
        if not self.labels:
            return dict(table)
        by_name = {name: v for v, name in table.items()}
        keep = {0}
        for item in self.labels:
            v = by_name.get(item, int(item) if item.isdigit() else None)
            if v is None or v not in table or v == 0:
                raise LocsegError(f"--labels: {item!r} is not a foreground class of this dataset "
                                  f"(classes: {', '.join(n for k, n in table.items() if k)})", source)
            keep.add(v)
        return {v: n for v, n in table.items() if v in keep}
