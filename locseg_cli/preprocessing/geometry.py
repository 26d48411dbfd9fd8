"""Where a preprocessed case lies in its raw image, so outputs go back to the raw geometry exactly."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from ..io.nifti import Orientation
from .resample import interpolate_argmax, resample_image, resample_labels


@dataclass(frozen=True)
class CaseGeometry:
    """raw image --reorient--> canonical --crop--> box --resample--> preprocessed grid."""

    raw_shape: tuple[int, int, int]
    raw_affine: tuple[tuple[float, ...], ...]  # 4x4
    orientation: tuple[tuple[float, float], ...]  # nibabel ornt transform raw -> canonical
    canonical_shape: tuple[int, int, int]
    crop: tuple[tuple[int, int], ...]  # [start, stop) per canonical axis
    raw_spacing: tuple[float, float, float]  # canonical (z, y, x) spacing of the raw data
    spacing: tuple[float, float, float]  # preprocessed (z, y, x) spacing
    shape: tuple[int, int, int]  # preprocessed shape
    separate_z: bool = False

    # -- serialisation ---------------------------------------------------------------------------
    def to_meta(self) -> dict:
        return _lists(asdict(self))

    @classmethod
    def from_meta(cls, meta: dict) -> CaseGeometry:
        return cls(
            raw_shape=tuple(int(v) for v in meta["raw_shape"]),
            raw_affine=tuple(tuple(float(x) for x in row) for row in meta["raw_affine"]),
            orientation=tuple(tuple(float(x) for x in row) for row in meta["orientation"]),
            canonical_shape=tuple(int(v) for v in meta["canonical_shape"]),
            crop=tuple((int(a), int(b)) for a, b in meta["crop"]),
            raw_spacing=tuple(float(v) for v in meta["raw_spacing"]),
            spacing=tuple(float(v) for v in meta["spacing"]),
            shape=tuple(int(v) for v in meta["shape"]),
            separate_z=bool(meta.get("separate_z", False)),
        )

    # -- derived -----------------------------------------------------------------------------------
    @property
    def affine(self) -> np.ndarray:
        return np.asarray(self.raw_affine, dtype=np.float64)

    @property
    def box_shape(self) -> tuple[int, int, int]:
        return tuple(b - a for a, b in self.crop)

    @property
    def _orientation(self) -> Orientation:
        return Orientation(np.asarray(self.orientation), self.raw_shape)

    def canonical_affine(self) -> np.ndarray:
        from nibabel import orientations as nio

        return self.affine @ nio.inv_ornt_aff(np.asarray(self.orientation), self.raw_shape)

    def preprocessed_affine(self) -> np.ndarray:
        """Affine of the preprocessed grid (voxel centres as skimage's resize places them)."""
        a = self.canonical_affine()
        shift = np.eye(4)
        shift[:3, 3] = [c[0] for c in self.crop]
        scale = np.eye(4)
        f = np.asarray(self.box_shape, float) / np.asarray(self.shape, float)
        scale[:3, :3] = np.diag(f)
        scale[:3, 3] = 0.5 * f - 0.5
        return a @ shift @ scale

    def axial_world_mm(self) -> np.ndarray:
        """World superior coordinate (mm) of each preprocessed axial slice (at the grid centre)."""
        aff = self.preprocessed_affine()
        idx = np.zeros((4, self.shape[0]))
        idx[0] = np.arange(self.shape[0])
        idx[1] = (self.shape[1] - 1) / 2
        idx[2] = (self.shape[2] - 1) / 2
        idx[3] = 1
        return (aff @ idx)[2]

    # -- back to the raw image ---------------------------------------------------------------------
    def _uncrop(self, box: np.ndarray, fill: float | int = 0) -> np.ndarray:
        full = np.full(self.canonical_shape, fill, dtype=box.dtype)
        full[tuple(slice(a, b) for a, b in self.crop)] = box
        return self._orientation.from_canonical(full)

    def restore(self, array: np.ndarray, order: int = 0, fill: float | int = 0) -> np.ndarray:
        """An array over the case's box (any resolution) -> raw geometry. order 0 for masks/labels."""
        if order == 0 and np.issubdtype(array.dtype, np.integer):
            box = resample_labels(array, self.box_shape, separate_z=self.separate_z).astype(array.dtype)
        else:
            box = resample_image(array.astype(np.float32), self.box_shape, order=order, separate_z=self.separate_z)
        return self._uncrop(box, fill)

    def restore_argmax(self, values: Sequence[int], channel: Callable[[int], np.ndarray]) -> np.ndarray:
        """Per-class maps over the box (`channel(value)`: logits or probabilities) -> raw-geometry label map:
        the first class with the highest value after order-1 resampling (`interpolate_argmax`)."""
        box = interpolate_argmax(values, channel, self.box_shape, separate_z=self.separate_z)
        return self._uncrop(box, 0)

    def to_preprocessed(self, canonical: np.ndarray, order: int = 3) -> np.ndarray:
        """A canonical raw-resolution array -> the preprocessed grid (crop + resample)."""
        box = canonical[tuple(slice(a, b) for a, b in self.crop)]
        if order == 0:
            return resample_labels(box, self.shape, separate_z=self.separate_z)
        return resample_image(box.astype(np.float32), self.shape, order=order, separate_z=self.separate_z)


def _lists(v):
    if isinstance(v, dict):
        return {k: _lists(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_lists(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


def body_box(image: np.ndarray, threshold: float, margin: int = 2) -> tuple[tuple[int, int], ...]:
    """Bounding box [start, stop) of voxels above `threshold`, with a margin; the whole image if none."""
    mask = image > threshold
    if not mask.any():
        return tuple((0, n) for n in image.shape)
    box = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        prof = np.flatnonzero(mask.any(axis=other))
        box.append((max(0, int(prof[0]) - margin), min(image.shape[axis], int(prof[-1]) + 1 + margin)))
    return tuple(box)



