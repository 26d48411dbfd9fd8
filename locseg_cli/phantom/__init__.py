"""Synthetic CT cohort (`locseg synth`): CT-like torsos in HU with organ and vertebra labels and the
ground-truth body position of every slice; see docs/phantom.md."""

from .anatomy import LABELS, LANDMARK_SCORES, MM_PER_SCORE
from .config import SynthConfig
from .generate import SynthCase, bodypos_from_affine, generate_case
from .synthesize import synthesize

__all__ = ["LABELS", "LANDMARK_SCORES", "MM_PER_SCORE", "SynthCase", "SynthConfig", "bodypos_from_affine",
           "generate_case", "synthesize"]
