"""Builders of the bad-input corpus: each takes a fresh copy of a tiny valid world and breaks one thing.

A world is a raw nnU-Net dataset (`raw`), its `preprocess` output (`pre`) and a 2-iteration `train`
output (`run`); every volume has a few hundred voxels, so the whole corpus runs in seconds.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np

IMAGE = "raw/imagesTr/case_000_0000.nii.gz"  # stored RAS (x, y, z), spacing 1.5, 1.5, 2.0
LABEL = "raw/labelsTr/case_000.nii.gz"


def rewrite(path: Path, array: np.ndarray | None = None, affine: np.ndarray | None = None,
            **header_fields) -> Path:
    """Save `path` again with another array / affine / raw header fields."""
    img = nib.load(str(path))
    arr = np.asanyarray(img.dataobj) if array is None else array
    aff = img.affine if affine is None else affine
    out = nib.Nifti1Image(arr, aff)
    out.set_qform(aff, code=1)
    out.set_sform(aff, code=1)
    for k, v in header_fields.items():
        out.header[k] = v
    nib.save(out, str(path))
    return path


def voxels(path: Path) -> np.ndarray:
    return np.asarray(nib.load(str(path)).dataobj)


# ---- raw images and labels ------------------------------------------------------------------

def truncated_image(w: Path) -> Path:
    p = w / IMAGE
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return p


def corrupted_image(w: Path) -> Path:
    """A gzip stream whose compressed bytes are flipped in the middle (CRC / inflate error)."""
    p = w / IMAGE
    raw = gzip.decompress(p.read_bytes())
    comp = bytearray(gzip.compress(raw))
    for i in range(len(comp) // 2, len(comp) // 2 + 64):
        comp[i] ^= 0xFF
    p.write_bytes(bytes(comp))
    return p


def not_nifti_image(w: Path) -> Path:
    p = w / IMAGE
    p.write_text("this is a text file with a NIfTI name\n")
    return p


def image_2d(w: Path) -> Path:
    return rewrite(w / IMAGE, voxels(w / IMAGE)[:, :, 0])


def image_4d(w: Path) -> Path:
    a = voxels(w / IMAGE)
    return rewrite(w / IMAGE, np.stack([a, a], axis=-1))


def nan_voxels(w: Path) -> Path:
    a = voxels(w / IMAGE).astype(np.float32)
    a[1, 2, 3] = np.nan
    return rewrite(w / IMAGE, a)


def inf_voxels(w: Path) -> Path:
    a = voxels(w / IMAGE).astype(np.float32)
    a[1, 2, 3], a[0, 0, 0] = np.inf, -np.inf
    return rewrite(w / IMAGE, a)


def _patch_pixdim(path: Path, index: int, value: float) -> Path:
    """Write `value` into the stored header's pixdim[index] (nibabel would silently fix it on save)."""
    import struct

    raw = bytearray(gzip.decompress(path.read_bytes()))
    struct.pack_into("<f", raw, 76 + 4 * index, value)
    path.write_bytes(gzip.compress(bytes(raw)))
    return path


def zero_spacing(w: Path) -> Path:
    return _patch_pixdim(w / IMAGE, 3, 0.0)


def negative_spacing(w: Path) -> Path:
    return _patch_pixdim(w / IMAGE, 1, -1.5)


def label_shape_mismatch(w: Path) -> Path:
    return rewrite(w / LABEL, voxels(w / LABEL)[:-2])


def label_affine_mismatch(w: Path) -> Path:
    aff = nib.load(str(w / LABEL)).affine.copy()
    aff[:3, 3] += 5.0
    return rewrite(w / LABEL, affine=aff)


def float_labels(w: Path) -> Path:
    a = voxels(w / LABEL).astype(np.float32)
    a[a == 1] = 0.5
    return rewrite(w / LABEL, a)


def label_outside_table(w: Path) -> Path:
    a = voxels(w / LABEL).copy()
    a[a == 2] = 7
    return rewrite(w / LABEL, a)


def empty_data_folder(w: Path) -> Path:
    p = w / "empty"
    p.mkdir()
    return p


def dataset_json_missing_key(w: Path) -> Path:
    p = w / "raw/dataset.json"
    dj = json.loads(p.read_text())
    del dj["labels"]
    p.write_text(json.dumps(dj))
    return p


def dataset_json_not_json(w: Path) -> Path:
    p = w / "raw/dataset.json"
    p.write_text(p.read_text()[:-20])
    return p


def decathlon_path_escapes(w: Path) -> Path:
    """An MSD-style dataset.json whose image path points outside the dataset."""
    root = w / "msd"
    (root / "imagesTr").mkdir(parents=True)
    shutil.copy(w / IMAGE, root / "imagesTr/case_000.nii.gz")
    (root / "dataset.json").write_text(json.dumps({
        "name": "Task01_Tiny", "modality": {"0": "CT"}, "labels": {"0": "background", "1": "a"},
        "training": [{"image": "./imagesTr/../../raw/imagesTr/case_000_0000.nii.gz"}]}))
    return root


# ---- presets -------------------------------------------------------------------------------

def preset_unknown_key(w: Path) -> Path:
    p = w / "bad.yaml"
    p.write_text("preprocess:\n  spacing: [2, 2, 2]\n  spacnig: [1, 1, 1]\n")
    return p


def preset_wrong_type(w: Path) -> Path:
    p = w / "bad.yaml"
    p.write_text("spacing: fast\n")
    return p


def preset_runs_code(w: Path) -> Path:
    """YAML that would run a shell command under yaml.load (unsafe); safe_load must refuse the tag."""
    p = w / "bad.yaml"
    p.write_text(f"spacing: !!python/object/apply:os.system ['touch {w / 'PWNED'}']\n")
    return p


# ---- bpreg files ---------------------------------------------------------------------------

def _bpreg_dir(w: Path) -> Path:
    d = w / "bpreg"
    d.mkdir()
    return d


def bpreg_not_json(w: Path) -> Path:
    p = _bpreg_dir(w) / "case_000.json"
    p.write_text('{"cleaned slice scores": [1, 2, ')
    return p


def bpreg_missing_key(w: Path) -> Path:
    p = _bpreg_dir(w) / "case_000.json"
    p.write_text(json.dumps({"unprocessed slice scores": [1.0, 2.0], "z": [0, 2]}))
    return p


# ---- stage outputs used as inputs --------------------------------------------------------------

def _edit_manifest(folder: Path, edit) -> Path:
    p = folder / "manifest.json"
    m = json.loads(p.read_text())
    edit(m)
    p.write_text(json.dumps(m))
    return p


def pre_newer_schema(w: Path) -> Path:
    return _edit_manifest(w / "pre", lambda m: m.update(schema=99))


def pre_case_id_with_separator(w: Path) -> Path:
    def edit(m):
        m["cases"]["../evil"] = m["cases"].pop("case_000")
    return _edit_manifest(w / "pre", edit)


def pre_file_escapes(w: Path) -> Path:
    def edit(m):
        m["cases"]["case_000"]["files"]["image"] = "../raw/imagesTr/case_000_0000.nii.gz"
    _edit_manifest(w / "pre", edit)
    return w / "pre"


def empty_pre_folder(w: Path) -> Path:
    p = w / "nopre"
    p.mkdir()
    return p


def run_newer_schema(w: Path) -> Path:
    return _edit_manifest(w / "run", lambda m: m.update(schema=2))


def checkpoint_of_another_model(w: Path) -> Path:
    import torch

    from locseg_cli.config import resolve_config
    from locseg_cli.models import build_model
    from locseg_cli.training import TrainConfig

    cfg = resolve_config(TrainConfig, None, {"model": "coordconv", "features": "4,4,8,8,16,4", "out_channels": 3})
    p = w / "run/checkpoints/last.pt"  # the checkpoint infer loads by default
    torch.save({"model": build_model(cfg).state_dict(), "iteration": 1}, p)
    return p


class _RunsCode:
    """Pickles into a call of os.system: loading it with weights_only=False would run the command."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def checkpoint_runs_code(w: Path) -> Path:
    import torch

    p = w / "run/checkpoints/last.pt"  # the checkpoint infer loads by default
    torch.save({"model": _RunsCode(w / "PWNED")}, p)
    return p


def images_not_nifti(w: Path) -> Path:
    d = w / "images"
    d.mkdir()
    shutil.copy(w / IMAGE, d / "good.nii.gz")
    (d / "bad.nii.gz").write_bytes(b"\x00" * 400)
    return d / "bad.nii.gz"


def images_truncated(w: Path) -> Path:
    d = w / "images"
    d.mkdir()
    shutil.copy(w / IMAGE, d / "a_good.nii.gz")
    data = (w / IMAGE).read_bytes()
    (d / "b_cut.nii.gz").write_bytes(data[: len(data) // 2])
    return d / "b_cut.nii.gz"


def preds_not_nifti(w: Path) -> Path:
    d = w / "preds"
    d.mkdir()
    (d / "case_000.nii.gz").write_text("not an image\n")
    return d / "case_000.nii.gz"


# ---- what users give `infer --data` and `infer --run` ------------------------------------------

def _dicom_case(folder: Path, **kw) -> Path:
    """A synthetic case written as a DICOM series (2 mm slices)."""
    from synthdata import make_case, write_dicom_series

    img, _ = make_case((12, 10, 9), seed=4)
    return write_dicom_series(folder, img.transpose(2, 1, 0).astype(np.float32), np.diag([1.5, 1.5, 2.0, 1.0]), **kw)


def dicom_two_series(w: Path) -> Path:
    """Two series exported into one folder."""
    d = _dicom_case(w / "dicom" / "scan", series_uid="1.2.9.1")
    _dicom_case(d, series_uid="1.2.9.2", prefix="B")
    return d


def dicom_missing_slice(w: Path) -> Path:
    """A series with its fourth slice missing (IM015838.dcm and IM031676.dcm are slices 2 and 4)."""
    return _dicom_case(w / "dicom" / "scan", skip=(3,))


def not_an_image(w: Path) -> Path:
    p = w / "report.txt"
    p.write_text("a radiology report, not a scan\n")
    return p


def run_other_spacing(w: Path) -> Path:
    """A second run whose preprocessing resampled to another spacing (its manifest says so)."""
    other = w / "run-b"
    shutil.copytree(w / "run", other)
    _edit_manifest(other, lambda m: m["extra"]["preprocess"]["extra"].update(spacing=[3.0, 2.0, 2.0]))
    return other
