"""The preprocessed case on disk: the one module that writes and reads it.

A `preprocess` output holds, per case (paths relative to the folder, named in its manifest):
`images/{case}.nii` (float32, normalised), `labels/{case}.nii` (uint8), `location/{case}.npz`
(the per-axis location vectors `axial`, `coronal`, `sagittal`) and `classlocs/{case}.npz` (up to
`class_samples` voxel positions per class, keys `class_{value}`, for class-balanced sampling).
Training, validation, inference and shift-eval open a case through `load_preprocessed_case`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import LocsegError
from ..io.atomic import atomic_path
from ..io.manifest import Manifest, case_path
from ..io.nifti import load_volume, save_volume

LOCATION_AXES = ("axial", "coronal", "sagittal")  # array axes (z, y, x) of the canonical volume


@dataclass
class PreprocessedCase:
    case_id: str
    image: np.ndarray  # (z, y, x) float32, memory-mapped unless asked otherwise
    label: np.ndarray | None  # uint8
    location: list[np.ndarray]  # per-axis vectors
    class_locations: dict[int, np.ndarray]  # class -> (n, 3) voxel positions
    pad_value: float


def save_preprocessed_case(out: Path, case_id: str, image: np.ndarray, label: np.ndarray | None,
                           location: list[np.ndarray], class_locations: dict[int, np.ndarray] | None,
                           affine: np.ndarray) -> dict[str, str]:
    """Write one case's files (each atomically); returns them as the manifest names them."""
    files = {"image": f"images/{case_id}.nii", "location": f"location/{case_id}.npz"}
    save_volume(out / files["image"], image, affine, dtype=np.float32)
    _save_npz(out / files["location"], dict(zip(LOCATION_AXES, location)))
    if label is not None:
        files["label"] = f"labels/{case_id}.nii"
        files["classlocs"] = f"classlocs/{case_id}.npz"
        save_volume(out / files["label"], label, affine, dtype=np.uint8)
        _save_npz(out / files["classlocs"], {f"class_{int(k)}": v for k, v in (class_locations or {}).items()})
    return files


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def load_preprocessed_case(pre: str | Path, manifest: Manifest, case_id: str, mmap: bool = True) -> PreprocessedCase:
    """Open one case of a `preprocess` output (memory-mapped by default)."""
    entry = manifest.cases.get(case_id)
    if entry is None:
        raise LocsegError(f"case {case_id!r} is not in this preprocessed dataset", pre)
    files = entry["files"]
    image = load_volume(case_path(pre, files["image"]), mmap=mmap).array
    label = load_volume(case_path(pre, files["label"]), mmap=mmap, dtype=None).array if "label" in files else None
    with np.load(case_path(pre, files["location"])) as z:
        location = [z[axis] for axis in LOCATION_AXES]
    classlocs: dict[int, np.ndarray] = {}
    if "classlocs" in files:
        with np.load(case_path(pre, files["classlocs"])) as z:
            classlocs = {int(k.split("_")[1]): z[k] for k in z.files}
    pad = float(entry["meta"].get("pad_value", 0.0))
    return PreprocessedCase(case_id, image, label, location, classlocs, pad)
