"""The phantom's label table and its body-position scale (bpreg's landmark means; see docs/phantom.md).

Everything is placed on the Body Part Regression scale first (0 = start of the pelvis, 100 = end of
the eyes) and converted to millimetres per patient (about 8.47 mm per score unit, times the
patient's height factor), so the ground-truth score of every slice is known exactly.
"""

from __future__ import annotations

import numpy as np

MM_PER_SCORE = 1.0 / 0.118  # bpreg's expected slope: 0.118 score units per mm

# Label table: a BTCV-like organ set (BTCV numbering, without the portal/splenic vein) plus bladder
# and the five lumbar vertebrae, each its own class.
LABELS: dict[int, str] = {
    0: "background",
    1: "spleen",
    2: "right_kidney",
    3: "left_kidney",
    4: "gallbladder",
    5: "esophagus",
    6: "liver",
    7: "stomach",
    8: "aorta",
    9: "inferior_vena_cava",
    10: "pancreas",
    11: "right_adrenal",
    12: "left_adrenal",
    13: "bladder",
    14: "L1",
    15: "L2",
    16: "L3",
    17: "L4",
    18: "L5",
}
LABEL_OF = {name: value for value, name in LABELS.items()}
LUMBAR = ("L1", "L2", "L3", "L4", "L5")

# Classes that only the global position tells apart, by design (docs/phantom.md): the left/right
# pairs and the lumbar levels. Written to dataset.json as class groups, so that `evaluate` reports
# their mean Dice beside the other classes' (issue 3's measurement).
LOCATION_AMBIGUOUS = ("right_kidney", "left_kidney", "right_adrenal", "left_adrenal") + LUMBAR
CLASS_GROUPS: dict[str, tuple[int, ...]] = {
    "location_ambiguous": tuple(LABEL_OF[n] for n in LOCATION_AMBIGUOUS),
    "other": tuple(v for v, n in LABELS.items() if v and n not in LOCATION_AMBIGUOUS),
}

# BPR landmark means (bpreg's public model; see docs/phantom.md).
LANDMARK_SCORES: dict[str, float] = {
    "pelvis_start": 0.0, "femur_end": 13.6, "L5": 25.5, "pelvis_end": 28.8, "L3": 33.8, "kidney": 37.6,
    "L1": 41.5, "lung_start": 44.1, "Th12": 45.0, "liver_end": 54.5, "Th8": 56.9, "Th5": 66.0,
    "Th2": 73.4, "lung_end": 75.4, "Th1": 75.8, "C6": 79.5, "C2": 87.2, "C1": 89.2, "eyes_end": 100.0,
}

# Vertebral levels from the sacrum upward; index 0 = L5. The lumbar column is evenly spaced (L5 at
# 25.5, L1 at 41.5: 4.0 score units apart) so that L1..L5 are identical copies; thoracic and cervical
# centres follow the landmark means.
LEVELS: tuple[str, ...] = (
    "L5", "L4", "L3", "L2", "L1",
    "Th12", "Th11", "Th10", "Th9", "Th8", "Th7", "Th6", "Th5", "Th4", "Th3", "Th2", "Th1",
    "C7", "C6", "C5", "C4", "C3",
)
_LEVEL_KNOTS = ((0, 25.5), (4, 41.5), (5, 45.0), (9, 56.9), (12, 66.0), (15, 73.4), (16, 75.8), (18, 79.5),
                (21, 85.0))
LUMBAR_PITCH_SCORE = 4.0


def level_scores() -> dict[str, float]:
    """Body position (score) of the centre of every vertebral body."""
    idx, val = zip(*_LEVEL_KNOTS)
    return {name: float(np.interp(i, idx, val)) for i, name in enumerate(LEVELS)}


def level_pitch(name: str) -> float:
    """Distance (score units) between this vertebra's centre and its neighbours' (mean of both sides)."""
    scores = level_scores()
    i = LEVELS.index(name)
    if name in LUMBAR:
        return LUMBAR_PITCH_SCORE
    lo = scores[LEVELS[i - 1]] if i > 0 else scores[name] - LUMBAR_PITCH_SCORE
    hi = scores[LEVELS[i + 1]] if i + 1 < len(LEVELS) else 2 * scores[name] - lo
    return (hi - lo) / 2.0
