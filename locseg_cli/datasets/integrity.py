"""The integrity check of a raw dataset: every defect of every case, as one list of one-line problems.

Run by `locseg check` and at the start of every stage that reads raw data, so that a broken file
is reported once, by name, before hours of work, instead of as a traceback in the middle.
Headers are checked first (milliseconds per file); voxel data are read only for what needs them
(finiteness, label values), optionally in worker processes.

Errors make a case invalid; warnings (oblique scans, qform/sform disagreement, non-square CT
pixels) are shown but do not. The "suspicious" orientation and spacing errors are the corruptions that made the paper
exclude KiTS23 scans; the thresholds are the constants below (docs/datasets.md lists every message).
"""

from __future__ import annotations

import gzip
import zlib
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import nibabel as nib
import numpy as np
from nibabel.openers import ImageOpener

from ..errors import LocsegError
from ..io.nifti import voxel_sizes
from ..progress import Progress
from .base import CaseRef, Dataset

SPACING_MIN_MM = 0.1  # below: implausible for a clinical CT/MR voxel
SPACING_MAX_MM = 20.0  # above: implausible
SLICE_SUSPICIOUS_MM = 10.0  # slice (axial) spacing above this looks corrupted
SLICE_TO_INPLANE_MIN = 0.25  # slice spacing under a quarter of the in-plane spacing looks corrupted
INPLANE_SQUARE_RATIO = 1.05  # CT pixels are square; a larger in-plane ratio is worth a warning
SHEAR_MAX_DEG = 1.0  # voxel axes further from perpendicular than this: sheared affine (error)
OBLIQUE_WARN_DEG = 5.0  # voxel axes further than this from the patient axes: oblique (warning)
AFFINE_TOLERANCE_VOXELS = 0.1  # image/label (and qform/sform) grids may differ by this part of a voxel

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One defect of one file of one case."""

    case_id: str
    path: str
    message: str
    severity: Severity = "error"

    def line(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class IntegrityReport:
    """All problems of a dataset; `skipped` are the cases its reader left out (MRI, known bad)."""

    case_ids: list[str]
    problems: list[Problem] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    data_checked: bool = True

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def invalid_cases(self) -> set[str]:
        return {p.case_id for p in self.errors}

    def valid_cases(self) -> list[str]:
        bad = self.invalid_cases()
        return [c for c in self.case_ids if c not in bad]

    def summary(self) -> str:
        n, bad = len(self.case_ids), self.invalid_cases()
        warn = f"; {len(self.warnings)} warning{'s' * (len(self.warnings) != 1)}" if self.warnings else ""
        if not bad:
            return f"{n} case{'s' * (n != 1)}, all valid{warn}"
        return (f"{len(bad)} of {n} case{'s' * (n != 1)} invalid ({len(self.errors)} "
                f"error{'s' * (len(self.errors) != 1)}{warn})")

    def excluded(self, skip_invalid: bool) -> dict[str, str]:
        """For a stage: {case id: its first error} to leave out; refuses unless `skip_invalid`."""
        first: dict[str, str] = {}
        for p in self.errors:
            first.setdefault(p.case_id, p.line())
        if first and not skip_invalid:
            one = next(iter(first.values()))
            raise LocsegError(f"{self.summary()}: {one}"
                              f"{' (and more)' if len(self.errors) > 1 else ''}; run `locseg check` for the "
                              "full list, or pass --skip-invalid to go on without them")
        return first


def check_dataset(dataset: Dataset, progress: Progress | None = None, workers: int = 1,
                  read_data: bool = True) -> IntegrityReport:
    """Check every case of `dataset`; `read_data=False` checks headers only (seconds for 30 cases)."""
    progress = progress or Progress()
    cases = list(dataset.cases)
    labels = sorted(dataset.labels)
    ct = dataset.modality.upper() == "CT"
    progress.start("checking cases", total=len(cases))
    results: list[list[Problem]]
    if workers > 1 and len(cases) > 1:
        results = [[] for _ in cases]
        with ProcessPoolExecutor(max_workers=min(workers, len(cases))) as pool:
            futures = {pool.submit(check_case, c, labels, ct, read_data): i for i, c in enumerate(cases)}
            for fut in as_completed(futures):
                results[futures[fut]] = fut.result()
                progress.advance()
    else:
        results = []
        for c in cases:
            results.append(check_case(c, labels, ct, read_data))
            progress.advance()
    progress.stop()
    problems = [p for r in results for p in r]
    return IntegrityReport([c.case_id for c in cases], problems, dict(dataset.skipped), read_data)


def check_case(case: CaseRef, labels: list[int], ct: bool = True, read_data: bool = True) -> list[Problem]:
    """All problems of one case (image, then label)."""
    out: list[Problem] = []

    def add(path: Path, message: str, severity: Severity = "error") -> None:
        out.append(Problem(case.case_id, str(path), message, severity))

    image = _check_file(case.image, add, geometry=True, ct=ct)
    image_geometry_ok = not any(p.severity == "error" for p in out)
    if image is not None and read_data:
        _check_image_data(case.image, image, add)
    if case.label is None:
        return out
    label = _check_file(case.label, add, geometry=False, ct=ct)
    if label is None:
        return out
    if image is not None:
        shape_i, shape_l = _shape3(image), _shape3(label)
        if shape_i != shape_l:
            add(case.label, f"shape {_fmt_shape(shape_l)} differs from the image's {_fmt_shape(shape_i)}")
        elif image_geometry_ok:  # a broken image affine would make every label look displaced
            tol = AFFINE_TOLERANCE_VOXELS * min(voxel_sizes(image.affine))
            moved = _grid_displacement(image.affine, label.affine, shape_i)
            if not np.isfinite(moved) or moved > tol:
                add(case.label, f"affine differs from the image's: voxel grid displaced by up to {moved:.3g} mm "
                                f"(tolerance {tol:.2g} mm)")
    if read_data:
        _check_label_data(case.label, label, labels, add)
    return out


# --- header checks ------------------------------------------------------------------------------------

def _check_file(path: Path, add, geometry: bool, ct: bool) -> nib.Nifti1Image | None:
    """Header-level checks; returns the lazily loaded image when its shape is usable."""
    path = Path(path)
    if not path.is_file():
        add(path, "file not found")
        return None
    try:
        img = nib.load(str(path))
    except Exception:  # nibabel raises many types for files that are not NIfTI
        img = None
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        add(path, "unreadable: not a NIfTI file")
        return None
    shape = tuple(int(s) for s in img.shape)
    if len(shape) == 4 and shape[3] > 1:
        add(path, f"not 3D: shape {_fmt_shape(shape)} has {shape[3]} frames")
        return None
    if len(shape) not in (3, 4):
        add(path, f"not 3D: shape {_fmt_shape(shape)}")
        return None
    if min(shape) == 0:
        add(path, f"empty: shape {_fmt_shape(shape)}")
        return None
    if not path.name.endswith(".gz"):
        expected = int(img.header.get_data_offset()) + int(np.prod(shape)) * img.header.get_data_dtype().itemsize
        if path.stat().st_size < expected:
            add(path, "truncated: the file ends before its image data do")
            return None
    if not np.all(np.isfinite(img.affine)):
        add(path, "affine has non-finite values")
        return None
    if geometry:
        _check_geometry(path, img, add, ct)
    return img


def _check_geometry(path: Path, img: nib.Nifti1Image, add, ct: bool) -> None:
    # nibabel silently replaces zero or negative pixdim by 1 or its absolute value: check the raw header
    pixdim = tuple(float(v) for v in _raw_header(path, img)["pixdim"][1:4])
    if not all(np.isfinite(v) and v > 0 for v in pixdim):
        add(path, f"spacing {_fmt_spacing(pixdim)} mm: not positive")
        return
    affine = img.affine
    spacing = voxel_sizes(affine)
    where = f"spacing {_fmt_spacing(spacing)} mm"
    if not all(np.isfinite(s) and s > 0 for s in spacing):
        add(path, f"{where}: not positive")
        return
    if min(spacing) < SPACING_MIN_MM or max(spacing) > SPACING_MAX_MM:
        add(path, f"{where}: implausible (each axis must be {SPACING_MIN_MM:g}-{SPACING_MAX_MM:g} mm)")
        return
    directions = affine[:3, :3] / np.asarray(spacing)
    nearest = np.abs(directions).argmax(axis=0)  # patient axis (0 R-L, 1 A-P, 2 S-I) of each voxel axis
    if len(set(nearest.tolist())) != 3:
        add(path, "orientation: two voxel axes run along the same patient axis (degenerate affine)")
        return
    cosines = [abs(float(directions[:, i] @ directions[:, j])) for i, j in ((0, 1), (0, 2), (1, 2))]
    shear = 90.0 - float(np.degrees(np.arccos(min(1.0, max(cosines)))))
    if shear > SHEAR_MAX_DEG:
        add(path, f"orientation: sheared affine (voxel axes {shear:.1f}° from perpendicular)")
        return
    off = float(np.degrees(np.arccos(min(1.0, float(np.abs(directions).max(axis=0).min())))))
    if off > OBLIQUE_WARN_DEG:
        add(path, f"orientation: oblique (voxel axes up to {off:.1f}° off the patient axes; "
                  "reoriented to the nearest)", "warning")
    hdr = img.header
    if int(hdr["qform_code"]) > 0 and int(hdr["sform_code"]) > 0:
        moved = _grid_displacement(hdr.get_qform(), hdr.get_sform(), _shape3(img))
        tol = AFFINE_TOLERANCE_VOXELS * min(spacing)
        if moved > tol:
            add(path, f"orientation: qform and sform disagree by up to {moved:.3g} mm "
                      "(nibabel reads the sform, ITK the qform)", "warning")
    axial = int(np.where(nearest == 2)[0][0])
    slice_mm = spacing[axial]
    inplane = [spacing[i] for i in range(3) if i != axial]
    if slice_mm > SLICE_SUSPICIOUS_MM:
        add(path, f"{where}: suspicious slice spacing of {slice_mm:.3g} mm (over {SLICE_SUSPICIOUS_MM:g} mm)")
    elif slice_mm < SLICE_TO_INPLANE_MIN * min(inplane):
        add(path, f"{where}: suspicious slice spacing of {slice_mm:.3g} mm, under a quarter of the in-plane "
                  f"{min(inplane):.3g} mm")
    elif ct and max(inplane) > INPLANE_SQUARE_RATIO * min(inplane):
        add(path, f"{where}: unusual in-plane spacing {min(inplane):.3g} x {max(inplane):.3g} mm "
                  "(CT pixels are square)", "warning")


# --- data checks --------------------------------------------------------------------------------------

_READ_ERRORS = (OSError, EOFError, zlib.error, gzip.BadGzipFile, ValueError)


def _read(path: Path, img: nib.Nifti1Image, add) -> np.ndarray | None:
    try:
        return np.asanyarray(img.dataobj)
    except (zlib.error, gzip.BadGzipFile) as exc:  # damaged bytes inside the gzip stream, not a short file
        add(path, f"corrupted: the compressed image data do not decompress ({str(exc).splitlines()[0][:80]})")
        return None
    except _READ_ERRORS:
        add(path, "truncated: the file ends before its image data do")
        return None


def _check_image_data(path: Path, img: nib.Nifti1Image, add) -> None:
    arr = _read(path, img, add)
    if arr is None or not np.issubdtype(arr.dtype, np.floating):
        return
    bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
    if bad:
        add(path, f"{bad} non-finite voxel{'s' * (bad != 1)} (NaN or Inf)")


def _check_label_data(path: Path, img: nib.Nifti1Image, labels: list[int], add) -> None:
    arr = _read(path, img, add)
    if arr is None:
        return
    if np.issubdtype(arr.dtype, np.floating):
        finite = np.isfinite(arr)
        if not finite.all():
            bad = int(arr.size - np.count_nonzero(finite))
            add(path, f"{bad} non-finite voxel{'s' * (bad != 1)} (NaN or Inf)")
            return
        fractional = arr[arr != np.round(arr)]
        if fractional.size:
            add(path, f"label values are not integers (e.g. {float(fractional.flat[0]):.4g})")
            return
    values = _present_values(arr)
    unknown = sorted(set(values) - set(labels))
    if unknown:
        shown = ", ".join(str(v) for v in unknown[:6]) + (", ..." if len(unknown) > 6 else "")
        add(path, f"label value{'s' * (len(unknown) != 1)} {shown} not in the label table ({_fmt_table(labels)})")


def _present_values(arr: np.ndarray) -> list[int]:
    """The distinct values of a label array; bincount when they are small non-negative integers (fast)."""
    lo, hi = int(arr.min()), int(arr.max())
    if lo >= 0 and hi < 65536:
        counts = np.bincount(arr.astype(np.int64 if hi > 255 else np.uint8, copy=False).ravel(), minlength=hi + 1)
        return [int(v) for v in np.flatnonzero(counts)]
    return [int(v) for v in np.unique(arr)]


# --- helpers ------------------------------------------------------------------------------------------

def _raw_header(path: Path, img: nib.Nifti1Image) -> nib.Nifti1Header:
    """The header as stored, without the fixes nibabel applies on load."""
    with ImageOpener(str(path)) as f:
        return type(img.header).from_fileobj(f, check=False)


def _shape3(img: nib.Nifti1Image) -> tuple[int, int, int]:
    return tuple(int(s) for s in img.shape[:3])


def _grid_displacement(a: np.ndarray, b: np.ndarray, shape: tuple[int, int, int]) -> float:
    """How far (mm) the corners of a voxel grid of `shape` move between affines `a` and `b`."""
    corners = np.array([[i, j, k, 1.0] for i in (0, shape[0] - 1) for j in (0, shape[1] - 1)
                        for k in (0, shape[2] - 1)]).T
    diff = (np.asarray(a, dtype=np.float64) @ corners - np.asarray(b, dtype=np.float64) @ corners)[:3]
    return float(np.sqrt((diff ** 2).sum(axis=0)).max())


def _fmt_shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


def _fmt_spacing(spacing: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{s:.3g}" for s in spacing) + ")"


def _fmt_table(labels: list[int]) -> str:
    if labels and labels == list(range(labels[0], labels[-1] + 1)):
        return f"{labels[0]}-{labels[-1]}" if len(labels) > 1 else str(labels[0])
    return ", ".join(str(v) for v in labels)
