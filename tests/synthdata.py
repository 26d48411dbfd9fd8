"""Small synthetic CT-like cases and raw datasets that tests write for themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np

LABELS = {0: "background", 1: "upper", 2: "lower"}


def axial_first_affine(spacing=(2.0, 1.0, 1.0), origin=(10.0, -20.0, 30.0)) -> np.ndarray:
    """KiTS23-like: array axis 0 is axial toward Inferior, axis 1 toward Posterior, 2 toward Left."""
    aff = np.eye(4)
    aff[:3, :3] = np.array([[0, 0, -spacing[2]], [0, -spacing[1], 0], [-spacing[0], 0, 0]])
    aff[:3, 3] = origin
    return aff


def make_case(shape_zyx=(24, 20, 18), seed=0, spacing=(2.0, 1.5, 1.5)):
    """A small CT-like volume in canonical (z, y, x) order: a body, an upper and a lower blob."""
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape_zyx], indexing="ij")
    body = (y**2 + x**2) < 0.8
    img = np.where(body, 40.0, -1000.0) + rng.normal(0, 5, shape_zyx)
    lab = np.zeros(shape_zyx, np.uint8)
    up = ((z - 0.45) ** 2 + y**2 + x**2) < 0.12
    low = ((z + 0.45) ** 2 + y**2 + x**2) < 0.12
    lab[up], lab[low] = 1, 2
    img[up | low] = 150.0
    return img.astype(np.int16), lab


def canonical_affine(spacing=(2.0, 1.5, 1.5)) -> np.ndarray:
    """Array (z, y, x) with axcodes S, A, R."""
    aff = np.zeros((4, 4))
    aff[0, 2], aff[1, 1], aff[2, 0], aff[3, 3] = spacing[2], spacing[1], spacing[0], 1
    return aff


def write_dataset(root: Path, n: int = 4, axial_first: tuple[int, ...] = (1,), shape=(24, 20, 18),
                  class_groups: dict[str, tuple[int, ...]] | None = None, layout: str = "nnunet",
                  labels: dict[int, str] | None = None) -> Path:
    """A raw dataset of `n` tiny cases (nnU-Net v2 layout unless `layout`); cases in `axial_first` are
    stored KiTS23-style."""
    from locseg_cli.datasets.writers import DatasetWriter

    w = DatasetWriter(root, labels or LABELS, layout=layout, name="Tiny", class_groups=class_groups)
    for i in range(n):
        img, lab = make_case(shape, seed=i)
        if i in axial_first:
            # canonical (S, A, R) -> (I, P, L): flip every axis; axis order already z first
            img, lab = img[::-1, ::-1, ::-1].copy(), lab[::-1, ::-1, ::-1].copy()
            aff = axial_first_affine((2.0, 1.5, 1.5))
        else:
            # store as (x, y, z) RAS, the usual NIfTI order
            img, lab = img.transpose(2, 1, 0).copy(), lab.transpose(2, 1, 0).copy()
            aff = np.diag([1.5, 1.5, 2.0, 1.0])
        w.write_case(f"case_{i:03d}", img, lab, aff)
    w.finish()
    return root


# A seconds-long training: narrow widths, small patches, 4 iterations, no validation.
TINY_TRAIN = {"model": "locbam", "features": "4,4,8,8,16,4", "patch_size": "16,16,32", "batch_size": 4, "epochs": 1,
              "iterations_per_epoch": 4, "val_every": 0, "workers": 0, "locbam_reduction": 4, "threads": 1}


def write_tiny_run(root: Path, **train_options) -> Path:
    """A raw dataset, its preprocessing (2 mm, 2 folds) and a seconds-long LocBAM training under `root`.

    Returns the run folder (`root/run`); `train_options` override the tiny defaults (TrainConfig keys).
    """
    from locseg_cli.config import resolve_config
    from locseg_cli.preprocessing import PreprocessConfig, preprocess
    from locseg_cli.training import TrainConfig, train

    write_dataset(root / "raw", n=4)
    preprocess(root / "raw", root / "pre", resolve_config(PreprocessConfig, None, {"spacing": "2,2,2", "folds": 2}))
    train(root / "pre", root / "run", resolve_config(TrainConfig, None, {**TINY_TRAIN, **train_options}))
    return root / "run"


def rotation(axis: int, degrees: float) -> np.ndarray:
    """A 3x3 rotation about world axis `axis` (0 x, 1 y, 2 z)."""
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    a, b = [i for i in range(3) if i != axis]
    r = np.eye(3)
    r[a, a], r[a, b], r[b, a], r[b, b] = c, -s, s, c
    return r


def write_dicom_series(folder: Path, array: np.ndarray, affine: np.ndarray, series_uid: str | None = None,
                       study_uid: str | None = None, skip: tuple[int, ...] = (), reverse_numbers: bool = False,
                       prefix: str = "IM") -> Path:
    """Write `array` ((column, row, slice), HU) with RAS `affine` as a CT series of single-slice files, as a
    scanner export would: positions and orientation in DICOM's LPS patient coordinates, int16 pixels with a
    rescale intercept, file names that do not follow the slice order. `skip`: slices left out (a gap);
    `reverse_numbers`: InstanceNumber counts from the last slice (head-to-feet numbering); `prefix` starts each
    file name (another one lets a second series land in the same folder)."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine
    col_step, row_step = np.linalg.norm(lps[:3, 0]), np.linalg.norm(lps[:3, 1])
    orientation = [*(lps[:3, 0] / col_step), *(lps[:3, 1] / row_step)]
    series_uid, study_uid = series_uid or generate_uid(), study_uid or generate_uid()
    frame_uid = generate_uid()
    n = array.shape[2]
    for k in range(n):
        if k in skip:
            continue
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.Modality, ds.PatientID, ds.PatientName, ds.PatientSex, ds.PatientBirthDate = "CT", "P1", "Test^P", "O", ""
        ds.StudyDate, ds.StudyTime, ds.AccessionNumber, ds.ReferringPhysicianName, ds.StudyID = \
            "20250101", "120000", "A1", "", "1"
        ds.Manufacturer, ds.SeriesNumber, ds.PositionReferenceIndicator = "test", 1, ""
        ds.InstanceNumber = n - k if reverse_numbers else k + 1
        ds.ImagePositionPatient = [float(v) for v in lps[:3, :3] @ [0, 0, k] + lps[:3, 3]]
        ds.ImageOrientationPatient = [float(v) for v in orientation]
        ds.PixelSpacing = [float(row_step), float(col_step)]
        ds.SliceThickness = float(np.linalg.norm(lps[:3, 2]))
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = array.shape[1], array.shape[0]
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -1024.0, 1.0, "HU"
        ds.PixelData = np.ascontiguousarray((array[:, :, k].T + 1024).astype(np.int16)).tobytes()
        ds.save_as(folder / f"{prefix}{(k * 7919) % 100003:06d}.dcm", enforce_file_format=True)
    return folder
