"""Per-class probability atlases with a dilation chosen on validation data (atlas masking)."""

from ..lazy import lazy_exports
from .config import AtlasConfig

__getattr__ = lazy_exports(__name__, {
    "build_atlas": ".run", "Atlas": ".store"})
__all__ = ["AtlasConfig", "Atlas", "build_atlas"]
