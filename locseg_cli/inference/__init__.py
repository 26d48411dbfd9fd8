"""Location-aware sliding-window inference and the `infer` stage."""

from ..lazy import lazy_exports
from .config import InferConfig

__getattr__ = lazy_exports(__name__, {"predict_volume": ".sliding_window", "infer": ".stage",
                                      "RunPredictor": ".predictor"})
__all__ = ["predict_volume", "InferConfig", "infer", "RunPredictor"]
