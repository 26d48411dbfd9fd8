"""Location-aware sliding-window inference and the `infer` stage."""

from .config import InferConfig
from .sliding_window import predict_volume
from .stage import infer

__all__ = ["predict_volume", "InferConfig", "infer"]
