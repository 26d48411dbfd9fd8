"""Dataset readers: one per on-disk layout, all answering with the same `Dataset`."""

from .base import CaseRef, Dataset, detect_layout, open_dataset, register_reader

__all__ = ["CaseRef", "Dataset", "open_dataset", "detect_layout", "register_reader"]
