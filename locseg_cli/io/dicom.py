"""DICOM CT series: the one series of a folder, checked to be a regular grid, read as a `Volume`.

pydicom (the optional `dicom` extra, imported only here and only when a series is read) decodes the
files; the geometry comes from the DICOM patient-coordinate equations, not from file or instance
order: each slice's ImageOrientationPatient gives the row and column directions, their cross product
the slice normal, and the slices are sorted by their ImagePositionPatient projected on that normal.
So oblique and flipped series (slices numbered head to feet, mirrored rows) land on the right grid.
What would make the grid wrong is refused with one line naming the folder: two series in one folder,
slices whose spacing is uneven (a missing slice), slices at one position, mixed orientations or
sizes. Arrays are (column, row, slice) with a RAS affine, the layout of a NIfTI file converted from
the same series, so everything downstream treats both alike. docs/inference.md says why pydicom.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from ..errors import LocsegError
from .nifti import Volume, _short

DICOM_EXTRA = "pip install 'locseg[dicom]'"
SLICE_GAP_TOLERANCE = 0.1  # a slice step may differ from the median step by this part of it
SHEAR_MAX_DEG = 1.0  # slice stack further from the slice normal than this: gantry tilt, refused
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
_SKIPPED_NAMES = {"DICOMDIR"}  # the media index some exports put beside the slices: not a slice


def require_pydicom(path: str | Path | None = None) -> ModuleType:
    """pydicom, or one line telling how to install the optional DICOM dependencies."""
    try:
        import pydicom
    except ImportError:
        raise LocsegError(f"reading DICOM needs the optional DICOM dependencies: {DICOM_EXTRA}", path) from None
    return pydicom


def has_dicom_magic(path: Path) -> bool:
    """A DICOM Part 10 file: 128 bytes of preamble, then `DICM` (cheap, needs no pydicom)."""
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def dicom_files(folder: Path) -> list[Path]:
    """The DICOM files directly in `folder` (not hidden, not a DICOMDIR), by name."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                  and p.name not in _SKIPPED_NAMES and has_dicom_magic(p))


def is_dicom_folder(folder: Path) -> bool:
    return bool(dicom_files(folder))


@dataclass(frozen=True)
class DicomSeries:
    """One series, its slices sorted along the slice normal, and the grid they form."""

    folder: Path
    series_uid: str
    files: tuple[Path, ...]  # slice k of the volume is files[k]
    affine: np.ndarray  # RAS, voxel (column, row, slice) -> mm
    shape: tuple[int, int, int]  # (columns, rows, slices)


def _read_header(pydicom: ModuleType, path: Path):
    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except Exception as exc:  # pydicom raises many types for damaged files
        raise LocsegError(f"not a readable DICOM file ({_short(exc)})", path) from None


def _floats(ds, keyword: str, n: int, path: Path) -> np.ndarray:
    value = ds.get(keyword)
    try:
        out = np.asarray([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError):
        out = np.zeros(0)
    if out.shape != (n,) or not np.isfinite(out).all():
        raise LocsegError(f"no valid {keyword} ({n} numbers): not a slice of a CT series", path)
    return out


def scan_series(folder: str | Path) -> DicomSeries:
    """Read the headers of the DICOM files in `folder` and check they form one regular 3-D grid."""
    folder = Path(folder)
    pydicom = require_pydicom(folder)
    files = dicom_files(folder)
    if not files:
        raise LocsegError("no DICOM files here", folder)
    headers = [(p, _read_header(pydicom, p)) for p in files]
    for p, ds in headers:
        if not ds.get("SeriesInstanceUID"):
            raise LocsegError("no SeriesInstanceUID: not an image of a DICOM series", p)
    uids = sorted({str(ds.SeriesInstanceUID) for _, ds in headers})
    if len(uids) > 1:
        raise LocsegError(f"holds {len(uids)} DICOM series ({', '.join(uids)}); give each series its own folder",
                          folder)
    for p, ds in headers:
        if int(ds.get("NumberOfFrames", 1) or 1) > 1:
            raise LocsegError("a multi-frame DICOM image: only series of single-slice files are read", p)
    first_path, first = headers[0]
    orient = _floats(first, "ImageOrientationPatient", 6, first_path)
    pixel = _floats(first, "PixelSpacing", 2, first_path)
    size = (int(first.get("Rows", 0) or 0), int(first.get("Columns", 0) or 0))
    row_dir, col_dir = orient[:3], orient[3:]
    normal = np.cross(row_dir, col_dir)
    if not np.isclose(np.linalg.norm(normal), 1.0, atol=1e-3):
        raise LocsegError("ImageOrientationPatient is not two perpendicular unit vectors", first_path)
    positions = []
    for p, ds in headers:
        if not np.allclose(_floats(ds, "ImageOrientationPatient", 6, p), orient, atol=1e-4):
            raise LocsegError(f"slice orientation differs from {first_path.name}'s (ImageOrientationPatient)", p)
        if not np.allclose(_floats(ds, "PixelSpacing", 2, p), pixel, rtol=1e-4):
            raise LocsegError(f"pixel spacing differs from {first_path.name}'s", p)
        if (int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)) != size:
            raise LocsegError(f"slice size differs from {first_path.name}'s {size[0]} x {size[1]}", p)
        positions.append(_floats(ds, "ImagePositionPatient", 3, p))
    if len(headers) < 2:
        raise LocsegError("one slice only: a 3-D series needs at least two", folder)
    positions = np.asarray(positions)
    depth = positions @ normal
    order = np.argsort(depth, kind="stable")
    steps = np.diff(depth[order])
    names = [files[i].name for i in order]
    _check_steps(folder, steps, names)
    first_pos, last_pos = positions[order[0]], positions[order[-1]]
    step = (last_pos - first_pos) / (len(order) - 1)
    tilt = np.degrees(np.arccos(np.clip(abs(step @ normal) / np.linalg.norm(step), -1.0, 1.0)))
    if tilt > SHEAR_MAX_DEG:
        raise LocsegError(f"the slices are stacked {tilt:.1f} degrees off their normal (gantry tilt): "
                          "resample the series first", folder)
    lps = np.eye(4)
    lps[:3, 0] = row_dir * pixel[1]  # array axis 0 = column index: along the row direction
    lps[:3, 1] = col_dir * pixel[0]  # array axis 1 = row index: along the column direction
    lps[:3, 2] = step
    lps[:3, 3] = first_pos
    return DicomSeries(folder, uids[0], tuple(files[i] for i in order), _LPS_TO_RAS @ lps,
                       (size[1], size[0], len(order)))


def _check_steps(folder: Path, steps: np.ndarray, names: list[str]) -> None:
    """Slices one spacing apart everywhere: a duplicate or a gap is refused, naming the two slices."""
    spacing = float(np.median(steps))
    same = np.flatnonzero(steps < 1e-3)
    if len(same) or spacing <= 0:
        k = int(same[0]) if len(same) else 0
        raise LocsegError(f"two slices at the same position ({names[k]}, {names[k + 1]})", folder)
    off = np.abs(steps - spacing) > SLICE_GAP_TOLERANCE * spacing
    if off.any():
        k = int(np.flatnonzero(off)[0])
        gaps = int(off.sum())
        more = f" ({gaps} uneven steps)" if gaps > 1 else ""
        raise LocsegError(f"uneven slice spacing: {steps[k]:.3g} mm between {names[k]} and {names[k + 1]}, "
                          f"{spacing:.3g} mm elsewhere{more}: missing slices?", folder)


def load_series(series: DicomSeries) -> Volume:
    """The series' voxels in its modality's units (HU for CT: the rescale slope and intercept applied)."""
    pydicom = require_pydicom(series.folder)
    from pydicom.pixels import apply_modality_lut

    cols, rows, n = series.shape
    out = np.empty((cols, rows, n), dtype=np.float32)
    for k, path in enumerate(series.files):
        try:
            ds = pydicom.dcmread(path)
            values = apply_modality_lut(ds.pixel_array, ds)
        except Exception as exc:  # a missing decoder or damaged pixel data
            raise LocsegError(f"cannot read its pixel data ({_short(exc)})", path) from None
        if values.shape != (rows, cols):
            raise LocsegError(f"pixel data of shape {values.shape}, expected {rows} x {cols}", path)
        out[:, :, k] = values.T
    return Volume(out, series.affine.copy(), None)

