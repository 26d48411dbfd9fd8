"""Scoring predictions: Dice, IoU, NSD and HD95 per case and class, summarised like nnU-Net."""

from .config import EvaluateConfig
from .metrics import case_metrics, overlap_counts, surface_metrics
from .run import SUMMARY, evaluate, summarize
from .sources import LabelFiles, open_predictions, open_references

__all__ = ["EvaluateConfig", "case_metrics", "overlap_counts", "surface_metrics", "evaluate",
           "summarize", "SUMMARY", "LabelFiles", "open_predictions", "open_references"]
