"""Segmentation models behind one registry: `baseline`, `coordconv`, `locbam`.

Every model is a `LocationAwareModel`: `model(image, location) -> logits`, with location channel a
aligned with image axis a. Build them with `build_model(ModelConfig(model=...))`.
"""

from __future__ import annotations

from ..lazy import lazy_exports
from .config import PAPER_FEATURES, ModelConfig

# torch loads only when a model is built, not when a config is parsed
__getattr__ = lazy_exports(__name__, {
    "LocationAwareModel": ".base", "convert_sync_batchnorm": ".base", "count_parameters": ".base",
    "build_model": ".registry", "model_description": ".registry", "model_names": ".registry",
    "register_model": ".registry"})

__all__ = ["LocationAwareModel", "ModelConfig", "PAPER_FEATURES", "build_model", "convert_sync_batchnorm",
           "count_parameters", "model_description", "model_names", "register_model"]
