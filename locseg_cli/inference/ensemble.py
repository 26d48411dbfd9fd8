"""What runs must share to be ensembled, and the body-part regressor a BPR-location run records.

An ensemble averages its runs' probabilities voxel by voxel on one preprocessed volume, so every run
must see the same volume (spacing, intensities, crop), the same location signal, and predict the same
classes. A difference is refused with one line naming both runs and what differs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import LocsegError
from ..preprocessing.plan import PreprocessPlan

# what must agree: (name in the message, the plan's value)
_AGREE: list[tuple[str, Callable[[PreprocessPlan], Any]]] = [
    ("labels", lambda p: dict(sorted(p.labels.items(), key=lambda kv: int(kv[0])))),
    ("spacing", lambda p: tuple(round(s, 6) for s in p.spacing)),
    ("location source", lambda p: p.location),
    ("BPR model", lambda p: (p.bpr_scoring or {}).get("model") if p.location == "bpr" else None),
    ("intensity normalisation", lambda p: (p.normalization, tuple(p.config.window) if p.normalization == "window"
                                           else p.intensity)),
    ("body crop", lambda p: (p.config.crop_body, p.config.body_threshold if p.config.crop_body else None)),
    ("anisotropy threshold", lambda p: p.config.anisotropy_threshold),
]


def check_ensemble(runs: list[Path], plans: list[PreprocessPlan]) -> None:
    """Refuse runs that cannot be averaged: each is compared with the first."""
    for run, plan in zip(runs[1:], plans[1:]):
        for what, value in _AGREE:
            a, b = value(plans[0]), value(plan)
            if a != b:
                raise LocsegError(f"runs {runs[0]} and {run} disagree on {what} ({_show(a)} vs {_show(b)}): "
                                  "an ensemble needs runs trained on the same preprocessing")


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def recorded_bpr_model(plan: PreprocessPlan, run: Path) -> Path:
    """The regressor that scored the run's training cases, to score new images the same way."""
    model = (plan.bpr_scoring or {}).get("model")
    if not model:
        raise LocsegError("this run uses BPR location but records no BPR model (its scores were imported, or it "
                          "predates the record): give --bpr DIR (`locseg bpr score` of these images)", run)
    path = Path(model)
    if not path.exists():
        raise LocsegError(f"the BPR model this run records is gone ({path}): give --bpr DIR "
                          "(`locseg bpr score` of these images)", run)
    return path
