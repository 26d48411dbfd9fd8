"""NIfTI volumes: read with clear errors, reorient by the affine, write back the original geometry.

The canonical orientation of every preprocessed array is axis 0 = axial (toward Superior),
axis 1 = coronal (toward Anterior), axis 2 = sagittal (toward Right): nibabel axcodes ('S','A','R'),
so arrays read (z, y, x) like the spacings in the presets. Reorientation always goes through the
affine, never through an assumed axis order (KiTS23 stores the axial axis first).
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel import orientations as nio

from ..errors import LocsegError
from .atomic import atomic_path

CANONICAL_AXCODES = ("S", "A", "R")
NIFTI_SUFFIXES = (".nii.gz", ".nii")


def is_nifti(path: str | Path) -> bool:
    return str(path).endswith(NIFTI_SUFFIXES)


def strip_nifti_suffix(name: str) -> str:
    for s in NIFTI_SUFFIXES:
        if name.endswith(s):
            return name[: -len(s)]
    return name


def voxel_sizes(affine: np.ndarray) -> tuple[float, float, float]:
    """Voxel size along each array axis (mm): the column norms of the affine."""
    return tuple(float(s) for s in np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0)))


@dataclass
class Volume:
    """A 3D array with its affine and the header it was read with."""

    array: np.ndarray
    affine: np.ndarray
    header: nib.Nifti1Header | None = None

    @property
    def spacing(self) -> tuple[float, float, float]:
        return voxel_sizes(self.affine)


def load_header(path: str | Path) -> nib.Nifti1Image:
    """Open a NIfTI file lazily (header only), with one-line errors for unreadable files."""
    path = Path(path)
    if not path.is_file():
        raise LocsegError("file not found", path)
    try:
        img = nib.load(str(path))
    except Exception as exc:  # nibabel raises many types for corrupted files
        raise LocsegError(f"not a readable NIfTI file ({_short(exc)})", path) from None
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise LocsegError(f"not a NIfTI image ({type(img).__name__})", path)
    shape = img.shape
    if len(shape) == 4 and shape[3] == 1:
        pass
    elif len(shape) != 3:
        raise LocsegError(f"expected a 3D image, got {len(shape)}D with shape {tuple(shape)}", path)
    return img


def load_volume(path: str | Path, dtype: type | None = np.float32, mmap: bool = False) -> Volume:
    """Read a 3D NIfTI volume (4D with one frame is squeezed)."""
    img = load_header(path)
    try:
        if mmap:
            arr = np.asanyarray(img.dataobj)
        else:
            arr = np.asarray(img.dataobj, dtype=dtype) if dtype is not None else np.asarray(img.dataobj)
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile, ValueError) as exc:
        raise LocsegError(f"truncated or corrupted image data ({_short(exc)})", path) from None
    if arr.ndim == 4:
        arr = arr[..., 0]
    return Volume(arr, img.affine.astype(np.float64), img.header)


def save_volume(path: str | Path, array: np.ndarray, affine: np.ndarray, header: nib.Nifti1Header | None = None,
                dtype: type | None = None) -> None:
    """Write atomically; with `header`, keep its fields (units, qform/sform codes, description)."""
    arr = np.asarray(array if dtype is None else array.astype(dtype, copy=False))
    if header is not None:
        hdr = header.copy()
        hdr.set_data_dtype(arr.dtype)
        img = nib.Nifti1Image(arr, affine, hdr)
        qcode = int(header["qform_code"]) if "qform_code" in header else 1
        scode = int(header["sform_code"]) if "sform_code" in header else 1
        img.set_qform(affine, code=qcode)
        img.set_sform(affine, code=scode)
        img.header.set_slope_inter(1.0, 0.0)
    else:
        img = nib.Nifti1Image(arr, affine)
        img.set_qform(affine, code=1)
        img.set_sform(affine, code=1)
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp))


@dataclass(frozen=True)
class Orientation:
    """How an array was reoriented to canonical, so predictions can be turned back exactly."""

    transform: np.ndarray  # nibabel ornt transform original -> canonical
    original_shape: tuple[int, int, int]

    def to_canonical(self, array: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(nio.apply_orientation(array, self.transform))

    def from_canonical(self, array: np.ndarray) -> np.ndarray:
        inv = _inverse(self.transform)
        out = np.ascontiguousarray(nio.apply_orientation(array, inv))
        if out.shape[:3] != self.original_shape:
            raise ValueError(f"array of shape {array.shape} does not come from {self.original_shape}")
        return out


CANON_ORNT = nio.axcodes2ornt(CANONICAL_AXCODES)


def _inverse(transform: np.ndarray) -> np.ndarray:
    """The ornt transform that undoes `transform` (a permutation with flips)."""
    inv = np.zeros_like(transform)
    for src_axis, (dst_axis, flip) in enumerate(transform):
        inv[int(dst_axis)] = [src_axis, flip]
    return inv


def canonical_orientation(affine: np.ndarray, shape: tuple[int, ...]) -> tuple[Orientation, np.ndarray]:
    """The reorientation of an image with `affine` to canonical, and the canonical affine."""
    src = nio.io_orientation(affine)
    transform = nio.ornt_transform(src, CANON_ORNT)
    new_affine = affine @ nio.inv_ornt_aff(transform, shape[:3])
    return Orientation(transform, tuple(int(s) for s in shape[:3])), new_affine


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]
