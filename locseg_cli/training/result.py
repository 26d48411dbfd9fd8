"""What a `train` call returns (shared by the torch-free entry and the loop)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class TrainResult:
    out: Path
    did_work: bool
    iterations: int
    best_mean_dice: float | None
