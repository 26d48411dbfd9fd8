"""Paired per-scan comparison of two evaluations of the same scans (a model against its baseline).

A table of mean Dice per model cannot say whether a gap of a few hundredths is more than the spread
between scans. Pairing by scan removes the scan-to-scan variation both models share: for each scan,
the difference of the two models' Dice averaged over a class group, then a percentile bootstrap
interval of the mean of those differences, resampling scans.

Convention (nnU-Net's, as `locseg evaluate` writes it): a class empty in both a scan's reference and
its prediction has Dice NaN; a (scan, class) pair counts only where both sides are finite, and a scan
with no such class in the group has no difference for that group.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LocsegError
from .config import BOOTSTRAP_ROUNDS, BOOTSTRAP_SEED

LEVEL = 0.95
FOREGROUND = "foreground"  # the group of every class averaged into evaluate's foreground_mean


def class_groups(summary: dict[str, Any]) -> dict[str, list[str]]:
    """Group name -> summary keys: all foreground classes, then each group the reference dataset
    defines (the synthetic cohort's `location_ambiguous`), as evaluate recorded them."""
    groups = {FOREGROUND: [str(k) for k in summary["foreground_keys"]]}
    for name, group in (summary.get("class_groups") or {}).items():
        groups[str(name)] = [str(k) for k in group["classes"]]
    return groups


def per_case_dice(summary: dict[str, Any]) -> dict[str, dict[str, float]]:
    """case id -> {summary key: Dice} from evaluate's `metric_per_case`."""
    return {c["case_id"]: {k: _float(v.get("Dice")) for k, v in c["metrics"].items()}
            for c in summary["metric_per_case"]}


def bootstrap_interval(values: Sequence[float], rounds: int = BOOTSTRAP_ROUNDS, seed: int = BOOTSTRAP_SEED,
                       level: float = LEVEL) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean: `rounds` resamples of the values with replacement."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return math.nan, math.nan
    idx = np.random.default_rng(seed).integers(0, v.size, size=(rounds, v.size))
    means = v[idx].mean(axis=1)
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class PairedDifference:
    """First minus second, per scan (mean over the group's classes finite on both sides)."""

    cases: list[str]  # scans with at least one such class, in order
    per_case: list[float]
    pairs: list[float]  # every (scan, class) difference behind per_case
    low: float
    high: float
    rounds: int
    seed: int

    @property
    def mean(self) -> float:
        return float(np.mean(self.per_case)) if self.per_case else math.nan

    @property
    def favour_first(self) -> int:
        return sum(d > 0 for d in self.per_case)

    @property
    def favour_second(self) -> int:
        return sum(d < 0 for d in self.per_case)

    @property
    def pair_mean(self) -> float:
        return float(np.mean(self.pairs)) if self.pairs else math.nan

    @property
    def pair_share(self) -> float:
        """Share of (scan, class) pairs where the first is better."""
        return sum(d > 0 for d in self.pairs) / len(self.pairs) if self.pairs else math.nan


def check_same_cases(first: dict[str, Any], second: dict[str, Any], first_dir: Path, second_dir: Path) -> None:
    """Both evaluations must score the same scans: a difference over a subset would mislead."""
    for here, there, folder, other in ((first, second, first_dir, second_dir), (second, first, second_dir, first_dir)):
        missing = sorted(set(there) - set(here))
        if missing:
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            raise LocsegError(f"no evaluation of scan(s) {', '.join(missing[:3])}{more}, which {other} evaluates: "
                              "a paired comparison needs the same scans on both sides", folder)


def paired_difference(first: dict[str, Any], second: dict[str, Any], classes: Sequence[str], first_dir: Path,
                      second_dir: Path, rounds: int = BOOTSTRAP_ROUNDS, seed: int = BOOTSTRAP_SEED
                      ) -> PairedDifference:
    """Per-scan difference of two evaluate summaries over `classes` (summary keys), paired by scan id."""
    a, b = per_case_dice(first), per_case_dice(second)
    check_same_cases(a, b, first_dir, second_dir)
    cases, per_case, pairs = [], [], []
    for case in sorted(a):
        d = [a[case][k] - b[case][k] for k in classes
             if math.isfinite(a[case].get(k, math.nan)) and math.isfinite(b[case].get(k, math.nan))]
        if d:
            cases.append(case)
            per_case.append(sum(d) / len(d))
            pairs += d
    low, high = bootstrap_interval(per_case, rounds, seed)
    return PairedDifference(cases, per_case, pairs, low, high, rounds, seed)


def _float(v: Any) -> float:
    return math.nan if v is None else float(v)


__all__ = ["BOOTSTRAP_ROUNDS", "BOOTSTRAP_SEED", "FOREGROUND", "PairedDifference", "bootstrap_interval",
           "class_groups", "paired_difference", "per_case_dice"]
