"""Preprocessing: reorient by the affine, crop to the body, resample, normalise, location vectors.

`prepare_case` is the one transformation from a raw image to the network's space; `preprocess`
(the stage) applies it to a dataset, and `locseg infer` applies it to new images, so training and
inference see exactly the same data. `CaseGeometry` maps arrays back to the raw geometry.
"""

from ..lazy import lazy_exports
from .config import PreprocessConfig

__getattr__ = lazy_exports(__name__, {"CaseGeometry": ".geometry", "PreparedCase": ".pipeline",
                                      "prepare_case": ".pipeline", "preprocess": ".pipeline",
                                      "PreprocessPlan": ".plan", "PreprocessedCase": ".store",
                                      "load_preprocessed_case": ".store"})
__all__ = ["PreprocessConfig", "CaseGeometry", "PreparedCase", "PreprocessPlan", "PreprocessedCase", "prepare_case",
           "preprocess", "load_preprocessed_case"]
