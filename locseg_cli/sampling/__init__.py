"""Random training patches cut straight from memory-mapped preprocessed volumes, with their location."""

from .patch_sampler import PatchBatches, PatchSampler, PreprocessedCase, load_preprocessed_case

__all__ = ["PatchSampler", "PatchBatches", "PreprocessedCase", "load_preprocessed_case"]
