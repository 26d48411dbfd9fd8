"""Built-in dataset layouts. Registration order is detection order: specific before generic."""

from __future__ import annotations

from pathlib import Path

from ..errors import LocsegError
from ..io.atomic import read_json, safe_join
from ..io.nifti import is_nifti, strip_nifti_suffix
from .base import CaseRef, Dataset, register_reader


def _nifti_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and is_nifti(p.name) and not p.name.startswith("."))


def _labels_from_names(labels: dict, source: Path) -> dict[int, str]:
    """nnU-Net v2 `labels` (name -> int) to value -> name, checked: background 0, consecutive."""
    out: dict[int, str] = {}
    for name, value in labels.items():
        if isinstance(value, (list, tuple)):
            raise LocsegError(f"region-based label {name!r} is not supported", source)
        try:
            out[int(value)] = str(name)
        except (TypeError, ValueError):
            raise LocsegError(f"label {name!r} has a non-integer value {value!r}", source) from None
    if 0 not in out:
        raise LocsegError("'labels' has no background (value 0)", source)
    if sorted(out) != list(range(len(out))):
        raise LocsegError(f"'labels' values must be consecutive from 0, got {sorted(out)}", source)
    return dict(sorted(out.items()))


def _is_nnunet(root: Path) -> bool:
    dj = root / "dataset.json"
    if not (dj.is_file() and (root / "imagesTr").is_dir()):
        return False
    try:
        return "channel_names" in read_json(dj)
    except LocsegError:
        return True  # let the reader report the broken dataset.json


@register_reader("nnunet", _is_nnunet)
def read_nnunet(root: Path) -> Dataset:
    """nnU-Net v2 raw: dataset.json, imagesTr/{case}_0000.nii.gz, labelsTr/{case}.nii.gz, imagesTs/."""
    dj_path = root / "dataset.json"
    dj = read_json(dj_path)
    for key in ("channel_names", "labels", "file_ending"):
        if key not in dj:
            raise LocsegError(f"missing key '{key}'", dj_path)
    channels = dj["channel_names"]
    if len(channels) != 1:
        raise LocsegError(f"expected one image channel, got {len(channels)}", dj_path)
    modality = str(next(iter(channels.values())))
    ending = dj["file_ending"]
    labels = _labels_from_names(dj["labels"], dj_path)
    cases: list[CaseRef] = []
    for split, lab_dir in (("imagesTr", "labelsTr"), ("imagesTs", None)):
        folder = root / split
        if not folder.is_dir():
            continue
        for img in _nifti_files(folder):
            name = img.name[: -len(ending)] if img.name.endswith(ending) else strip_nifti_suffix(img.name)
            if not name.endswith("_0000"):
                continue
            cid = name[:-5]
            label = None
            if lab_dir is not None:
                label = safe_join(root, lab_dir, f"{cid}{ending}")
                if not label.is_file():
                    raise LocsegError(f"case {cid!r} has no label file {lab_dir}/{cid}{ending}", root)
            cases.append(CaseRef(cid, img, label))
    return Dataset(root, "nnunet", labels, cases, modality=modality, name=str(dj.get("name", root.name)))


def _is_image_folder(root: Path) -> bool:
    return root.is_dir() and bool(_nifti_files(root))


@register_reader("images", _is_image_folder)
def read_image_folder(root: Path) -> Dataset:
    """A plain folder of images without labels (e.g. for `infer`): case id = file name without
    `.nii[.gz]` and without a trailing nnU-Net channel suffix `_0000`."""
    cases = []
    for img in _nifti_files(root):
        cid = strip_nifti_suffix(img.name)
        cid = cid[:-5] if cid.endswith("_0000") else cid
        cases.append(CaseRef(cid, img, None))
    return Dataset(root, "images", {0: "background"}, cases)
