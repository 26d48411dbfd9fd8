"""Filtering predictions: largest connected component, atlas masking, body-position range."""

from ..lazy import lazy_exports
from .config import METHODS, PostprocessConfig

__getattr__ = lazy_exports(__name__, {
    "largest_component": ".components", "mask_outside": ".components", "postprocess": ".run"})
__all__ = ["PostprocessConfig", "METHODS", "largest_component", "mask_outside", "postprocess"]
