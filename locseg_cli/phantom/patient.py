"""Patient sampling: the random draw that makes one synthetic patient differ from another.

Each case's stream depends on (seed, index) only, so a cohort does not depend on the number of
workers; the lumbar level cues draw from a stream of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .anatomy import LUMBAR_PITCH_SCORE, MM_PER_SCORE
from .config import SynthConfig, parse_spacing

# Storage orientations scanners and converters produce (nibabel axcodes of the stored array), with
# how often each is drawn; ("I", "P", "L") is KiTS23's axial-first layout.
ORIENTATIONS: tuple[tuple[tuple[str, str, str], float], ...] = (
    (("L", "P", "S"), 0.35), (("R", "A", "S"), 0.2), (("L", "A", "S"), 0.15), (("R", "P", "I"), 0.1),
    (("I", "P", "L"), 0.2),
)
FIXED_FOV_JITTER = 1.5
LEVEL_CUES = ("psoas", "quadratus", "bifurcation")
VARYING_FOV = (  # (name, score from, score to): AMOS22/KiTS23-like ranges, each jittered by +-4
    ("abdomen", 18.0, 57.0), ("abdomen-pelvis", -3.0, 55.0), ("chest-abdomen-pelvis", -4.0, 78.0),
    ("chest-abdomen", 22.0, 76.0), ("kidneys", 24.0, 50.0),
)


@dataclass
class Patient:
    """The random draw that makes one patient differ from another."""

    mm_per_score: float
    width: float
    depth: float
    fat: float
    fat_anterior: float
    muscle: float
    contrast: float
    noise_hu: float
    vertebra_width: float
    marrow_hu: float
    cortex_hu: float
    organ_scale: dict[str, float]
    jitter: dict[str, np.ndarray]
    kidney_dz: tuple[float, float]
    fov_scores: tuple[float, float]
    fov_kind: str
    spacing: tuple[float, float, float]
    axcodes: tuple[str, str, str]
    table_z: float
    centre_xy: tuple[float, float]
    crest_dz: float = 0.0  # iliac crest height against the spine (at L4, or nearer L3/L5)
    # lumbar soft-tissue level cues moved against the spine (mm; SynthConfig.level_cue_jitter)
    cue_dz: dict[str, float] = field(default_factory=lambda: dict.fromkeys(LEVEL_CUES, 0.0))

    def z(self, score: float) -> float:
        return float(score) * self.mm_per_score


CASE_STREAM = 0x5EED  # everything about a case but the level cues
LEVEL_CUE_STREAM = 0x1E7E1  # the level-cue shifts: a stream of their own


def case_rng(seed: int, index: int, stream: int = CASE_STREAM) -> np.random.Generator:
    """Each case's random stream depends on (seed, index) only: results do not depend on workers."""
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(index), stream]))


def level_cue_shifts(seed: int, index: int, levels: float, mm_per_score: float) -> dict[str, float]:
    """Per-structure shifts (mm) of the lumbar level cues, uniform in +-`levels` lumbar pitches.

    Drawn from a stream of their own, so that a cohort without jitter stays byte-identical to one
    generated before the option existed."""
    if levels <= 0:
        return dict.fromkeys(LEVEL_CUES, 0.0)
    rng = case_rng(seed, index, LEVEL_CUE_STREAM)
    reach = levels * LUMBAR_PITCH_SCORE * mm_per_score
    return {name: float(rng.uniform(-reach, reach)) for name in LEVEL_CUES}


def sample_patient(rng: np.random.Generator, config: SynthConfig) -> Patient:
    u = rng.uniform
    organs = ("liver", "spleen", "kidney", "stomach", "bladder", "pancreas", "heart", "gallbladder", "femur")
    organ_scale = {k: float(u(0.88, 1.12)) for k in organs}
    jitter = {k: rng.normal(0.0, 5.0, size=3) for k in organs + ("kidney_r", "kidney_l")}
    # kidney heights vary by up to about half a vertebra either way, independently per side, so a
    # kidney does not pin the level of the vertebra beside it
    kidney_dz = tuple(float(np.clip(rng.normal(0.0, 10.0), -20.0, 20.0)) for _ in range(2))
    spacing_opt = parse_spacing(config.spacing)
    if len(spacing_opt) == 3 and not isinstance(spacing_opt[0], tuple):
        spacing = tuple(float(s) for s in spacing_opt)
    else:
        (lo, hi), slices = spacing_opt  # type: ignore[misc]
        inplane = round(float(u(lo, hi)), 3)
        spacing = (float(rng.choice(np.asarray(slices))), inplane, inplane)
    if config.fov == "fixed":
        a, b = config.score_range
        fov = (a + u(-FIXED_FOV_JITTER, FIXED_FOV_JITTER), b + u(-FIXED_FOV_JITTER, FIXED_FOV_JITTER))
        kind = "fixed"
    else:
        kind, a, b = VARYING_FOV[int(rng.integers(len(VARYING_FOV)))]
        fov = (a + u(-4, 4), b + u(-4, 4))
    if config.orientation == "fixed":
        axcodes = ("R", "A", "S")
    else:
        probs = np.array([p for _, p in ORIENTATIONS])
        axcodes = ORIENTATIONS[int(rng.choice(len(ORIENTATIONS), p=probs / probs.sum()))][0]
    return Patient(
        mm_per_score=MM_PER_SCORE * float(u(0.93, 1.07)), width=float(u(0.9, 1.1)), depth=float(u(0.88, 1.12)),
        fat=float(u(8, 28)), fat_anterior=float(u(0, 22)), muscle=float(u(8, 13)), contrast=float(u(0.85, 1.15)),
        noise_hu=float(u(8, 18)), vertebra_width=float(u(0.92, 1.08)), marrow_hu=float(u(190, 260)),
        cortex_hu=float(u(650, 900)), organ_scale=organ_scale, jitter=jitter, kidney_dz=kidney_dz,
        fov_scores=(float(fov[0]), float(fov[1])), fov_kind=kind, spacing=spacing, axcodes=axcodes,
        table_z=float(u(-900, -300)), centre_xy=(float(u(-12, 12)), float(u(-10, 10))),
        crest_dz=float(u(-15.0, 15.0)),
    )
