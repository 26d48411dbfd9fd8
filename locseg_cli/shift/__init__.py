"""Robustness to a shifted location signal: Dice on the validation fold for each axial shift."""

from ..lazy import lazy_exports
from .config import ShiftEvalConfig

__getattr__ = lazy_exports(__name__, {"shift_eval": ".run", "SHIFT_JSON": ".run", "ShiftEvalResult": ".run"})
__all__ = ["ShiftEvalConfig", "shift_eval", "SHIFT_JSON", "ShiftEvalResult"]
