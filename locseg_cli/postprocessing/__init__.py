"""Filtering predictions: largest connected component, atlas masking, body-position range."""

from .components import largest_component, mask_outside
from .config import METHODS, PostprocessConfig
from .run import postprocess

__all__ = ["PostprocessConfig", "METHODS", "largest_component", "mask_outside", "postprocess"]
