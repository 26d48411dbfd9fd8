"""`locseg train`: the nnU-Net v2 protocol on location-aware patches, resumable, DDP-ready."""

from .config import TrainConfig
from .trainer import TrainResult, train

__all__ = ["TrainConfig", "train", "TrainResult"]
