"""Scoring predictions: Dice, IoU, NSD and HD95 per case and class, summarised like nnU-Net."""

from ..lazy import lazy_exports
from .config import EvaluateConfig

__getattr__ = lazy_exports(__name__, {
    "case_metrics": ".metrics", "overlap_counts": ".metrics", "surface_metrics": ".metrics",
    "SUMMARY": ".run", "evaluate": ".run", "summarize": ".run", "LabelFiles": ".sources",
    "open_predictions": ".sources", "open_references": ".sources"})
__all__ = ["EvaluateConfig", "case_metrics", "overlap_counts", "surface_metrics", "evaluate",
           "summarize", "SUMMARY", "LabelFiles", "open_predictions", "open_references"]
