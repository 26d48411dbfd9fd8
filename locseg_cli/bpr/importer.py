"""Importing JSON files written by bpreg itself (`bpreg_predict`), so users can swap tools.

bpreg's files give scores per slice in bpreg's own slice order and `z` in mm from its first
slice, but no world position. With the raw images (`data`), each slice gets its world superior
coordinate from the image's affine, which is what `axial_location` needs; bpreg's slice order is
recovered with the rule bpreg applies when it reads a NIfTI file (`order="bpreg"`):
the axial voxel axis k is the one whose affine column points mostly along world z, and the slices
are reversed when the affine entry [k, 2] is negative.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..config import config_dict
from ..datasets import open_dataset
from ..errors import LocsegError
from ..io.atomic import validate_case_id, write_json
from ..io.manifest import StageWriter, file_fingerprint, folder_fingerprint
from ..io.nifti import load_header, strip_nifti_suffix
from ..io.stage_loop import CaseResult, pending_cases, run_cases
from ..progress import NullProgress, Progress
from .config import BprImportConfig
from .records import RESERVED_IDS, STAGE, record_summary

REQUIRED_KEYS = ("cleaned slice scores", "unprocessed slice scores")


def case_id_from_file(path: Path) -> str:
    """`img0001.json`, `img0001.nii.json`, `case_0000.json` -> the dataset's case id."""
    name = strip_nifti_suffix(path.name[: -len(".json")])
    return name[:-5] if name.endswith("_0000") else name


def read_bpreg_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LocsegError(f"not valid JSON ({exc})", path) from None
    if not isinstance(data, dict):
        raise LocsegError("not a bpreg score file (expected a JSON object)", path)
    for key in REQUIRED_KEYS:
        if not isinstance(data.get(key), list):
            raise LocsegError(f"not a bpreg score file (no list {key!r})", path)
    n = len(data["cleaned slice scores"])
    if len(data["unprocessed slice scores"]) != n or ("z" in data and len(data["z"]) != n):
        raise LocsegError("bpreg score lists of different lengths", path)
    if n < 2:
        raise LocsegError("fewer than 2 slices", path)
    return data


def bpreg_slice_order(affine: np.ndarray) -> tuple[int, bool]:
    """(axial voxel axis, reversed?) as bpreg's NIfTI reader decides them."""
    a = np.asarray(affine, dtype=np.float64)[:3, :3]
    world_axis_of = np.argmax(np.abs(a), axis=0)
    axial = np.flatnonzero(world_axis_of == 2)
    if len(axial) != 1:
        raise ValueError("no single voxel axis points along world z")
    k = int(axial[0])
    return k, bool(a[k, 2] < 0)


def slice_world_z(affine: np.ndarray, shape: tuple[int, ...], axis: int, index: np.ndarray) -> np.ndarray:
    """World superior coordinate of voxel slices `index` along `axis`, at the in-plane centre."""
    n = len(index)
    ijk = np.ones((4, n))
    for d in range(3):
        ijk[d] = (shape[d] - 1) / 2
    ijk[axis] = index
    return (np.asarray(affine, dtype=np.float64) @ ijk)[2]


def attach_world_z(record: dict[str, Any], image: Path, order: str) -> dict[str, Any]:
    """Add `z_world_mm`, `slice_index`, `axial_axis` to a bpreg record from its image's geometry."""
    img = load_header(image)
    affine, shape = img.affine, img.shape[:3]
    try:
        axis, reverse = bpreg_slice_order(affine)
    except ValueError as exc:
        raise LocsegError(str(exc), image) from None
    if order == "stored":
        reverse = False
    elif order == "reversed":
        reverse = True
    n = len(record["cleaned slice scores"])
    if shape[axis] != n:
        raise LocsegError(f"bpreg scored {n} slices but the image has {shape[axis]} along its axial axis "
                          f"{axis} (is this the image bpreg read?)", image)
    index = np.arange(n)[::-1] if reverse else np.arange(n)
    record["z_world_mm"] = [float(v) for v in slice_world_z(affine, shape, axis, index)]
    record["slice_index"] = [int(i) for i in index]
    record["axial_axis"] = axis
    return record


def import_bpreg(bpreg_dir: str | Path, out: str | Path, cfg: BprImportConfig, data: str | Path | None = None,
                 force: bool = False, progress: Progress | None = None) -> dict[str, Any]:
    """Copy bpreg's JSON files into a `bpr` output (adding world z when `data` is given)."""
    progress = progress or NullProgress()
    bpreg_dir, out = Path(bpreg_dir), Path(out)
    if not bpreg_dir.is_dir():
        raise LocsegError("not a folder", bpreg_dir)
    files = sorted(p for p in bpreg_dir.glob("*.json") if p.name != "manifest.json" and not p.name.startswith("."))
    if not files:
        raise LocsegError("no bpreg .json files here", bpreg_dir)
    ids: dict[str, Path] = {}
    for f in files:
        cid = validate_case_id(case_id_from_file(f), f)
        if cid in RESERVED_IDS:
            raise LocsegError(f"case id {cid!r} is reserved in a bpr output folder", f)
        if cid in ids:
            raise LocsegError(f"two files for case {cid!r}: {ids[cid].name} and {f.name}", bpreg_dir)
        ids[cid] = f
    for f in ids.values():  # every file parses before anything is written
        read_bpreg_json(f)
    images: dict[str, Path] = {}
    inputs = {"bpreg": (bpreg_dir, folder_fingerprint(bpreg_dir))}
    if data is not None:
        data = Path(data)
        ds = open_dataset(data)
        by_id = {c.case_id: c.image for c in ds.cases}
        missing = sorted(set(ids) - set(by_id))
        if missing:
            raise LocsegError(f"no image in --data for bpreg file(s) of case {', '.join(missing[:5])}", data)
        images = {cid: by_id[cid] for cid in ids}
        inputs["data"] = (data, folder_fingerprint(data))
    result: dict[str, Any] = {"out": out, "up_to_date": False, "imported": 0, "reused": 0, "cases": {}}
    with StageWriter(STAGE, out, config_dict(cfg), inputs, force) as w:
        if w.up_to_date:
            result["up_to_date"] = True
            result["cases"] = {k: v["meta"] for k, v in w.previous.cases.items()}
            return result
        def import_case(cid: str, f: Path) -> CaseResult:
            record = read_bpreg_json(f)
            if cid in images:
                record = attach_world_z(record, images[cid], cfg.order)
            record["source"] = "bpreg"
            record["case_id"] = cid
            write_json(w.path(f"{cid}.json"), record)
            return CaseResult({"scores": f"{cid}.json"}, {**record_summary(record), "world_z": "z_world_mm" in record})

        todo = pending_cases(w, progress, "bpr: importing", (
            (cid, f, [file_fingerprint(f), file_fingerprint(images[cid]) if cid in images else None])
            for cid, f in ids.items()))
        run_cases(w, progress, todo, import_case)
        result["imported"], result["reused"] = len(todo), len(ids) - len(todo)
        result["cases"] = {cid: w.manifest.cases[cid]["meta"] for cid in ids}
        w.finish({"source": "bpreg import", "bpreg_dir": str(bpreg_dir.resolve())})
    return result
