"""Writing raw datasets in a given layout (used by `locseg synth` and by tests' fixture trees)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io.atomic import safe_join, validate_case_id, write_json
from ..io.nifti import save_volume


class DatasetWriter:
    """Writes cases of one dataset in a layout; `finish()` writes the layout's metadata files.

    Layouts: `nnunet` (nnU-Net v2 raw). Other layouts register themselves in `LAYOUT_WRITERS`.
    """

    def __init__(self, root: str | Path, labels: dict[int, str], layout: str = "nnunet", name: str = "Synthetic",
                 modality: str = "CT"):
        if layout not in LAYOUT_WRITERS:
            raise ValueError(f"cannot write layout {layout!r} (known: {', '.join(LAYOUT_WRITERS)})")
        self.root = Path(root)
        self.labels = dict(sorted(labels.items()))
        self.layout = layout
        self.name = name
        self.modality = modality
        self.case_ids: list[str] = []

    def case_files(self, case_id: str) -> dict[str, str]:
        """Relative paths of a case's image and label files in this layout."""
        validate_case_id(case_id)
        return LAYOUT_WRITERS[self.layout]["files"](case_id)

    def write_case(self, case_id: str, image: np.ndarray, label: np.ndarray | None, affine: np.ndarray) -> dict[str, str]:
        files = self.case_files(case_id)
        save_volume(safe_join(self.root, files["image"]), image, affine)
        if label is not None:
            save_volume(safe_join(self.root, files["label"]), label.astype(np.uint8), affine)
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
    })


LAYOUT_WRITERS: dict[str, dict] = {"nnunet": {"files": _nnunet_files, "finish": _nnunet_finish}}
