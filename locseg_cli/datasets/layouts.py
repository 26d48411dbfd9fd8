"""Built-in dataset layouts. Registration order is detection order: specific before generic.

Order: nnunet, btcv, amos22, msd, kits23, folder, images (the generic image folder stays last).
See docs/datasets.md for each layout and its quirks.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from ..errors import LocsegError
from ..io.atomic import read_json, safe_join
from ..io.nifti import NIFTI_SUFFIXES, is_nifti, strip_nifti_suffix
from .base import CaseRef, Dataset, register_reader
from .tables import (
    AMOS22_FIRST_MRI_ID,
    BTCV_LABELS,
    KITS23_EXCLUDED,
    KITS23_LABELS,
    KITS23_REGIONS,
    LABELS_OVERRIDE_FILE,
)


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


def _class_groups(dj: dict, labels: dict[int, str], source: Path) -> dict[str, tuple[int, ...]]:
    """dataset.json's optional "class_groups": {group: [label names or values]} -> {group: values}."""
    raw = dj.get("class_groups") or {}
    if not isinstance(raw, dict):
        raise LocsegError("'class_groups' must map a group name to a list of labels", source)
    value_of = {name: v for v, name in labels.items()}
    out: dict[str, tuple[int, ...]] = {}
    for group, members in raw.items():
        if not isinstance(members, list) or not members:
            raise LocsegError(f"class group {group!r} must be a non-empty list of labels", source)
        values = []
        for m in members:
            v = value_of.get(m) if isinstance(m, str) else m
            if not isinstance(v, int) or v not in labels or v == 0:
                raise LocsegError(f"class group {group!r} names {m!r}, which is not a foreground label", source)
            values.append(v)
        out[str(group)] = tuple(values)
    return out


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
    return Dataset(root, "nnunet", labels, cases, modality=modality, name=str(dj.get("name", root.name)),
                   class_groups=_class_groups(dj, labels, dj_path))


def _labels_table(raw: object, source: Path) -> dict[int, str]:
    """A {value: name} table from JSON/YAML (keys may be strings), checked: integers, background 0."""
    if not isinstance(raw, dict) or not raw:
        raise LocsegError("the label table must be a non-empty mapping of value: name", source)
    out: dict[int, str] = {}
    for key, name in raw.items():
        try:
            value = int(key)
        except (TypeError, ValueError):
            raise LocsegError(f"label value {key!r} is not an integer", source) from None
        if isinstance(key, float) and key != value or value < 0:
            raise LocsegError(f"label value {key!r} must be a non-negative integer", source)
        out[value] = str(name)
    if 0 not in out:
        raise LocsegError("the label table has no background (value 0)", source)
    return dict(sorted(out.items()))


def _labels_override(root: Path, default: dict[int, str]) -> tuple[dict[int, str], bool]:
    """`root/labels.json` if present (synthetic cohorts written in a layout without a table file)."""
    path = root / LABELS_OVERRIDE_FILE
    if path.is_file():
        return _labels_table(read_json(path), path), True
    return dict(default), False


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


# --- BTCV ------------------------------------------------------------------------------------------

def _btcv_folders(root: Path) -> list[Path]:
    """The BTCV split folders holding `img/` (Training, Testing), whichever level `root` is at."""
    for base in (root / "RawData", root):
        splits = [base / s for s in ("Training", "Testing") if (base / s / "img").is_dir()]
        if splits:
            return splits
    return [root] if (root / "img").is_dir() and (root / "label").is_dir() else []


def _is_btcv(root: Path) -> bool:
    return any(p.name.startswith("img") for f in _btcv_folders(root) for p in _nifti_files(f / "img"))


@register_reader("btcv", _is_btcv)
def read_btcv(root: Path) -> Dataset:
    """BTCV (Synapse multi-organ): RawData/Training/{img/img0001, label/label0001}.nii.gz,
    RawData/Testing/img (unlabelled). Case id = the part after `img` (e.g. `0001`). No label table
    ships with it: the 13-organ table is built in (a `labels.json` at the root overrides it)."""
    labels, _ = _labels_override(root, BTCV_LABELS)
    cases: list[CaseRef] = []
    for split in _btcv_folders(root):
        label_dir = split / "label"
        for img in _nifti_files(split / "img"):
            if not img.name.startswith("img"):
                continue
            cid = strip_nifti_suffix(img.name)[3:]
            label = label_dir / f"label{img.name[3:]}"
            if not label.is_file():
                if label_dir.is_dir() and split.name != "Testing":
                    raise LocsegError(f"case {cid!r} has no label file label/{label.name}", split)
                label = None
            cases.append(CaseRef(cid, img, label))
    return Dataset(root, "btcv", labels, cases, modality="CT", name="BTCV")


# --- Decathlon-style dataset.json (AMOS22, MSD) ------------------------------------------------------

def _decathlon_json(root: Path) -> dict | None:
    dj = root / "dataset.json"
    if not dj.is_file():
        return None
    try:
        data = read_json(dj)
    except LocsegError:
        return None
    if not isinstance(data, dict) or "channel_names" in data or "training" not in data:
        return None
    return data


def _entry_image(entry: object) -> str | None:
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict) and isinstance(entry.get("image"), str):
        return entry["image"]
    return None


def _is_amos(root: Path) -> bool:
    data = _decathlon_json(root)
    if data is None:
        return False
    if "amos" in str(data.get("name", "")).lower():
        return True
    first = [_entry_image(e) for e in (data.get("training") or [])[:5]]
    return any(p is not None and Path(p).name.startswith("amos_") for p in first)


def _read_decathlon(root: Path, layout: str, skip_mri_ids: bool) -> Dataset:
    dj_path = root / "dataset.json"
    dj = read_json(dj_path)
    if not isinstance(dj, dict):
        raise LocsegError("dataset.json must hold a JSON object", dj_path)
    for key in ("labels", "training"):
        if key not in dj:
            raise LocsegError(f"missing key '{key}'", dj_path)
    modalities = dj.get("modality") or {"0": "CT"}
    if not isinstance(modalities, dict) or len(modalities) != 1:
        raise LocsegError(f"expected one image channel in 'modality', got {modalities!r} "
                          "(multi-channel tasks are not supported)", dj_path)
    modality = str(next(iter(modalities.values())))
    labels = _labels_table(dj["labels"], dj_path)
    cases: list[CaseRef] = []
    skipped: dict[str, str] = {}
    for split in ("training", "validation", "test"):
        entries = dj.get(split) or []
        if not isinstance(entries, list):
            raise LocsegError(f"'{split}' must be a list", dj_path)
        for entry in entries:
            image_rel = _entry_image(entry)
            if image_rel is None:
                raise LocsegError(f"'{split}' entry {entry!r} has no image path", dj_path)
            cid = strip_nifti_suffix(Path(image_rel).name)
            label_rel = entry.get("label") if isinstance(entry, dict) else None
            if skip_mri_ids:
                m = _AMOS_ID.match(cid)
                if m and int(m.group(1)) >= AMOS22_FIRST_MRI_ID:
                    skipped[cid] = "MRI"
                    continue
            label = safe_join(root, label_rel) if isinstance(label_rel, str) else None
            cases.append(CaseRef(cid, safe_join(root, image_rel), label))
    return Dataset(root, layout, labels, cases, modality=modality, name=str(dj.get("name", root.name)),
                   skipped=skipped, class_groups=_class_groups(dj, labels, dj_path))


_AMOS_ID = re.compile(r"^amos_(\d+)$")


@register_reader("amos22", _is_amos)
def read_amos22(root: Path) -> Dataset:
    """AMOS22: decathlon-style dataset.json listing imagesTr/labelsTr and imagesVa/labelsVa (and
    unlabelled imagesTs). Ids `amos_0500` and above are MRI: left out (`Dataset.skipped`, "MRI")."""
    return _read_decathlon(root, "amos22", skip_mri_ids=True)


def _is_msd(root: Path) -> bool:
    data = _decathlon_json(root)
    return data is not None and "modality" in data and (root / "imagesTr").is_dir()


@register_reader("msd", _is_msd)
def read_msd(root: Path) -> Dataset:
    """Medical Segmentation Decathlon task (TaskXX_Name): dataset.json with `modality`, `labels`
    (value -> name), `training` [{image, label}], `test` [image]. Single-channel tasks only; the
    macOS `._*` files in the download are never listed, hence ignored."""
    return _read_decathlon(root, "msd", skip_mri_ids=False)


# --- KiTS23 ----------------------------------------------------------------------------------------

_KITS_IMAGE = ("imaging.nii.gz", "imaging.nii")
_KITS_LABEL = ("segmentation.nii.gz", "segmentation.nii")


def _first_file(folder: Path, names: tuple[str, ...]) -> Path | None:
    for n in names:
        if (folder / n).is_file():
            return folder / n
    return None


def _kits_case_root(root: Path) -> Path | None:
    for base in (root / "dataset", root):
        if base.is_dir() and any(_first_file(d, _KITS_IMAGE + _KITS_LABEL) for d in _subdirs(base)):
            return base
    return None


def _is_kits23(root: Path) -> bool:
    return _kits_case_root(root) is not None


@register_reader("kits23", _is_kits23)
def read_kits23(root: Path) -> Dataset:
    """KiTS23 (the kits23 repository or its `dataset/` folder): case_XXXXX/{imaging,segmentation}.nii.gz.
    Arrays are stored axial axis first (axcodes I,P,L, sform only): readers downstream reorient by
    the affine. Left out, with the reason in `Dataset.skipped`: the paper's excluded scans and cases
    whose imaging was not downloaded yet (the repository ships segmentations only)."""
    base = _kits_case_root(root)
    if base is None:
        raise LocsegError("no KiTS23 case folders (case_XXXXX/imaging.nii.gz) here", root)
    labels, overridden = _labels_override(root, KITS23_LABELS)
    cases: list[CaseRef] = []
    skipped: dict[str, str] = {}
    for d in _subdirs(base):
        image, label = _first_file(d, _KITS_IMAGE), _first_file(d, _KITS_LABEL)
        if image is None and label is None:
            continue
        if d.name in KITS23_EXCLUDED:
            skipped[d.name] = KITS23_EXCLUDED[d.name]
        elif image is None:
            skipped[d.name] = "imaging.nii.gz not downloaded (run kits23_download_data)"
        else:
            cases.append(CaseRef(d.name, image, label))
    return Dataset(root, "kits23", labels, cases, modality="CT", name="KiTS23", skipped=skipped,
                   regions={} if overridden else dict(KITS23_REGIONS))


# --- A plain folder of image/label pairs with labels.yaml --------------------------------------------

FOLDER_TABLES = ("labels.yaml", "labels.yml")
_LABEL_SUFFIXES = ("_label", "_labels", "_seg", "_mask")


def _folder_table(root: Path) -> Path | None:
    return next((root / n for n in FOLDER_TABLES if (root / n).is_file()), None)


def _is_folder(root: Path) -> bool:
    return _folder_table(root) is not None and ((root / "images").is_dir() or bool(_nifti_files(root)))


@register_reader("folder", _is_folder)
def read_folder(root: Path) -> Dataset:
    """Image/label pairs with a label table in `labels.yaml`: either `images/X.nii.gz` with
    `labels/X.nii.gz`, or side by side `X.nii.gz` with `X_label|_seg|_mask.nii.gz`. labels.yaml is
    `{labels: {0: background, 1: liver, ...}, modality: CT, name: ...}` (or just the value: name map)."""
    table_path = _folder_table(root)
    if table_path is None:
        raise LocsegError(f"no {FOLDER_TABLES[0]} with the label table here", root)
    try:
        meta = yaml.safe_load(table_path.read_text())
    except yaml.YAMLError as exc:
        raise LocsegError(f"not valid YAML ({str(exc).splitlines()[0]})", table_path) from None
    if not isinstance(meta, dict):
        raise LocsegError("labels.yaml must be a mapping", table_path)
    labels = _labels_table(meta["labels"] if "labels" in meta else meta, table_path)
    cases: list[CaseRef] = []
    if (root / "images").is_dir():
        label_dir = root / "labels"
        for img in _nifti_files(root / "images"):
            stem = strip_nifti_suffix(img.name)
            cid = stem[:-5] if stem.endswith("_0000") else stem
            candidates = [label_dir / img.name] + [label_dir / f"{cid}{ext}" for ext in NIFTI_SUFFIXES]
            cases.append(CaseRef(cid, img, next((c for c in candidates if c.is_file()), None)))
    else:
        files = {p.name: p for p in _nifti_files(root)}
        for name, img in files.items():
            stem = strip_nifti_suffix(name)
            if stem.endswith(_LABEL_SUFFIXES):
                continue
            partner = [f"{stem}{s}{ext}" for s in _LABEL_SUFFIXES for ext in NIFTI_SUFFIXES]
            cases.append(CaseRef(stem, img, next((files[p] for p in partner if p in files), None)))
    return Dataset(root, "folder", labels, cases, modality=str(meta.get("modality", "CT")),
                   name=str(meta.get("name", root.name)))


# --- generic: must stay last -----------------------------------------------------------------------

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
