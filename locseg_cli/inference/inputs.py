"""What `infer --data` accepts, as users have it: a dataset, a folder of NIfTI files, one NIfTI file,
one DICOM series folder, or a folder of DICOM series folders.

Locating the inputs is cheap (file names and the 4-byte DICOM magic, no pydicom): an up-to-date rerun
decides from their fingerprints alone. Reading a DICOM series' headers and checking its grid happens
in `check_inputs`, before the first prediction, so a bad series stops the stage with nothing written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..datasets import CaseRef, Dataset, detect_layout, open_dataset
from ..datasets.base import layout_detects
from ..errors import LocsegError
from ..io.dicom import DicomSeries, dicom_files, has_dicom_magic, is_dicom_folder, load_series, scan_series
from ..io.manifest import file_fingerprint, folder_fingerprint
from ..io.nifti import Volume, is_nifti, load_header, load_volume, strip_nifti_suffix
from ..progress import Progress

if TYPE_CHECKING:
    from ..datasets.integrity import IntegrityReport


@dataclass(frozen=True)
class ImageInput:
    """One image to predict: a NIfTI file, or a DICOM series folder (`series` once checked)."""

    case_id: str
    path: Path
    dicom: bool = False
    series: DicomSeries | None = None

    def fingerprint(self) -> list[str]:
        """What decides whether this case's prediction is current (size and time of each file)."""
        files = dicom_files(self.path) if self.dicom else [self.path]
        return [file_fingerprint(f) for f in files]

    def load(self) -> Volume:
        if not self.dicom:
            return load_volume(self.path)
        if self.series is None:
            raise ValueError(f"DICOM input {self.case_id!r} was not checked (check_inputs)")
        return load_series(self.series)

    def voxels(self) -> float:
        """Voxels of the raw grid, from the header."""
        shape = self.series.shape if self.series is not None else load_header(self.path).shape[:3]
        return float(np.prod(shape))


def _case_id(name: str) -> str:
    """A file or folder name as a case id (file names): other characters become `_`."""
    cid = re.sub(r"[^A-Za-z0-9_.-]", "_", name).lstrip(".")
    return cid or "case"


def _nifti_case_id(name: str) -> str:
    stem = strip_nifti_suffix(name)
    return _case_id(stem[:-5] if stem.endswith("_0000") else stem)


def open_inputs(data: str | Path, layout: str | None = None) -> list[ImageInput]:
    """The images under `data`; `layout`, the run's dataset layout, is used where it recognises `data`."""
    data = Path(data)
    if data.is_file():
        if is_nifti(data.name):
            return [ImageInput(_nifti_case_id(data.name), data)]
        if has_dicom_magic(data):
            raise LocsegError(f"a single DICOM file: give the folder of its series (--data {data.parent})", data)
        raise LocsegError("not an image: give a NIfTI file (.nii, .nii.gz), a folder of them, a dataset "
                          "or a DICOM series folder", data)
    if not data.is_dir():
        raise LocsegError("not found", data)
    if is_dicom_folder(data):
        return [ImageInput(_case_id(data.name), data, dicom=True)]
    if layout and layout_detects(data, layout):
        return _dataset_inputs(open_dataset(data, layout))
    series = [d for d in sorted(data.iterdir()) if d.is_dir() and not d.name.startswith(".") and is_dicom_folder(d)]
    try:
        return _dataset_inputs(open_dataset(data, detect_layout(data)))
    except LocsegError:
        if not series:
            raise
    inputs = [ImageInput(_case_id(d.name), d, dicom=True) for d in series]
    ids = [i.case_id for i in inputs]
    twice = sorted({c for c in ids if ids.count(c) > 1})
    if twice:
        raise LocsegError(f"series folders whose names give the same case id {twice[0]!r}: rename one", data)
    return inputs


def _dataset_inputs(ds: Dataset) -> list[ImageInput]:
    return [ImageInput(c.case_id, c.image) for c in ds.cases]


def check_inputs(data: Path, inputs: list[ImageInput], progress: Progress) -> list[ImageInput]:
    """Every image readable before the first prediction (a bad one stops nothing half-done): the first
    problem of `inputs_report` as one error; the returned inputs carry their DICOM series for reading."""
    report, checked = inputs_report(data, inputs, progress)
    if report.errors:
        first, n = report.errors[0], len(report.errors)
        more = f" (and {n - 1} more problem{'s' * (n > 2)}: see `locseg check`)" if n > 1 else ""
        raise LocsegError(first.message + more, first.path)
    return checked


def inputs_report(data: Path, inputs: list[ImageInput], progress: Progress, workers: int = 1,
                  read_data: bool = True) -> tuple[IntegrityReport, list[ImageInput]]:
    """Every problem of the images, as `locseg check` lists a dataset's: NIfTI files through the integrity
    check (headers, and voxels with `read_data`), DICOM series through their headers and grid
    (`scan_series`). Also the inputs, each DICOM one carrying its scanned series (none where it failed)."""
    from ..datasets.integrity import IntegrityReport, Problem, check_dataset

    nifti = [CaseRef(i.case_id, i.path) for i in inputs if not i.dicom]
    report = IntegrityReport([], data_checked=read_data)
    if nifti:
        report = check_dataset(Dataset(data, "images", {0: "background"}, nifti), progress=progress, workers=workers,
                               read_data=read_data)
    checked = []
    for i in inputs:
        if i.dicom:
            try:
                i = ImageInput(i.case_id, i.path, True, scan_series(i.path))
            except LocsegError as exc:
                report.problems.append(Problem(i.case_id, exc.path or str(i.path), exc.message))
        checked.append(i)
    report.case_ids = [i.case_id for i in inputs]
    return report, checked


def data_fingerprint(data: Path) -> str:
    """The fingerprint of `--data`, a folder or one file."""
    return file_fingerprint(data) if data.is_file() else folder_fingerprint(data)
