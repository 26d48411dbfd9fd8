"""Random training patches cut straight from memory-mapped preprocessed volumes, with their location."""

from .patch_sampler import PatchBatches, PatchSampler

__all__ = ["PatchSampler", "PatchBatches"]
