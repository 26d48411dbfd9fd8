"""Segmentation models behind one registry: `baseline`, `coordconv`, `locbam`.

Every model is a `LocationAwareModel`: `model(image, location) -> logits`, with location channel a
aligned with image axis a. Build them with `build_model(ModelConfig(model=...))`.
"""

from __future__ import annotations

from .base import LocationAwareModel, convert_sync_batchnorm, count_parameters
from .config import PAPER_FEATURES, ModelConfig
from .registry import build_model, model_description, model_names, register_model

__all__ = ["LocationAwareModel", "ModelConfig", "PAPER_FEATURES", "build_model", "convert_sync_batchnorm",
           "count_parameters", "model_description", "model_names", "register_model"]
