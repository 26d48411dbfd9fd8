"""From raw slice scores to a bpreg-style record: transform, clean, check, name the body parts.

The cleaning follows bpreg's `Scores` so that records mean the same thing whichever tool wrote
them: raw -> 0..100 with the landmark anchors; empty (air-only) slices -> NaN; Gaussian smoothing
(sigma 10 mm); the tails beyond the slices nearest 0 and 100 are cut (NaN) from the first slice
whose local slope is implausible; a least-squares line score(z) gives the observed slope;
"valid z-spacing" is 0 when |1 - |slope| / expected| > 0.28; "reverse z-ordering" is 1 when the
slope is negative. Booleans are stored as 0.0/1.0 floats, as bpreg writes them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter

from .landmarks import INTERPOLATED_SCORES, REFERENCE_SCORES

# bpreg's defaults on its public model, kept as ratios to its expected slope (0.118 / mm), so a
# regressor with another expected slope gets the same tolerance.
BPREG_EXPECTED_SLOPE = 0.118
BPREG_TANGENTIAL_SLOPE_MIN = -0.037
BPREG_TANGENTIAL_SLOPE_MAX = 0.25


@dataclass
class CleaningSettings:
    """What cleaning needs: the raw-score anchors and the slope figures of the regressor."""

    transform_min: float  # raw score mapped to 0 (pelvis start)
    transform_max: float  # raw score mapped to 100 (eyes end)
    slope_mean: float = BPREG_EXPECTED_SLOPE  # expected score units per mm
    tangential_slope_min: float = BPREG_TANGENTIAL_SLOPE_MIN
    tangential_slope_max: float = BPREG_TANGENTIAL_SLOPE_MAX
    smoothing_sigma: float = 10.0  # mm
    r_slope_threshold: float = 0.28

    @classmethod
    def scaled_to(cls, transform_min: float, transform_max: float, slope_mean: float,
                  **kw: Any) -> CleaningSettings:
        """Settings whose tangential-slope bounds keep bpreg's ratio to the expected slope."""
        r = slope_mean / BPREG_EXPECTED_SLOPE
        return cls(transform_min, transform_max, slope_mean, BPREG_TANGENTIAL_SLOPE_MIN * r,
                   BPREG_TANGENTIAL_SLOPE_MAX * r, **kw)

    def to_json(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


def transform_scores(raw: np.ndarray, transform_min: float, transform_max: float) -> np.ndarray:
    """Raw regressor output -> 0..100 body-part scale."""
    return (np.asarray(raw, dtype=np.float64) - transform_min) * (100.0 / (transform_max - transform_min))


def smooth_scores(x: np.ndarray, sigma_slices: float) -> np.ndarray:
    """Gaussian smoothing of the non-NaN values (concatenated, as bpreg does)."""
    out = np.array(x, dtype=np.float64)
    ok = np.isfinite(out)
    if ok.sum() > 1 and sigma_slices > 0:
        out[ok] = gaussian_filter(out[ok], sigma=sigma_slices)
    return out


def boundary_indices(x: np.ndarray) -> tuple[float, float]:
    """The slices nearest 0 and 100 (NaN when none is within 10 units, or when they are misordered)."""
    ok = np.isfinite(x)
    if not ok.any():
        return np.nan, np.nan
    d0 = np.where(ok, np.abs(x - 0.0), np.inf)
    d100 = np.where(ok, np.abs(x - 100.0), np.inf)
    lo = float(np.argmin(d0)) if d0.min() < 10 else np.nan
    hi = float(np.argmin(d100)) if d100.min() < 10 else np.nan
    if lo > hi:  # False whenever either is NaN
        lo = np.nan
    return lo, hi


def remove_outlier_tails(x: np.ndarray, z_spacing: float, slope_min: float, slope_max: float,
                         lo_idx: float, hi_idx: float) -> np.ndarray:
    """NaN the tails beyond the boundary slices that hold an implausible local slope.

    Below the 0-slice everything before the last outlier goes; above the 100-slice everything from
    the first outlier on (bpreg's rule; a NaN boundary removes nothing on its side).
    """
    x = np.array(x, dtype=np.float64)
    if len(x) < 2:
        return x
    d = np.diff(x)
    slopes = np.append(d, d[-1]) / z_spacing
    with np.errstate(invalid="ignore"):
        outliers = np.flatnonzero((slopes < slope_min) | (slopes > slope_max))
    left = outliers[outliers < lo_idx] if np.isfinite(lo_idx) else outliers[:0]
    right = outliers[outliers > hi_idx] if np.isfinite(hi_idx) else outliers[:0]
    if len(left):
        x[: int(left.max())] = np.nan
    if len(right):
        x[int(right.min()):] = np.nan
    return x


def fit_line(z: np.ndarray, s: np.ndarray) -> tuple[float, float]:
    """Least-squares slope and intercept of s(z) over the finite values (NaN with fewer than 2)."""
    ok = np.isfinite(s)
    if ok.sum() < 2:
        return np.nan, np.nan
    slope, intercept = np.polyfit(np.asarray(z, float)[ok], np.asarray(s, float)[ok], 1)
    return float(slope), float(intercept)


@dataclass
class CleanedScores:
    unprocessed: np.ndarray  # transformed (0..100 scale), not smoothed
    cleaned: np.ndarray  # smoothed, tails NaN
    z: np.ndarray  # slice position in mm from the first slice
    z_spacing: float
    slope: float
    intercept: float
    slope_ratio: float
    expected_zspacing: float
    valid_zspacing: float  # 1.0 / 0.0 / NaN
    reverse_zordering: float  # 1.0 / 0.0
    settings: CleaningSettings


def clean_scores(raw: np.ndarray, z_spacing: float, settings: CleaningSettings,
                 empty: np.ndarray | None = None) -> CleanedScores:
    """bpreg's cleaning of one volume's raw slice scores (see the module doc)."""
    if not z_spacing > 0:
        raise ValueError(f"z-spacing must be positive, got {z_spacing}")
    unprocessed = transform_scores(raw, settings.transform_min, settings.transform_max)
    x = unprocessed.copy()
    if empty is not None:
        x[np.asarray(empty, bool)] = np.nan
    x = smooth_scores(x, settings.smoothing_sigma / z_spacing)
    lo, hi = boundary_indices(x)
    x = remove_outlier_tails(x, z_spacing, settings.tangential_slope_min, settings.tangential_slope_max, lo, hi)
    z = np.arange(len(x), dtype=np.float64) * z_spacing
    slope, intercept = fit_line(z, x)
    ratio = abs(slope) / settings.slope_mean if np.isfinite(slope) else np.nan
    valid = np.nan if not np.isfinite(ratio) else float(abs(1 - ratio) <= settings.r_slope_threshold)
    return CleanedScores(unprocessed, x, z, float(z_spacing), slope, intercept, float(ratio),
                         float(slope * z_spacing / settings.slope_mean) if np.isfinite(slope) else np.nan,
                         valid, float(slope < 0) if np.isfinite(slope) else np.nan, settings)


# ------------------------------------------------------------------------------------------------
# look-up table and body part examined (bpreg's rules)
# ------------------------------------------------------------------------------------------------

BODY_PARTS = {
    "legs": [None, "pelvis_start"], "pelvis": ["pelvis_start", "pelvis_end"], "abdomen": ["L5", "Th8"],
    "chest": ["Th12", "Th1"], "shoulder-neck": ["Th3", "C2"], "head": ["C5", None],
}
BODY_PARTS_INCLUDED = {
    "PELVIS": ["pelvis_start", "femur_end", "pelvis_end"],
    "ABDOMEN": ["L5", "L4", "L3", "L2", "L1", "Th12", "Th11", "Th10", "Th9"],
    "CHEST": ["Th12", "Th11", "Th10", "Th9", "Th8", "Th7", "Th6", "Th5", "Th4", "Th3", "Th2", "Th1"],
    "NECK": ["Th3", "Th2", "Th1", "C7", "C6", "C5", "C4", "C3", "C2"],
    "HEAD": ["C3", "C2", "C1", "eyes_end"],
}
MIN_PRESENT_LANDMARKS = {"PELVIS": 2, "ABDOMEN": 7, "CHEST": 9, "NECK": 6, "HEAD": 3}
DISTINCT_BODY_PARTS = {
    "PELVIS": ["pelvis_start", "pelvis_end"], "ABDOMEN": ["pelvis_end", "Th9"], "CHEST": ["Th9", "Th2"],
    "NECK": ["Th2", "C3"], "HEAD": ["C3", "head_end"],
}
ZRANGE_THRESHOLD_MM = 100.0


def reference_lookup_table() -> dict[str, dict[str, Any]]:
    """The reference landmark table on the 0..100 scale (bpreg's landmark means, plus interpolated vertebrae; see docs/bpr.md)."""
    table = {k: {"mean": v, "std": None, "source": "reference"} for k, v in REFERENCE_SCORES.items()}
    table.update({k: {"mean": v, "std": None, "source": "interpolated"} for k, v in INTERPOLATED_SCORES.items()})
    return table


def _mean(table: dict[str, Any], name: str | None) -> float:
    if name is None:
        return np.nan
    entry = table.get(name) or reference_lookup_table()[name]
    return float(entry["mean"])


def body_part_examined(cleaned: np.ndarray, table: dict[str, Any]) -> dict[str, list[float]]:
    """Per body part, the slice indices whose cleaned score lies in its landmark range."""
    s = np.asarray(cleaned, dtype=np.float64)
    out = {}
    for part, (a, b) in BODY_PARTS.items():
        lo, hi = _mean(table, a), _mean(table, b)
        with np.errstate(invalid="ignore"):
            if np.isfinite(lo) and np.isfinite(hi):
                idx = np.flatnonzero((s >= lo) & (s < hi))
            elif np.isfinite(hi):
                idx = np.flatnonzero(s < hi)
            else:
                idx = np.flatnonzero(s > lo)
        out[part] = [float(i) for i in idx]
    return out


def body_part_examined_tag(cleaned: np.ndarray, z_spacing: float, valid_zspacing: float,
                           table: dict[str, Any]) -> str:
    """bpreg's DICOM-style tag, e.g. "CHEST-ABDOMEN-PELVIS"; "NONE" when the z-spacing is invalid."""
    if valid_zspacing == 0:
        return "NONE"
    s = np.asarray(cleaned, dtype=np.float64)
    present = []
    for part, names in BODY_PARTS_INCLUDED.items():
        n_inside = sum(1 for n in names if (s < _mean(table, n)).any() and (s > _mean(table, n)).any())
        if n_inside >= MIN_PRESENT_LANDMARKS[part]:
            present.append(part)
    tag = _join_parts(present)
    if len(s) * z_spacing < ZRANGE_THRESHOLD_MM or tag is None:
        counts: Counter[str] = Counter()
        for v in s[np.isfinite(s)]:
            for part, (a, b) in DISTINCT_BODY_PARTS.items():
                if _mean(table, a) < v < _mean(table, b):
                    counts[part] += 1
        tag = counts.most_common(1)[0][0] if counts else "NONE"
    return tag


def _join_parts(parts: list[str]) -> str | None:
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    has = set(parts)
    if "HEAD" in has:
        tail = "-CHEST-ABDOMEN-PELVIS" if "PELVIS" in has else "-CHEST-ABDOMEN" if "ABDOMEN" in has else \
            "-CHEST" if "CHEST" in has else ""
        return "HEAD-NECK" + tail
    if "NECK" in has:
        return "NECK-CHEST" + ("-ABDOMEN-PELVIS" if "PELVIS" in has else "-ABDOMEN" if "ABDOMEN" in has else "")
    if "CHEST" in has:
        return "CHEST-ABDOMEN-PELVIS" if "PELVIS" in has else "CHEST-ABDOMEN"
    return "ABDOMEN-PELVIS"


def _floats(a: np.ndarray) -> list[float]:
    return [float(v) for v in np.asarray(a, dtype=np.float64)]


def build_record(cleaned: CleanedScores, lookup_table: dict[str, Any], z_world_mm: np.ndarray | None = None,
                 file_index: np.ndarray | None = None, axial_axis: int | None = None,
                 case_id: str | None = None, source: str = "locseg") -> dict[str, Any]:
    """The per-case JSON: bpreg's keys with bpreg's meaning, plus locseg's world-z keys."""
    rec: dict[str, Any] = {
        "cleaned slice scores": _floats(cleaned.cleaned),
        "z": _floats(cleaned.z),
        "unprocessed slice scores": _floats(cleaned.unprocessed),
        "body part examined": body_part_examined(cleaned.cleaned, lookup_table),
        "body part examined tag": body_part_examined_tag(cleaned.cleaned, cleaned.z_spacing,
                                                         cleaned.valid_zspacing, lookup_table),
        "look-up table": lookup_table,
        "reverse z-ordering": cleaned.reverse_zordering,
        "valid z-spacing": cleaned.valid_zspacing,
        "expected slope": float(cleaned.settings.slope_mean),
        "observed slope": cleaned.slope,
        "slope ratio": cleaned.slope_ratio,
        "expected z-spacing": cleaned.expected_zspacing,
        "z-spacing": cleaned.z_spacing,
        "settings": {"slice score processing": cleaned.settings.to_json()},
        "source": source,
    }
    if case_id is not None:
        rec["case_id"] = case_id
    if z_world_mm is not None:
        rec["z_world_mm"] = _floats(z_world_mm)
    if file_index is not None:
        rec["slice_index"] = [int(i) for i in file_index]
    if axial_axis is not None:
        rec["axial_axis"] = int(axial_axis)
    return rec
