"""Landmark slices: what anchors the regressor's raw scores to the 0..100 body-part scale.

The scale is bpreg's: 0 = start of the pelvis, 100 = end of the eyes. A landmark is a slice index
along the axial axis of the image file as stored (0-based) with a target score. Targets come from
the synthetic cohort's `bodypos/{case}.json` (which gives each landmark's score) or from a user file
`{case_id: {landmark: slice_index}}` (targets from the reference table below, or given explicitly
as `{landmark: {"index": i, "score": s}}`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import LocsegError
from ..io.bodypos import bodypos_path, read_bodypos

# Landmark means on bpreg's public model scale (MIC-DKFZ/BodyPartRegression); pelvis_start and eyes_end
# define it.
REFERENCE_SCORES: dict[str, float] = {
    "pelvis_start": 0.0, "femur_end": 13.6, "L5": 25.5, "pelvis_end": 28.8, "L3": 33.8, "kidney": 37.6,
    "L1": 41.5, "lung_start": 44.1, "Th12": 45.0, "liver_end": 54.5, "Th8": 56.9, "Th5": 66.0,
    "Th2": 73.4, "lung_end": 75.4, "Th1": 75.8, "C6": 79.5, "C2": 87.2, "C1": 89.2, "eyes_end": 100.0,
    "head_end": 107.8,
}

# Vertebrae bpreg's body-part rules name but the table above does not list: linear interpolation between the
# neighbouring listed vertebrae (an estimate, marked "interpolated" in every look-up table written).
INTERPOLATED_SCORES: dict[str, float] = {
    "L4": 29.65, "L2": 37.65, "Th11": 47.98, "Th10": 50.95, "Th9": 53.93, "Th7": 59.93, "Th6": 62.97,
    "Th4": 68.47, "Th3": 70.93, "C7": 77.65, "C5": 81.43, "C4": 83.35, "C3": 85.28,
}

START_LANDMARK = "pelvis_start"
END_LANDMARK = "eyes_end"


def normalise_name(name: str) -> str:
    """bpreg spells landmarks both `pelvis-start` and `pelvis_start`; use underscores."""
    return str(name).strip().replace("-", "_")


def reference_score(name: str) -> float | None:
    name = normalise_name(name)
    if name in REFERENCE_SCORES:
        return REFERENCE_SCORES[name]
    return INTERPOLATED_SCORES.get(name)


@dataclass(frozen=True)
class Landmark:
    """One annotated slice: index along the file's axial axis (as stored) and its target score."""

    name: str
    raw_index: int
    score: float


def _landmark(name: str, value: Any, where: str | Path) -> Landmark:
    name = normalise_name(name)
    score = None
    if isinstance(value, dict):
        if "index" not in value:
            raise LocsegError(f"landmark {name!r} needs an 'index'", where)
        index, score = value["index"], value.get("score")
    else:
        index = value
    if isinstance(index, bool) or not isinstance(index, (int, float)) or int(index) != index or index < 0:
        raise LocsegError(f"landmark {name!r}: slice index must be a non-negative integer, got {index!r}", where)
    if score is None:
        score = reference_score(name)
        if score is None:
            known = ", ".join(sorted(REFERENCE_SCORES))
            raise LocsegError(f"unknown landmark {name!r} without a 'score' (known: {known})", where)
    if isinstance(score, bool) or not isinstance(score, (int, float)):
        raise LocsegError(f"landmark {name!r}: score must be a number, got {score!r}", where)
    return Landmark(name, int(index), float(score))


def read_landmark_file(path: str | Path) -> dict[str, list[Landmark]]:
    """A user's landmark table (YAML or JSON): `{case_id: {landmark: slice_index | {index, score}}}`."""
    path = Path(path)
    if not path.is_file():
        raise LocsegError("landmark file not found", path)
    try:
        data = yaml.safe_load(path.read_text())  # JSON is YAML
    except yaml.YAMLError as exc:
        raise LocsegError(f"not valid YAML/JSON ({str(exc).splitlines()[0]})", path) from None
    if not isinstance(data, dict) or not data:
        raise LocsegError("expected a mapping {case_id: {landmark: slice_index}}", path)
    out: dict[str, list[Landmark]] = {}
    for cid, marks in data.items():
        if not isinstance(marks, dict):
            raise LocsegError(f"case {cid!r}: expected a mapping {{landmark: slice_index}}", path)
        out[str(cid)] = [_landmark(n, v, path) for n, v in marks.items()]
    return out


def case_landmarks(data_root: str | Path, case_id: str, user: dict[str, list[Landmark]] | None) -> list[Landmark]:
    """A case's landmarks: the user's file wins over the synthetic cohort's bodypos JSON."""
    if user and case_id in user:
        return list(user[case_id])
    pos = read_bodypos(data_root, case_id)
    if not pos or not pos.get("landmarks"):
        return []
    where = bodypos_path(data_root, case_id)
    marks = pos["landmarks"]
    if not isinstance(marks, dict):
        raise LocsegError("'landmarks' must be a mapping", where)
    return [_landmark(n, v, where) for n, v in marks.items()]
