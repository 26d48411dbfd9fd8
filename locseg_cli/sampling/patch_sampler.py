"""The patch sampler: class-balanced (or nnU-Net-style) random patches with location channels.

Each batch is a pure function of (seed, rank, batch index): a run with a fixed seed is repeatable
whatever the number of worker processes, and a resumed run continues the same stream by starting
at the next batch index. Volumes are memory-mapped and opened lazily in each worker process.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import LocsegError
from ..io.manifest import Manifest
from ..location import location_channels
from ..location.vectors import batch_location_channels
from ..preprocessing.store import PreprocessedCase, load_preprocessed_case

Sampling = Literal["class_balanced", "nnunet", "uniform"]


def crop_with_padding(volume: np.ndarray, start: Sequence[int], size: Sequence[int], fill: float) -> np.ndarray:
    """`volume[start:start+size]` where the parts outside the volume are `fill`."""
    return crop_into(volume, start, np.empty(tuple(size), dtype=volume.dtype), fill)


def crop_into(volume: np.ndarray, start: Sequence[int], out: np.ndarray, fill: float) -> np.ndarray:
    """Write `volume[start:start+out.shape]` into `out` (cast to its dtype), `fill` outside the volume.

    Writing straight into a slot of the batch array saves the per-patch allocation and the stacking copy.
    """
    src, dst = [], []
    inside = True
    for s, n, dim in zip(start, out.shape, volume.shape):
        a, b = max(s, 0), min(s + n, dim)
        if b <= a:
            out.fill(fill)
            return out
        inside = inside and a == s and b == s + n
        src.append(slice(a, b))
        dst.append(slice(a - s, b - s))
    if not inside:
        out.fill(fill)
    out[tuple(dst)] = volume[tuple(src)]
    return out


class PatchSampler:
    """Draws batches of (image, location, label) patches from a preprocessed dataset.

    sampling:
      class_balanced  every patch is centred on a voxel of a class drawn uniformly among the classes
                      present in the case, background included (MONAI RandCropByLabelClassesd, as in
                      the paper's code);
      nnunet          a fraction `foreground_fraction` (nnU-Net: 33%) of each batch is centred on a
                      random foreground class, the rest anywhere;
      uniform         anywhere.
    volumes_per_batch: 0 draws each patch's case anew (patches of one batch from up to B cases); V > 0
    draws V cases per batch and B/V patches from each, in order (the paper's public code: 2 volumes x 64
    crops at 32^3), which changes the batch statistics a LocBAM gate's BatchNorm sees.
    Patches are kept inside the volume where it is large enough; smaller volumes are padded.
    """

    def __init__(self, pre: str | Path, manifest: Manifest, case_ids: Sequence[str], patch_size: Sequence[int],
                 batch_size: int, seed: int = 0, rank: int = 0, sampling: Sampling = "class_balanced",
                 foreground_fraction: float = 0.33, volumes_per_batch: int = 0):
        if not case_ids:
            raise LocsegError("no training cases to sample from", pre)
        self.pre = Path(pre)
        self.manifest = manifest
        self.case_ids = list(case_ids)
        for cid in self.case_ids:
            entry = manifest.cases.get(cid)
            if entry is None or "label" not in entry["files"]:
                raise LocsegError(f"case {cid!r} has no preprocessed label", pre)
        self.patch_size = tuple(int(p) for p in patch_size)
        shapes = [manifest.cases[c]["meta"]["shape"] for c in self.case_ids]
        if all(all(p > s for p, s in zip(self.patch_size, shape)) for shape in shapes):
            largest = max(shapes, key=lambda s: int(np.prod(s)))
            raise LocsegError(f"patch {list(self.patch_size)} is larger than every volume (largest {largest}); "
                              "use a smaller --patch-size", pre)
        self.batch_size = int(batch_size)
        self.volumes_per_batch = int(volumes_per_batch)
        if self.volumes_per_batch < 0 or (self.volumes_per_batch and self.batch_size % self.volumes_per_batch):
            raise LocsegError(f"--volumes-per-batch {self.volumes_per_batch} does not divide the batch of "
                              f"{self.batch_size} patches (per process)")
        self.seed, self.rank = int(seed), int(rank)
        self.sampling = sampling
        self.foreground_fraction = float(foreground_fraction)
        self._cases: dict[str, PreprocessedCase] = {}

    def _case(self, cid: str) -> PreprocessedCase:
        if cid not in self._cases:  # opened lazily: each worker process maps its own files
            self._cases[cid] = load_preprocessed_case(self.pre, self.manifest, cid)
        return self._cases[cid]

    def _centre(self, case: PreprocessedCase, rng: np.random.Generator, forced_fg: bool) -> np.ndarray:
        classes = sorted(case.class_locations)
        if self.sampling == "class_balanced":
            cls = classes[rng.integers(len(classes))]
        elif forced_fg and any(c != 0 for c in classes):
            fg = [c for c in classes if c != 0]
            cls = fg[rng.integers(len(fg))]
        else:
            return np.array([rng.integers(n) for n in case.image.shape])
        locs = case.class_locations[cls]
        return locs[rng.integers(len(locs))]

    def _start(self, centre: np.ndarray, shape: Sequence[int]) -> list[int]:
        start = []
        for c, p, n in zip(centre, self.patch_size, shape):
            s = int(c) - p // 2
            s = min(max(s, 0), n - p) if n >= p else -((p - n) // 2)
            start.append(s)
        return start

    def _draw(self, rng: np.random.Generator, forced_fg: bool,
              case_index: int | None = None) -> tuple[PreprocessedCase, list[int]]:
        """The next patch of the stream: its case (drawn now unless given) and its first voxel."""
        if case_index is None:
            case_index = int(rng.integers(len(self.case_ids)))
        case = self._case(self.case_ids[case_index])
        return case, self._start(self._centre(case, rng, forced_fg), case.image.shape)

    def batch_case_indices(self, rng: np.random.Generator) -> list[int | None]:
        """Per patch of a batch, the case index fixed in advance (`volumes_per_batch`), or None (drawn with it)."""
        if not self.volumes_per_batch:
            return [None] * self.batch_size
        volumes = rng.integers(len(self.case_ids), size=self.volumes_per_batch)
        per_volume = self.batch_size // self.volumes_per_batch
        return [int(volumes[i // per_volume]) for i in range(self.batch_size)]

    def sample(self, rng: np.random.Generator, forced_fg: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        case, start = self._draw(rng, forced_fg)
        img = crop_with_padding(case.image, start, self.patch_size, case.pad_value)
        lab = crop_with_padding(case.label, start, self.patch_size, 0)
        loc = location_channels(case.location, start, self.patch_size)
        return img, loc, lab

    def batch(self, index: int) -> dict[str, np.ndarray]:
        """Batch number `index` of this rank's stream: image (B,1,*P), location (B,3,*P), label (B,1,*P)."""
        rng = np.random.default_rng([self.seed, self.rank, int(index)])
        n_fg = int(round(self.foreground_fraction * self.batch_size)) if self.sampling == "nnunet" else 0
        size = self.patch_size
        image = np.empty((self.batch_size, 1, *size), dtype=np.float32)
        label = np.empty((self.batch_size, 1, *size), dtype=np.int64)
        vectors, starts = [], []
        cases = self.batch_case_indices(rng)
        for i in range(self.batch_size):  # volumes_per_batch 0: the same draws, in the same order, as `sample`
            case, start = self._draw(rng, forced_fg=i < n_fg, case_index=cases[i])
            crop_into(case.image, start, image[i, 0], case.pad_value)
            crop_into(case.label, start, label[i, 0], 0)
            vectors.append(case.location)
            starts.append(start)
        return {"image": image, "location": batch_location_channels(vectors, starts, size), "label": label}


class PatchBatches:
    """A map-style torch dataset over batch indices (batch assembly happens in DataLoader workers)."""

    def __init__(self, sampler: PatchSampler):
        self.sampler = sampler

    def __getitem__(self, index: int):
        import torch

        b = self.sampler.batch(index)
        return {k: torch.from_numpy(v) for k, v in b.items()}

    def loader(self, start: int, stop: int, workers: int = 0, prefetch: int = 4):
        """A DataLoader yielding batches `start..stop-1` in order."""
        import torch

        return torch.utils.data.DataLoader(self, batch_size=None, sampler=range(start, stop), num_workers=workers,
                                           prefetch_factor=prefetch if workers > 0 else None,
                                           persistent_workers=False, pin_memory=False)
