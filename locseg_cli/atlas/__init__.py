"""Per-class probability atlases with a dilation chosen on validation data (atlas masking)."""

from .config import AtlasConfig
from .run import build_atlas
from .store import Atlas

__all__ = ["AtlasConfig", "Atlas", "build_atlas"]
