"""Writing raw datasets in a given layout (used by `locseg synth` and by tests' fixture trees)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import yaml
from nibabel import orientations as nio

from ..io.atomic import safe_join, validate_case_id, write_json, write_text
from ..io.nifti import save_volume
from .tables import LABELS_OVERRIDE_FILE


class DatasetWriter:
    """Writes cases of one dataset in a layout; `finish()` writes the layout's metadata files.

    Layouts: `nnunet` (nnU-Net v2 raw), `btcv`, `amos22`, `kits23`, `msd`, `folder` (see
    docs/datasets.md). Each is an entry of `LAYOUT_WRITERS`: `files(case_id)` -> relative paths,
    `finish(writer, case_ids)` writes the metadata files, optional `save(path, array, affine)`
    stores a volume the way that layout does (KiTS23: axial axis first).
    """

    def __init__(self, root: str | Path, labels: dict[int, str], layout: str = "nnunet", name: str = "Synthetic",
                 modality: str = "CT", class_groups: dict[str, tuple[int, ...]] | None = None):
        if layout not in LAYOUT_WRITERS:
            raise ValueError(f"cannot write layout {layout!r} (known: {', '.join(LAYOUT_WRITERS)})")
        self.root = Path(root)
        self.labels = dict(sorted(labels.items()))
        self.layout = layout
        self.name = name
        self.modality = modality
        self.class_groups = dict(class_groups or {})
        self.case_ids: list[str] = []

    def class_groups_json(self) -> dict[str, dict[str, list[str]]]:
        """dataset.json's optional "class_groups" entry (label names), empty when there are none."""
        if not self.class_groups:
            return {}
        return {"class_groups": {g: [self.labels[v] for v in vals] for g, vals in self.class_groups.items()}}

    def case_files(self, case_id: str) -> dict[str, str]:
        """Relative paths of a case's image and label files in this layout."""
        validate_case_id(case_id)
        return LAYOUT_WRITERS[self.layout]["files"](case_id)

    def write_case(self, case_id: str, image: np.ndarray, label: np.ndarray | None, affine: np.ndarray) -> dict[str, str]:
        files = self.case_files(case_id)
        save = LAYOUT_WRITERS[self.layout].get("save", save_volume)
        save(safe_join(self.root, files["image"]), image, affine)
        if label is not None:
            save(safe_join(self.root, files["label"]), label.astype(np.uint8), affine)
        self.case_ids.append(case_id)
        return files

    def finish(self, case_ids: list[str] | None = None) -> None:
        LAYOUT_WRITERS[self.layout]["finish"](self, sorted(case_ids if case_ids is not None else self.case_ids))


def _nnunet_files(cid: str) -> dict[str, str]:
    return {"image": f"imagesTr/{cid}_0000.nii.gz", "label": f"labelsTr/{cid}.nii.gz"}


def _nnunet_finish(w: DatasetWriter, case_ids: list[str]) -> None:
    write_json(w.root / "dataset.json", {
        "name": w.name,
        "channel_names": {"0": w.modality},
        "labels": {name: value for value, name in w.labels.items()},
        "numTraining": len(case_ids),
        "file_ending": ".nii.gz",
        **w.class_groups_json(),
    })


def _write_labels_override(w: DatasetWriter) -> None:
    """BTCV and KiTS23 have no label-table file: the readers take `labels.json` over their built-in table."""
    write_json(w.root / LABELS_OVERRIDE_FILE, {str(v): name for v, name in w.labels.items()})


def _btcv_files(cid: str) -> dict[str, str]:
    return {"image": f"RawData/Training/img/img{cid}.nii.gz", "label": f"RawData/Training/label/label{cid}.nii.gz"}


def _btcv_finish(w: DatasetWriter, case_ids: list[str]) -> None:
    _write_labels_override(w)


def _decathlon_files(cid: str) -> dict[str, str]:
    return {"image": f"imagesTr/{cid}.nii.gz", "label": f"labelsTr/{cid}.nii.gz"}


def _decathlon_json(w: DatasetWriter, case_ids: list[str], name: str) -> None:
    write_json(w.root / "dataset.json", {
        "name": name,
        "description": f"{w.name}, written by locseg in this layout",
        "tensorImageSize": "3D",
        "modality": {"0": w.modality},
        "labels": {str(v): n for v, n in w.labels.items()},
        "numTraining": len(case_ids),
        "numTest": 0,
        "training": [{"image": f"./imagesTr/{c}.nii.gz", "label": f"./labelsTr/{c}.nii.gz"} for c in case_ids],
        "test": [],
        **w.class_groups_json(),
    })


def _amos_finish(w: DatasetWriter, case_ids: list[str]) -> None:
    # "AMOS" in the name is what tells this decathlon-style layout from MSD's (see layouts._is_amos).
    _decathlon_json(w, case_ids, w.name if "amos" in w.name.lower() else f"AMOS22 layout: {w.name}")


def _msd_finish(w: DatasetWriter, case_ids: list[str]) -> None:
    _decathlon_json(w, case_ids, w.name)


def _kits_files(cid: str) -> dict[str, str]:
    return {"image": f"dataset/{cid}/imaging.nii.gz", "label": f"dataset/{cid}/segmentation.nii.gz"}


KITS23_AXCODES = ("I", "P", "L")


def save_kits23_volume(path: str | Path, array: np.ndarray, affine: np.ndarray) -> None:
    """Store like KiTS23 does: axial axis first (axcodes I,P,L), the affine in the sform only
    (qform_code 0, sform_code 2). The array is reoriented through the affine, so the written file
    shows the same anatomy at the same world positions."""
    transform = nio.ornt_transform(nio.io_orientation(affine), nio.axcodes2ornt(KITS23_AXCODES))
    out = np.ascontiguousarray(nio.apply_orientation(np.asarray(array), transform))
    out_affine = np.asarray(affine, dtype=np.float64) @ nio.inv_ornt_aff(transform, np.asarray(array).shape)
    header = nib.Nifti1Header()
    header["qform_code"] = 0
    header["sform_code"] = 2
    save_volume(path, out, out_affine, header=header)


def _kits_finish(w: DatasetWriter, case_ids: list[str]) -> None:
    _write_labels_override(w)


def _folder_files(cid: str) -> dict[str, str]:
    return {"image": f"images/{cid}.nii.gz", "label": f"labels/{cid}.nii.gz"}


def _folder_finish(w: DatasetWriter, case_ids: list[str]) -> None:
    table = {"name": w.name, "modality": w.modality, "labels": {int(v): n for v, n in w.labels.items()}}
    write_text(w.root / "labels.yaml", yaml.safe_dump(table, sort_keys=False))


LAYOUT_WRITERS: dict[str, dict] = {
    "nnunet": {"files": _nnunet_files, "finish": _nnunet_finish},
    "btcv": {"files": _btcv_files, "finish": _btcv_finish},
    "amos22": {"files": _decathlon_files, "finish": _amos_finish},
    "msd": {"files": _decathlon_files, "finish": _msd_finish},
    "kits23": {"files": _kits_files, "finish": _kits_finish, "save": save_kits23_volume},
    "folder": {"files": _folder_files, "finish": _folder_finish},
}
