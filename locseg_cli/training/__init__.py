"""`locseg train`: the nnU-Net v2 protocol on location-aware patches, resumable, DDP-ready."""

from ..lazy import lazy_exports
from .config import TrainConfig

__getattr__ = lazy_exports(__name__, {"train": ".stage", "TrainResult": ".result"})
__all__ = ["TrainConfig", "train", "TrainResult"]
