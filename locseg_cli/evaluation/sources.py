"""Finding prediction and reference label files, whatever folder they come in."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import LocsegError
from ..io.atomic import validate_case_id
from ..io.manifest import MANIFEST, Manifest, case_path, read_manifest
from ..io.nifti import Volume, is_nifti, load_volume, strip_nifti_suffix

PREDICTION_STAGES = ("infer", "postprocess")


@dataclass
class LabelFiles:
    """Label maps of a set of cases: case id -> file, with the label names when the source knows them."""

    root: Path
    files: dict[str, Path]
    labels: dict[int, str] | None = None
    manifest: Manifest | None = None
    layout: str = "folder"
    regions: dict[str, list[int]] = field(default_factory=dict)  # evaluation regions the dataset defines
    class_groups: dict[str, list[int]] = field(default_factory=dict)  # classes the dataset summarises together


def _plain_folder(root: Path, what: str) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for p in sorted(root.iterdir()):
        if p.is_file() and is_nifti(p.name) and not p.name.startswith("."):
            cid = validate_case_id(strip_nifti_suffix(p.name), p)
            files[cid] = p
    if not files:
        raise LocsegError(f"no {what} here (expected NIfTI files or a locseg manifest)", root)
    return files


def open_predictions(root: str | Path) -> LabelFiles:
    """An `infer`/`postprocess` output (manifest) or a plain folder of `{case}.nii[.gz]` label maps."""
    root = Path(root)
    if not root.is_dir():
        raise LocsegError("not a folder", root)
    if not (root / MANIFEST).is_file():
        return LabelFiles(root, _plain_folder(root, "predictions"))
    m = read_manifest(root, PREDICTION_STAGES)
    files = {}
    for cid, entry in m.cases.items():
        rel = (entry.get("files") or {}).get("prediction")
        if not rel:
            raise LocsegError(f"case {cid!r} has no prediction file in the manifest", root / MANIFEST)
        files[cid] = case_path(root, rel)
    if not files:
        raise LocsegError("the manifest lists no cases", root / MANIFEST)
    names = (m.extra or {}).get("labels")
    labels = {int(k): str(v) for k, v in names.items()} if isinstance(names, dict) else None
    return LabelFiles(root, files, labels, m, m.stage)


def open_references(root: str | Path) -> LabelFiles:
    """Reference labels: a raw dataset (any layout `open_dataset` reads) or a plain folder of label files."""
    from ..datasets import open_dataset

    root = Path(root)
    if not root.is_dir():
        raise LocsegError("not a folder", root)
    ds = open_dataset(root)
    if ds.layout == "images":  # a plain folder: its files are the label maps themselves
        return LabelFiles(root, {c.case_id: c.image for c in ds.cases}, None, None, "folder")
    files = {c.case_id: c.label for c in ds.labelled}
    if not files:
        raise LocsegError(f"this {ds.layout} dataset has no labelled cases", root)
    regions = {str(k): [int(v) for v in vals] for k, vals in ds.regions.items()}
    groups = {str(k): [int(v) for v in vals] for k, vals in ds.class_groups.items()}
    return LabelFiles(root, files, dict(ds.labels), None, ds.layout, regions, groups)


def load_labels(path: Path) -> Volume:
    """A label map as an integer array with its affine; non-integer values are a user error."""
    vol = load_volume(path, dtype=None)
    arr = np.asarray(vol.array)
    if not np.issubdtype(arr.dtype, np.integer):
        rounded = np.rint(arr)
        if not np.array_equal(rounded, arr):
            raise LocsegError("label map holds non-integer values", path)
        arr = rounded.astype(np.int32)
    vol.array = arr
    return vol


def check_same_grid(pred: Volume, ref: Volume, pred_path: Path, ref_path: Path) -> None:
    """Predictions must lie on the reference's voxel grid (shape and affine)."""
    if pred.array.shape != ref.array.shape:
        raise LocsegError(f"shape {tuple(pred.array.shape)} differs from the reference's "
                          f"{tuple(ref.array.shape)} ({ref_path})", pred_path)
    if not np.allclose(pred.affine, ref.affine, rtol=1e-5, atol=1e-3):
        worst = float(np.abs(pred.affine - ref.affine).max())
        raise LocsegError(f"affine differs from the reference's by up to {worst:.4g} ({ref_path}); "
                          "predictions must be in the raw image geometry", pred_path)
