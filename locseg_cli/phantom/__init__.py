"""Synthetic CT cohort (`locseg synth`): CT-like torsos in HU with organ and vertebra labels and the
ground-truth body position of every slice; see docs/phantom.md."""

from ..lazy import lazy_exports
from .config import SynthConfig

__getattr__ = lazy_exports(__name__, {
    "LABELS": ".anatomy", "LANDMARK_SCORES": ".anatomy", "MM_PER_SCORE": ".anatomy", "SynthCase": ".storage",
    "bodypos_from_affine": ".storage", "generate_case": ".generate", "synthesize": ".synthesize"})

__all__ = ["LABELS", "LANDMARK_SCORES", "MM_PER_SCORE", "SynthCase", "SynthConfig", "bodypos_from_affine",
           "generate_case", "synthesize"]
