"""The patch sampler: class-balanced (or nnU-Net-style) random patches with their location.

Each batch is a pure function of (seed, rank, batch index): a run with a fixed seed is repeatable
whatever the number of worker processes, and a resumed run continues the same stream by starting
at the next batch index. Volumes are memory-mapped and opened lazily in each worker process.

A batch is lean (about 20 MB at 128 x 32^3 instead of 100 MB): the location travels as the three
per-axis slices of each patch (B, D + H + W), not as three broadcast channels, and labels as uint8,
their stored type. The image and label patches are stored in the volumes' own memory order (NIfTI:
axial fastest), so cutting them is a copy of contiguous runs, not a transpose; the values are the same
and the trainer makes them contiguous on the device (`training.trainer.batch_to_device`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import LocsegError
from ..io.manifest import Manifest
from ..location import patch_location_into, patch_location_vectors
from ..preprocessing.store import PreprocessedCase, load_preprocessed_case

Sampling = Literal["class_balanced", "nnunet", "uniform"]


def crop_with_padding(volume: np.ndarray, start: Sequence[int], size: Sequence[int], fill: float) -> np.ndarray:
    """`volume[start:start+size]` where the parts outside the volume are `fill`."""
    return crop_into(volume, start, np.empty(tuple(size), dtype=volume.dtype), fill)


def crop_into(volume: np.ndarray, start: Sequence[int], out: np.ndarray, fill: float) -> np.ndarray:
    """Write `volume[start:start+out.shape]` into `out` (cast to its dtype), `fill` outside the volume.

    Writing straight into a slot of the batch array saves the per-patch allocation and the stacking copy.
    """
    z, y, x = start
    d, h, w = out.shape
    if 0 <= z and 0 <= y and 0 <= x and z + d <= volume.shape[0] and y + h <= volume.shape[1] \
            and x + w <= volume.shape[2]:  # inside the volume (most patches): one slice, no bookkeeping
        out[...] = volume[z:z + d, y:y + h, x:x + w]
        return out
    out.fill(fill)  # past a border: fill, then copy the part inside the volume (if any)
    src, dst = [], []
    for s, n, dim in zip(start, out.shape, volume.shape):
        a, b = max(s, 0), min(s + n, dim)
        if b <= a:
            return out
        src.append(slice(a, b))
        dst.append(slice(a - s, b - s))
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
        self._class_lists: dict[str, tuple[list[int], list[int]]] = {}  # case -> (classes, foreground)
        self._plain: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # case -> (image, label) without memmap
        self._fortran: bool | None = None  # whether batches follow Fortran-ordered volumes

    def _case(self, cid: str) -> PreprocessedCase:
        if cid not in self._cases:  # opened lazily: each worker process maps its own files
            self._cases[cid] = load_preprocessed_case(self.pre, self.manifest, cid)
        return self._cases[cid]

    def _classes(self, case: PreprocessedCase) -> tuple[list[int], list[int]]:
        """The case's classes, sorted, and its foreground classes: listed once per case, not per patch."""
        lists = self._class_lists.get(case.case_id)
        if lists is None:
            classes = sorted(case.class_locations)
            lists = self._class_lists[case.case_id] = (classes, [c for c in classes if c != 0])
        return lists

    def _arrays(self, case: PreprocessedCase) -> tuple[np.ndarray, np.ndarray]:
        """Image and label as plain ndarray views of their maps (np.memmap's Python-level slicing costs
        more than the copy of a small patch)."""
        arrays = self._plain.get(case.case_id)
        if arrays is None:
            arrays = self._plain[case.case_id] = (np.asarray(case.image), np.asarray(case.label))
        return arrays

    def _centre(self, case: PreprocessedCase, rng: np.random.Generator, forced_fg: bool) -> list[int]:
        classes, fg = self._classes(case)
        if self.sampling == "class_balanced":
            cls = classes[rng.integers(len(classes))]
        elif forced_fg and fg:
            cls = fg[rng.integers(len(fg))]
        else:
            return [int(rng.integers(n)) for n in case.image.shape]
        locs = case.class_locations[cls]
        return locs[rng.integers(len(locs))].tolist()  # Python ints: cheaper arithmetic per patch below

    def _start(self, centre: Sequence[int], shape: Sequence[int]) -> list[int]:
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
        """The next patch of the stream: image (*P), location (D + H + W), label (*P), one at a time."""
        case, start = self._draw(rng, forced_fg)
        img = crop_with_padding(case.image, start, self.patch_size, case.pad_value)
        lab = crop_with_padding(case.label, start, self.patch_size, 0)
        return img, patch_location_vectors(case.location, start, self.patch_size), lab

    def batch_layout(self) -> dict[str, tuple[tuple[int, ...], np.dtype, tuple[int, ...]]]:
        """Per key of a batch: (storage shape, dtype, axes that view the storage as the batch's shape).

        image (B, 1, *P) float32 and label (B, 1, *P) uint8 are stored in the volumes' memory order
        (Fortran-ordered NIfTI maps: axial fastest, so their spatial axes are stored reversed);
        location (B, D + H + W) float32.
        """
        b, (d, h, w) = self.batch_size, self.patch_size
        if self._fortran is None:
            first = self._case(self.case_ids[0]).image
            self._fortran = bool(first.flags.f_contiguous and not first.flags.c_contiguous)
        spatial, axes = ((w, h, d), (0, 1, 4, 3, 2)) if self._fortran else ((d, h, w), (0, 1, 2, 3, 4))
        return {"image": ((b, 1, *spatial), np.dtype(np.float32), axes),
                "location": ((b, d + h + w), np.dtype(np.float32), (0, 1)),
                "label": ((b, 1, *spatial), np.dtype(np.uint8), axes)}

    def empty_batch(self, allocate: Callable[[tuple[int, ...], np.dtype], np.ndarray] | None = None
                    ) -> dict[str, np.ndarray]:
        """Uninitialised batch arrays in `batch_layout` (`allocate(shape, dtype)`: np.empty by default)."""
        allocate = allocate or (lambda shape, dtype: np.empty(shape, dtype=dtype))
        return {k: allocate(shape, dtype).transpose(axes) for k, (shape, dtype, axes) in self.batch_layout().items()}

    def batch(self, index: int, out: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """Batch number `index` of this rank's stream: image (B,1,*P), location (B, D+H+W), label (B,1,*P) uint8.

        Written into `out` when given (arrays shaped and typed as `empty_batch` makes them).
        """
        rng = np.random.default_rng([self.seed, self.rank, int(index)])
        n_fg = int(round(self.foreground_fraction * self.batch_size)) if self.sampling == "nnunet" else 0
        out = out if out is not None else self.empty_batch()
        image, location, label = out["image"][:, 0], out["location"], out["label"][:, 0]
        size = self.patch_size
        cases = self.batch_case_indices(rng)
        for i in range(self.batch_size):  # volumes_per_batch 0: the same draws, in the same order, as `sample`
            case, start = self._draw(rng, forced_fg=i < n_fg, case_index=cases[i])
            case_image, case_label = self._arrays(case)
            crop_into(case_image, start, image[i], case.pad_value)
            crop_into(case_label, start, label[i], 0)
            patch_location_into(case.location, start, size, location[i])
        return out


class PatchBatches:
    """A map-style torch dataset over batch indices (batch assembly happens in DataLoader workers)."""

    def __init__(self, sampler: PatchSampler):
        self.sampler = sampler

    def __getitem__(self, index: int):
        import torch

        in_worker = torch.utils.data.get_worker_info() is not None
        batch = {k: _empty_tensor(shape, dtype, in_worker).permute(axes)
                 for k, (shape, dtype, axes) in self.sampler.batch_layout().items()}
        self.sampler.batch(index, out={k: t.numpy() for k, t in batch.items()})
        return batch

    def loader(self, start: int, stop: int, workers: int = 0, prefetch: int = 4, pin_memory: bool = False):
        """A DataLoader yielding batches `start..stop-1` in order (`pin_memory`: page-locked, for CUDA)."""
        import torch

        return torch.utils.data.DataLoader(self, batch_size=None, sampler=range(start, stop), num_workers=workers,
                                           prefetch_factor=prefetch if workers > 0 else None,
                                           persistent_workers=False, pin_memory=pin_memory)


def _empty_tensor(shape: tuple[int, ...], dtype: np.dtype, shared: bool):
    """An uninitialised CPU tensor; `shared`: allocated in shared memory, so that handing it from a
    DataLoader worker to the trainer moves a handle, not a copy of the batch (torch would copy an
    ordinary tensor into shared memory when the worker puts it on its queue)."""
    import torch

    tdtype = torch.from_numpy(np.empty(0, dtype=dtype)).dtype
    if not shared:
        return torch.empty(shape, dtype=tdtype)
    storage = torch.UntypedStorage._new_shared(int(np.prod(shape)) * dtype.itemsize)
    return torch.empty(0, dtype=tdtype).set_(storage, 0, shape)
